"""``--backend local``: the shards of a corpus on a process pool of this machine.

With one worker, each shard is made in this process (:func:`~geoforge.backends.shards.run_shard`).
With more, samples are made in jobs of a few samples (positives, then, with negatives, their
negatives and Q&A against the shard's retrieval pool) by a ``ProcessPoolExecutor``, and this
process writes each shard in index order as its jobs complete.

Before issue 14 the pool drained at every stage of every shard: it made a shard's positives,
waited for the last one, made their negatives, waited for the last one, wrote the shard and
only then started the next. Here jobs are taken from a priority queue (earliest shard first,
then its stage), and the next shards' positives are queued while a shard is finished, so a
worker whose job ends while the shard's last jobs straggle takes work of the next shard. Memory
stays bounded: jobs are submitted at most ``2 × workers`` at a time, and at most
:func:`lookahead` samples (about two shards) are open at once, whatever the corpus's size.
The run's idle worker-seconds (``workers × elapsed`` minus the seconds spent in jobs) go into
the manifest's ``run`` section. A worker exits as soon as the run dies (:func:`_follow_parent`):
a run killed with ``kill -9`` leaves none behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import heapq
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from geoforge.backends.shards import FINISH_CHUNK, POSITIVE_CHUNK, ShardSpec, run_shard, write_counted
from geoforge.backends.tally import Tally, load_tokenizer
from geoforge.store import Store

if TYPE_CHECKING:
    from geoforge.generate import Encoded, Sample, ShardWork
    from geoforge.perturb import PoolEntry

#: Samples per job of the captions pass of ``--retrieval-pool corpus``.
CAPTION_CHUNK = 64
#: Stages of a shard's jobs, in priority order within the shard.
FINISH, POSITIVES = 0, 1
#: Seconds between a worker's checks that the run that started it is alive.
PARENT_POLL = 0.25
#: ``prctl`` option: the signal the kernel sends a process when its parent thread ends (Linux).
PR_SET_PDEATHSIG = 1
#: Retrieval pools a worker keeps unpickled: the shard being finished and the next one.
KEPT_POOLS = 2


def lookahead(shard_size: int, workers: int) -> int:
    """Samples that may be open (queued, made, not yet written) at once: two shards, or enough
    jobs to keep ``workers`` busy through a shard boundary when shards are small."""
    return max(2 * shard_size, 8 * workers * max(POSITIVE_CHUNK, FINISH_CHUNK))


def _pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes (the default start method: fork on Linux) whose workers
    exit when this process dies (:func:`_follow_parent`). Its first ``submit`` starts them: call
    it from the thread that made the pool."""
    context = multiprocessing.get_context()
    forked = context.get_start_method() == "fork"
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_follow_parent,
        initargs=(
            os.getpid() if forked else None,
            forked and threading.current_thread() is threading.main_thread(),
        ),
    )


def _follow_parent(run: int | None, by_main_thread: bool) -> None:
    """A pool worker's initializer: make the worker exit as soon as its parent dies, so a run
    killed with ``kill -9`` leaves no orphan working on (or waiting for) its jobs.

    ``run`` is the run's pid when the worker was forked from it (``None`` for spawn and
    forkserver, whose parent is a helper or unknown here): a worker whose parent is already
    another process exits at once. When the main thread forked it, on Linux the kernel kills it
    with the run (``PR_SET_PDEATHSIG``: that signal comes when the *thread* that forked ends, so
    never for a pool made in another thread). Everywhere, a daemon thread checks every
    :data:`PARENT_POLL` seconds that the parent is still the same process."""
    if by_main_thread and sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    parent = os.getppid()
    if run is not None and parent != run:
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), name="follow-parent", daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    """Exit the process (at once, without cleanup) when its parent is no longer ``parent``."""
    if hasattr(signal, "pthread_sigmask"):  # signals (a plugin's SIGALRM) go to the main thread
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    os._exit(1)


