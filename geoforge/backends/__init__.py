"""Backends: what runs the shards of ``geoforge generate`` (``--backend local|ray``).

The shard is the unit of work (:mod:`geoforge.backends.shards`): its bytes depend on the corpus's
settings and its index range only, so every backend, at any number of workers, writes the same
corpus, and a corpus begun with one backend can be resumed with another.

* ``local`` (:mod:`geoforge.backends.local`): a process pool on this machine; the default.
* ``ray`` (:mod:`geoforge.backends.ray_backend`): one Ray task per shard, with retries, on a
  Ray cluster (``pip install 'geoforge[ray]'``).

Each backend counts the shards it writes (:class:`~geoforge.backends.tally.Tally`), and
:func:`run_shards` merges the counts in shard order for the manifest, the card and the table.
"""

from __future__ import annotations

from geoforge.backends.shards import Backend, ShardSpec, plan_shards, run_shard, run_shards
from geoforge.backends.tally import Tally
from geoforge.errors import UsageError

#: The names ``--backend`` accepts.
BACKENDS = ("local", "ray")


def make_backend(name: str, *, workers: int = 1, address: str | None = None) -> Backend:
    """The backend ``name`` (:data:`BACKENDS`) with ``workers`` processes (for ``ray``: the CPUs
    of a local instance started for the run) and, for ``ray``, the cluster ``address``. Raises
    UsageError for an unknown name, an address without ``ray``, or Ray not installed."""
    if name == "local":
        if address is not None:
            raise UsageError("--ray-address needs --backend ray")
        from geoforge.backends.local import LocalBackend

        return LocalBackend(workers)
    if name == "ray":
        from geoforge.backends.ray_backend import RayBackend

        return RayBackend(workers, address)
    raise UsageError(f"--backend {name}: expected one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "Backend",
    "ShardSpec",
    "Tally",
    "make_backend",
    "plan_shards",
    "run_shard",
    "run_shards",
]
