"""``--backend ray``: one Ray task per shard, on a Ray cluster or a local Ray instance.

Each task makes its shard in one worker process (:func:`~geoforge.backends.shards.run_shard`),
writes it to the corpus's store under a temporary name, renames it when complete and returns
the shard's tally; the driver merges the tallies in shard order. A task whose worker dies (a
killed process, a lost node) is run again by Ray, up to ``max_retries`` times
(``ray.remote(max_retries=...)``); its half-written temporary file is never renamed, and the
driver removes such leftovers at the end. Errors raised by geoforge inside a task (a sample that
cannot be made) are not retried: they are deterministic, and are raised in the driver as they
were raised in the task.

Progress: each task reports how many of its shard's samples are written to a
``ray.util.queue.Queue`` (an actor with no CPU), every few samples; the driver turns the
reports into ``on_progress`` calls, counting each shard at most once even when a task is
retried.

Ray is optional (``pip install 'geoforge[ray]'``) and imported only here. Every worker must
reach the output: a cloud URL (``s3://``, ``gs://``) or a shared filesystem on a cluster, any
local path on a one-machine Ray instance; a ``memory://`` filesystem lives in one process and
is refused.
"""

from __future__ import annotations

import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geoforge.backends.shards import ShardSpec, run_shard
from geoforge.backends.tally import Tally, load_tokenizer
from geoforge.errors import GeoforgeError, UsageError
from geoforge.store import Store

if TYPE_CHECKING:
    from geoforge.generate import ShardWork
    from geoforge.perturb import PoolEntry

#: Times Ray runs a shard's task again after its worker died (Ray's default for tasks is 3).
MAX_RETRIES = 3
#: Samples between two progress reports of a task.
REPORT_EVERY = 8
#: Seconds the driver waits for a task before it reads the progress reports again.
POLL_SECONDS = 0.25
#: Seconds a cluster's address has to accept a TCP connection before the run gives up.
CONNECT_SECONDS = 10.0


def import_ray() -> Any:
    """The ``ray`` module. Raises UsageError naming the extra when it is not installed."""
    try:
        import ray
    except ImportError:
        raise UsageError("--backend ray needs Ray: pip install 'geoforge[ray]'") from None
    return ray


def _shard_task(work: ShardWork, spec: ShardSpec, out: Store, queue: Any) -> Tally:
    """The Ray task of one shard: :func:`run_shard`, reporting the samples written to ``queue``
    as ``(shard index, samples written)`` every :data:`REPORT_EVERY` samples."""
    written = 0

    def report(k: int) -> None:
        nonlocal written
        written += k
        if written % REPORT_EVERY == 0 and written < spec.size:
            queue.put_nowait((spec.index, written))

    return run_shard(work, spec, out, report)