class _SharedPool:
    """A shard's retrieval pool as its finish jobs carry it: pickled once here, not once per job
    of :data:`~geoforge.backends.shards.FINISH_CHUNK` samples (8.4 ms for a pool of 1,000
    ``mmgeo-4k`` captions, 292 KB), and unpickled once per worker (6.8 ms), which keeps the
    last :data:`KEPT_POOLS` it was sent (:func:`_shared_pool`). The job receives the tuple of
    :class:`~geoforge.perturb.PoolEntry` itself."""

    def __init__(self, pool: tuple[PoolEntry, ...]) -> None:
        self.data = pickle.dumps(pool, protocol=pickle.HIGHEST_PROTOCOL)
        self.digest = hashlib.blake2b(self.data, digest_size=16).digest()

    def __reduce__(self) -> tuple[Callable[[bytes, bytes], tuple[PoolEntry, ...]], tuple[bytes, bytes]]:
        return _shared_pool, (self.digest, self.data)


#: The pools this worker has unpickled, by digest, the most recently used last.
_POOLS: dict[bytes, tuple[PoolEntry, ...]] = {}


def _shared_pool(digest: bytes, data: bytes) -> tuple[PoolEntry, ...]:
    """The pool pickled as ``data`` (whose BLAKE2b digest is ``digest``), unpickled once."""
    pool = _POOLS.pop(digest, None)
    if pool is None:
        pool = pickle.loads(data)
    _POOLS[digest] = pool
    while len(_POOLS) > KEPT_POOLS:
        del _POOLS[next(iter(_POOLS))]
    return pool


def _timed(method: str, work: ShardWork, *args: Any) -> tuple[Any, float, Counter[str]]:
    """A pool job: ``work.method(*args)``, the seconds it took in the worker and the plugins'
    share of them (:meth:`geoforge.generate.ShardWork.plugin_seconds`)."""
    start, before = time.perf_counter(), work.plugin_seconds()
    out = getattr(work, method)(*args)
    return out, time.perf_counter() - start, work.plugin_seconds() - before


class LocalBackend:
    """``workers`` processes on this machine (this process alone for 1)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.idle: float | None = None

    def prepare(self, out: Store) -> Store:
        """``out`` as it is: this machine's processes reach it."""
        return out

    def close(self) -> None:
        """Nothing to release: each run's pool is shut down when the run ends."""

    def captions(self, work: ShardWork, shards: Sequence[ShardSpec]) -> Iterator[PoolEntry]:
        """Pool entries (key, caption, claims) of ``shards``, in corpus order, made in jobs of
        :data:`CAPTION_CHUNK` samples (:meth:`geoforge.generate.ShardWork.captions`)."""
        chunks = [
            range(lo, min(s.hi, lo + CAPTION_CHUNK))
            for s in shards
            for lo in range(s.lo, s.hi, CAPTION_CHUNK)
        ]
        if self.workers == 1:
            for chunk in chunks:
                yield from work.captions(chunk)
            return
        with _pool(self.workers) as pool:
            for got in pool.map(work.captions, chunks):
                yield from got

    def describe(self) -> dict[str, object]:
        """``backend``, ``workers`` and, for a pool, ``idle_worker_seconds``."""
        out: dict[str, object] = {"backend": "local", "workers": self.workers}
        if self.idle is not None:
            out["idle_worker_seconds"] = round(self.idle, 3)
        return out

    def run(
        self, work: ShardWork, shards: Sequence[ShardSpec], out: Store, on_progress: Callable[[int], None]
    ) -> Iterator[tuple[ShardSpec, Tally]]:
        """Make and write ``shards`` in order (see the module's docstring)."""
        if self.workers == 1:
            for spec in shards:
                yield spec, run_shard(work, spec, out, on_progress)
            return
        start = time.perf_counter()
        pool = _pool(self.workers)
        # The first job forks every worker (fork context); only then may this process import
        # the tokenizer, in a thread while the workers start: a worker forked after it would
        # carry torch's heap, whose pages it copies one by one as it runs.
        pool.submit(int).result()
        threading.Thread(target=load_tokenizer, daemon=True).start()
        pipeline = _Pipeline(work, shards, pool, self.workers)
        limit = lookahead(work.recipe.shard_size, self.workers)
        try:
            for pos, spec in enumerate(shards):
                while pipeline.opened < len(shards) and (
                    pipeline.opened == pos or sum(s.size for s in shards[pos : pipeline.opened + 1]) <= limit
                ):
                    pipeline.open()
                tally = write_counted(out, spec, pipeline.samples(pos), on_progress, work.qa is not None)
                tally.busy, tally.plugin_seconds = pipeline.take_busy()
                yield spec, tally
        finally:
            pool.shutdown(cancel_futures=True)
            self.idle = self.workers * (time.perf_counter() - start) - pipeline.busy_total


