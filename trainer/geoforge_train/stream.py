"""Training without writing a corpus: a ``torch.utils.data.IterableDataset`` that makes fresh,
verified samples on the fly.

Sample ``i`` of ``(recipe, seed)`` is :func:`geoforge.generate.make_sample`'s, and its
negatives are :func:`geoforge.negatives.add_negatives`'s, retrieval drawing on the other samples
of its block. With the default block (the recipe's ``shard_size``), every item equals item
``i`` of a :class:`~geoforge_train.data.HardNegativeDataset` over the corpus that
``geoforge generate`` writes with the same recipe, seed and negatives: the same tensors.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from torch.utils.data import IterableDataset, get_worker_info

from geoforge.generate import make_sample
from geoforge.negatives import NegativeConfig, add_negatives, pool_entry
from geoforge.plugins import PluginSpec
from geoforge.sampler import Recipe
from geoforge_train.data import SampleEncoder


class GeneratedDataset(IterableDataset):
    """Items of :class:`~geoforge_train.data.SampleEncoder` for samples ``start``,
    ``start + 1``, ... (``n`` of them; ``None``: endless), made as they are needed.

    Samples are made in blocks of ``block`` (default: ``recipe.shard_size``); each
    ``DataLoader`` worker of each of ``world_size`` ranks (``rank``: this one) makes every
    ``world_size · workers``-th block, so no sample is made twice and the union over ranks and
    workers is every sample once. Within a worker, items come in index order. ``negatives``
    (default: none) and ``plugins`` choose the hard negatives as ``geoforge generate``
    does; each worker loads the plugins once. Augmentation is seeded by ``(encoder.seed,
    epoch, index)``. Raises SampleError (from :func:`geoforge.generate.make_sample`) if a
    sample cannot be made.
    """

    def __init__(
        self,
        recipe: Recipe,
        seed: int,
        encoder: SampleEncoder,
        negatives: NegativeConfig | None = None,
        plugins: PluginSpec | None = None,
        n: int | None = None,
        start: int = 0,
        block: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        epoch: int = 0,
    ) -> None:
        super().__init__()
        self.recipe, self.seed, self.encoder = recipe, seed, encoder
        self.negatives, self.plugins = negatives or NegativeConfig(), plugins or PluginSpec()
        self.n, self.start, self.block = n, start, block or recipe.shard_size
        self.rank, self.world_size, self.epoch = rank, world_size, epoch

    def __iter__(self) -> Iterator[dict[str, object]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine, every = self.rank * workers + worker, self.world_size * workers
        end = None if self.n is None else self.start + self.n
        for b in itertools.count(mine, every):
            lo = self.start + b * self.block
            if end is not None and lo >= end:
                return
            hi = lo + self.block if end is None else min(lo + self.block, end)
            samples = [make_sample(self.recipe, self.seed, i) for i in range(lo, hi)]
            if self.negatives.any:
                pool = tuple(pool_entry(s) for s in samples)
                samples = [
                    add_negatives(s, pool, self.negatives, self.plugins, self.recipe.image_size, self.seed)
                    for s in samples
                ]
            for sample in samples:
                yield self.encoder(sample.files(), self.epoch, int(sample.meta["index"]))  # type: ignore[call-overload]
