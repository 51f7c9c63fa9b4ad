"""geoforge's built-in perturbation plugins.

Each module registers one perturbation through the same ``geoforge_register_perturbations``
hook and the same ``geoforge`` entry point group as any third-party plugin (see
``pyproject.toml``), so ``--no-plugin NAME`` can switch any of them off:

* image negatives: ``delete_point``, ``move_vertex``, ``alter_relation``;
* caption negatives: ``caption_rules`` (value change, relation swap, shape swap, relabel)
  and ``retrieval`` (the most similar captions of other samples of the run, by BM25).
"""

from __future__ import annotations

import geoforge

__version__ = geoforge.__version__

#: An image change that moves at least this share of the figure's strokes
#: (:func:`geoforge.scene.stroke_share`) is proposed after the others: on 80 ``mmgeo-4k``
#: positives such candidates of ``move_vertex`` and ``alter_relation`` passed the verifier 54
#: times in 370 (most moved most of the ink or broke no stated claim), the others 559 in 850
#: (``benchmarks/stroke_share.py --baseline 29e12d9``, the order before this rule).
MOST_INK = 0.8