class _Pipeline:
    """The jobs of the open shards on ``pool``: at most ``2 × workers`` submitted, the rest in a
    heap ordered by (shard, stage, chunk); finished chunks wait in ``outputs`` until written."""

    def __init__(self, work: ShardWork, shards: Sequence[ShardSpec], pool: ProcessPoolExecutor, workers: int):
        self.work, self.shards, self.pool = work, shards, pool
        self.cap = 2 * workers
        self.opened = 0
        self.ready: list[tuple[int, int, int]] = []
        self.jobs: dict[tuple[int, int, int], tuple[str, tuple[Any, ...]]] = {}
        self.inflight: dict[Future[tuple[Any, float, Counter[str]]], tuple[int, int, int]] = {}
        self.outputs: dict[tuple[int, int], list[Encoded]] = {}
        self.positives: dict[int, dict[int, list[Sample]]] = {}
        self.busy = self.busy_total = 0.0
        self.plugin_seconds: Counter[str] = Counter()

    def _push(self, key: tuple[int, int, int], method: str, *args: Any) -> None:
        self.jobs[key] = (method, args)
        heapq.heappush(self.ready, key)

    def open(self) -> None:
        """Queue the first-stage jobs of the next shard."""
        pos, spec = self.opened, self.shards[self.opened]
        method = "positives" if self.work.pooled else "make"
        for c, lo in enumerate(range(spec.lo, spec.hi, POSITIVE_CHUNK)):
            self._push((pos, POSITIVES, c), method, range(lo, min(spec.hi, lo + POSITIVE_CHUNK)))
        self.opened += 1

    def samples(self, pos: int) -> Iterator[Encoded]:
        """The samples of shard ``pos`` as written, in index order, running jobs as needed."""
        size = self.shards[pos].size
        chunk = FINISH_CHUNK if self.work.pooled else POSITIVE_CHUNK
        for c in range((size + chunk - 1) // chunk):
            while (pos, c) not in self.outputs:
                self._step()
            yield from self.outputs.pop((pos, c))

    def take_busy(self) -> tuple[float, Counter[str]]:
        """Worker-seconds spent in jobs since the last call, and the plugins' share of them."""
        busy, self.busy = self.busy, 0.0
        plugins, self.plugin_seconds = self.plugin_seconds, Counter()
        return busy, plugins

    def _step(self) -> None:
        """Submit jobs up to the cap, wait for one to complete and take its result (a job's
        error is raised here)."""
        while len(self.inflight) < self.cap and self.ready:
            key = heapq.heappop(self.ready)
            method, args = self.jobs.pop(key)
            self.inflight[self.pool.submit(_timed, method, self.work, *args)] = key
        done, _ = wait(self.inflight, return_when=FIRST_COMPLETED)
        for future in sorted(done, key=self.inflight.__getitem__):
            pos, stage, c = self.inflight.pop(future)
            result, seconds, plugins = future.result()
            self.busy += seconds
            self.plugin_seconds.update(plugins)
            self.busy_total += seconds
            if stage == FINISH or not self.work.pooled:
                self.outputs[(pos, c)] = result
            else:
                self._positives_done(pos, c, result)

    def _positives_done(self, pos: int, c: int, samples: list[Sample]) -> None:
        """Keep a chunk of shard ``pos``'s positives; once all are in, queue their last stage
        against the shard's pool."""
        got = self.positives.setdefault(pos, {})
        got[c] = samples
        spec = self.shards[pos]
        if len(got) < (spec.size + POSITIVE_CHUNK - 1) // POSITIVE_CHUNK:
            return
        positives = [x for k in sorted(got) for x in got[k]]
        del self.positives[pos]
        pool = _SharedPool(self.work.pool(positives))
        for k, lo in enumerate(range(0, len(positives), FINISH_CHUNK)):
            self._push((pos, FINISH, k), "finish", positives[lo : lo + FINISH_CHUNK], pool)
