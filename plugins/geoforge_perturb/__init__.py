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
