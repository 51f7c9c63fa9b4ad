"""The shard: the unit of work of every backend, and the driver loop that runs a corpus's shards.

A shard's bytes depend only on ``(recipe, seed, negatives, plugins, qa)`` and its index range,
never on the backend or the number of workers: every sample seeds from
``SeedSequence([seed, index])`` and is written in index order. :func:`run_shard` makes one
shard in one process, as a Ray task does; :func:`run_shards` keeps the complete shards of a
resumed run, hands the rest to a backend and merges every shard's :class:`Tally` in shard
order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from geoforge.backends.tally import Tally
from geoforge.corpus import CorpusError, read_shard, shard_name, write_shard
from geoforge.store import Store

if TYPE_CHECKING:
    from geoforge.generate import Encoded, ShardWork
    from geoforge.perturb import PoolEntry

#: Samples per job of the first stage (positives) in a worker pool.
POSITIVE_CHUNK = 4
#: Samples per job of the later stages (negatives, Q&A): each job carries the shard's
#: retrieval pool, so jobs of a few samples keep the workers busy at little pickling cost.
FINISH_CHUNK = 4


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index``: samples ``lo`` (included) to ``hi`` (excluded)."""

    index: int
    lo: int
    hi: int

    @property
    def name(self) -> str:
        """Its file name, ``shard-NNNNNN.tar``."""
        return shard_name(self.index)

    @property
    def size(self) -> int:
        """Its number of samples."""
        return self.hi - self.lo


def plan_shards(n: int, shard_size: int) -> list[ShardSpec]:
    """The shards of a corpus of ``n`` samples, ``shard_size`` each (the last one may be
    shorter)."""
    return [ShardSpec(s, lo, min(n, lo + shard_size)) for s, lo in enumerate(range(0, n, shard_size))]


class Backend(Protocol):
    """What runs a corpus's shards (:mod:`geoforge.backends.local`, :mod:`...ray_backend`)."""

    def prepare(self, out: Store) -> Store:
        """``out`` as this backend's workers reach it. Raises UsageError if they cannot."""
        ...

    def run(
        self, work: ShardWork, shards: Sequence[ShardSpec], out: Store, on_progress: Callable[[int], None]
    ) -> Iterator[tuple[ShardSpec, Tally]]:
        """Make and write every shard of ``shards`` to ``out``; yield each one with its sealed
        tally as it completes (in any order). ``on_progress(k)``: ``k`` more samples done."""
        ...

    def captions(self, work: ShardWork, shards: Sequence[ShardSpec]) -> Iterator[PoolEntry]:
        """Pool entries (key, caption, claims) of ``shards`` in corpus order (the first pass of
        ``--retrieval-pool corpus``)."""
        ...

    def describe(self) -> dict[str, object]:
        """The manifest's ``run`` fields of this backend (name, workers, timings)."""
        ...

    def close(self) -> None:
        """Release what the backend started (a local Ray instance)."""
        ...


def shard_samples(work: ShardWork, spec: ShardSpec) -> Iterator[Encoded]:
    """The samples of shard ``spec`` as written, made in this process, in index order. Without
    negatives they stream one by one; with negatives the shard's positives are made first, for
    the retrieval pool, then finished a few at a time."""
    if not work.pooled:
        for i in range(spec.lo, spec.hi):
            yield from work.make([i])
        return
    positives = work.positives(range(spec.lo, spec.hi))
    pool = work.pool(positives)
    for k in range(0, len(positives), FINISH_CHUNK):
        yield from work.finish(positives[k : k + FINISH_CHUNK], pool)


def write_counted(
    out: Store, spec: ShardSpec, samples: Iterable[Encoded], on_progress: Callable[[int], None], with_qa: bool
) -> Tally:
    """Write ``samples`` as shard ``spec`` of ``out`` (atomically), counting each into a tally
    and calling ``on_progress(1)`` after each; returns the sealed tally."""
    tally = Tally(with_qa)

    def counted() -> Iterator[Encoded]:
        for key, files in samples:
            tally.add(key, files)
            yield key, files
            on_progress(1)

    tally.made = write_shard(out, spec.name, counted())
    return tally.seal(spec.name, tally.made)


def run_shard(work: ShardWork, spec: ShardSpec, out: Store, on_progress: Callable[[int], None]) -> Tally:
    """Make shard ``spec`` in this process and write it to ``out``; its tally, with ``busy``
    the seconds it took and ``plugin_seconds`` the plugins' share of them."""
    start, before = time.perf_counter(), work.plugin_seconds()
    tally = write_counted(out, spec, shard_samples(work, spec), on_progress, work.qa is not None)
    tally.busy = time.perf_counter() - start
    tally.plugin_seconds = work.plugin_seconds() - before
    return tally


def kept_tally(work: ShardWork, out: Store, spec: ShardSpec) -> Tally | None:
    """The tally of the complete shard ``spec`` that a resumed run keeps, or ``None`` if the
    stored shard does not hold ``spec.size`` samples or is damaged: it cannot be read
    (:func:`geoforge.corpus.read_shard`: a tar cut short, its end overwritten), or a member was
    overwritten in place (a JSON that does not parse) or is missing. Such a shard is made
    again, the same bytes its run would have written. Raises UsageError if its first sample is
    not this corpus's (:meth:`geoforge.generate.ShardWork.check_kept`)."""
    tally = Tally(work.qa is not None)
    count = 0
    try:
        for record in read_shard(spec.name, out):
            if count == 0:
                work.check_kept(record, spec.lo, out.label(spec.name))
            tally.add(record.key, record.files)
            count += 1
    except (CorpusError, ValueError, KeyError):
        return None
    return tally.seal(spec.name, count) if count == spec.size else None


def run_shards(
    work: ShardWork,
    out: Store,
    n: int,
    keep: set[int],
    backend: Backend,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[Tally, list[str]]:
    """Run the ``n`` samples of ``work`` into ``out``: keep the complete shards ``keep`` of a
    resumed run (:func:`kept_tally`), make the others with ``backend``, and merge every
    shard's tally in shard order (so the totals do not depend on the order in which shards
    complete). Returns the corpus's tally and the names of the kept shards."""
    progress = on_progress or (lambda k: None)
    specs = plan_shards(n, work.recipe.shard_size)
    done: dict[int, Tally] = {}
    total = Tally(work.qa is not None)
    merged = 0

    def absorb() -> None:  # merge the shards done so far in order; the rest wait (a few)
        nonlocal merged
        while merged in done:
            total.merge(done.pop(merged))
            merged += 1

    resumed, todo = [], []
    for spec in specs:
        tally = kept_tally(work, out, spec) if spec.index in keep else None
        if tally is None:
            todo.append(spec)
            continue
        done[spec.index] = tally
        resumed.append(spec.name)
        progress(spec.size)
        absorb()
    for spec, tally in backend.run(work, todo, out, progress):
        done[spec.index] = tally
        absorb()
    return total, resumed
