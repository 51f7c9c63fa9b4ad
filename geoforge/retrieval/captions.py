"""Real corpus captions without rendering, to size and test a retrieval index cheaply.

:func:`sampled_captions` draws sample ``i`` as :func:`geoforge.generate.make_sample` does — the
same generator, figures, realisation seeds, caption styles, captions and label layout (a figure
the layout finds illegible is drawn again) — but does not paint, so its captions are
``make_sample``'s, byte for byte, at a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from geoforge.caption import STYLES, make_caption
from geoforge.errors import GeoforgeError
from geoforge.perturb import PoolEntry
from geoforge.sampler import Recipe, sample_spec


def sampled_captions(recipe: Recipe, seed: int, indices: range) -> Iterator[PoolEntry]:
    """Key, caption text and claims of samples ``indices`` of the corpus ``(recipe, seed)``, as
    :func:`geoforge.negatives.pool_entry` gives them for a made sample (keys zero-padded as the
    corpus writes them). A sample with no good figure in :data:`geoforge.generate.MAX_FIGURES`
    draws is skipped."""
    from geoforge.generate import MAX_FIGURES, REALISE_TRIES, crowded, illegible
    from geoforge.realise import realise
    from geoforge.render import layout

    for index in indices:
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        for _ in range(MAX_FIGURES):
            spec = sample_spec(recipe, rng)
            realise_seed = int(rng.integers(2**31))
            try:
                scene = realise(spec.program, seed=realise_seed, max_tries=REALISE_TRIES)
            except GeoforgeError:
                continue
            style = recipe.styles[int(rng.integers(len(recipe.styles)))]
            made = {s: make_caption(scene, spec.claims, s, rng, spec.targets) for s in STYLES}
            if (
                any(lost for _, lost in made.values())
                or crowded(scene, recipe.image_size)
                or illegible(layout(scene, recipe.image_size))
            ):
                continue
            caption = made[style][0]
            yield PoolEntry(f"{index:08d}", caption.text, tuple(caption.claims))
            break