def _first_line(e: BaseException) -> str:
    """The first line of ``e``'s message, or its type's name."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _probe(address: str) -> None:
    """Raise GeoforgeError unless ``address`` (``host:port`` or ``ray://host:port``) accepts a
    TCP connection within :data:`CONNECT_SECONDS`."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--ray-address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise GeoforgeError(f"--ray-address {address}: no Ray cluster answers there ({reason})") from None


def _captions_task(work: ShardWork, spec: ShardSpec) -> list[PoolEntry]:
    """The Ray task of the first pass of ``--retrieval-pool corpus``: the shard's captions."""
    return work.captions(range(spec.lo, spec.hi))


class RayBackend:
    """Shards as Ray tasks, one CPU each, on the cluster at ``address`` (``"auto"``,
    ``"ray://host:10001"``); with no address, on the Ray instance this process already started,
    else on a local one of ``workers`` CPUs started for the run and shut down after it.
    ``max_retries``: how many times a task whose worker died is run again."""

    def __init__(self, workers: int = 1, address: str | None = None, max_retries: int = MAX_RETRIES) -> None:
        self.ray = import_ray()
        self.workers, self.address, self.max_retries = workers, address, max_retries
        self.cpus: int | None = None
        self.started = False

    def prepare(self, out: Store) -> Store:
        """``out`` as every worker can reach it: a local path made absolute (workers may run in
        other directories). Joins the cluster first, so that nothing is written when it cannot
        be reached. Raises UsageError for a ``memory://`` URL (one process's memory),
        GeoforgeError when no cluster answers (:meth:`_start`)."""
        if str(out.root).startswith("memory://"):
            raise UsageError(
                f"--out {out}: a memory:// filesystem lives in one process; Ray workers cannot write it"
            )
        self._start()
        return Store(Path(out.root).absolute()) if out.local else out

    def describe(self) -> dict[str, object]:
        """``backend``, ``workers`` (the CPUs of the Ray cluster) and the address."""
        return {"backend": "ray", "workers": self.cpus, "ray_address": self.address}

    def run(
        self, work: ShardWork, shards: Sequence[ShardSpec], out: Store, on_progress: Callable[[int], None]
    ) -> Iterator[tuple[ShardSpec, Tally]]:
        """Submit every shard's task, then yield each shard with its tally as it completes
        (see the module's docstring). Raises the error a task raised, or GeoforgeError naming
        the shard if its worker died more than ``max_retries`` times."""
        ray = self.ray
        out = self.prepare(out)
        self._start()
        from ray.util.queue import Empty, Queue

        queue = Queue(actor_options={"num_cpus": 0})
        pending: dict[Any, ShardSpec] = {}
        try:
            task = ray.remote(_shard_task).options(
                num_cpus=1, max_retries=self.max_retries, retry_exceptions=False
            )
            shared = ray.put(work)
            pending = {task.remote(shared, spec, out, queue): spec for spec in shards}
            load_tokenizer()  # while the first tasks run: the driver counts the tokens
            reported: dict[int, int] = {}

            def advance(index: int, written: int) -> None:
                ahead = written - reported.get(index, 0)
                if ahead > 0:  # a retried task reports from 0 again: count each sample once
                    reported[index] = written
                    on_progress(ahead)

            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
                try:
                    for index, written in queue.get_nowait_batch(queue.qsize()):
                        advance(index, written)
                except Empty:
                    pass
                for ref in ready:
                    spec = pending.pop(ref)
                    tally = self._result(ref, spec)
                    advance(spec.index, spec.size)
                    yield spec, tally
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            queue.shutdown()

    def captions(self, work: ShardWork, shards: Sequence[ShardSpec]) -> Iterator[PoolEntry]:
        """Pool entries (key, caption, claims) of ``shards``, in corpus order, one Ray task per
        shard (:meth:`geoforge.generate.ShardWork.captions`)."""
        self._start()
        task = self.ray.remote(_captions_task).options(num_cpus=1, max_retries=self.max_retries)
        shared = self.ray.put(work)
        refs = [task.remote(shared, spec) for spec in shards]
        for ref, spec in zip(refs, shards):
            yield from self._result(ref, spec)

    def close(self) -> None:
        """Shut down the local Ray instance this backend started, if any."""
        if self.started:
            self.ray.shutdown()
            self.started = False

    def _start(self) -> None:
        """Join the cluster (or start a local instance) unless this process is connected.
        Raises GeoforgeError naming ``--ray-address`` when no cluster answers there: a
        ``host:port`` that refuses a TCP connection within :data:`CONNECT_SECONDS` is reported
        at once (Ray itself would retry it for minutes), and Ray's own connection errors
        become one line."""
        ray = self.ray
        if not ray.is_initialized():
            if self.address not in (None, "auto", "local"):
                _probe(self.address)  # type: ignore[arg-type]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # Ray's client warns before it raises
                    ray.init(
                        address=self.address,
                        num_cpus=None if self.address else self.workers,
                        include_dashboard=False,
                        logging_level="warning",
                        configure_logging=True,
                    )
            except (ConnectionError, TimeoutError) as e:
                hint = (
                    "start one with `ray start --head`, or leave out --ray-address to start a "
                    "local instance for the run"
                )
                raise GeoforgeError(
                    f"--ray-address {self.address}: no Ray cluster to join ({_first_line(e)}); {hint}"
                ) from None
            self.started = True
        self.cpus = int(ray.cluster_resources().get("CPU", 0))

    def _result(self, ref: Any, spec: ShardSpec) -> Any:
        """What the task of shard ``spec`` returned; its geoforge error re-raised as is."""
        ray = self.ray
        try:
            return ray.get(ref)  # type: ignore[no-any-return]
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, GeoforgeError):
                raise e.cause from None
            raise GeoforgeError(f"{spec.name}: the Ray task failed: {e.cause!r}") from None
        except ray.exceptions.RayError as e:
            raise GeoforgeError(
                f"{spec.name}: the Ray task failed after {self.max_retries} retries: {_first_line(e)}"
            ) from None
