"""Where a corpus is written: a local directory, or any fsspec URL.

A :class:`Store` is a directory of named files with the few operations a corpus writer needs:
list, read, remove, and write atomically (to a temporary name, renamed when complete). A plain
path (``Path`` or a string without ``://``) is a local directory handled with ``os`` and
``pathlib`` alone, fsynced before the rename, exactly as geoforge always wrote corpora. A URL
(``file://``, ``memory://``, ``s3://`` with s3fs, ``gs://`` with gcsfs, ...) goes through
fsspec (``pip install 'geoforge[ray]'``), imported only then. A store pickles by its location,
so a worker process or a Ray task reopens the same directory.

Temporary names are ``.NAME.TOKEN.tmp``, with a token unique to each attempt, so two attempts
at the same file (a Ray task retried while a lost worker still writes) never rename each
other's half-written data; :meth:`Store.clean_tmp` removes the leftovers of killed attempts.

A run holds :meth:`Store.lock` while it writes a local directory (``OUT/.geoforge.lock``), so a
second run on the same output fails at once instead of removing the first run's temporary
files; the lock file is no file of the corpus (:meth:`Store.names` leaves it out).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from geoforge.errors import GeoforgeError, UsageError

#: The suffix of every temporary file a store writes.
TMP = ".tmp"
#: The lock file a run holds in a local corpus directory while it writes it (:meth:`Store.lock`).
LOCK = ".geoforge.lock"


class OutputBusy(GeoforgeError):
    """Another geoforge run holds the output's lock (:meth:`Store.lock`): a failed run, exit 1."""


class Store:
    """A corpus directory: ``Store.at(Path("out"))`` or ``Store.at("s3://bucket/corpus")``.

    ``root`` is the directory (a ``Path`` for a local store, the URL for an fsspec one).
    Raises UsageError from :meth:`at` when a URL's filesystem is not installed.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = root
        self._fs: Any = None
        if isinstance(root, str):
            self._fs = _filesystem(root)

    @classmethod
    def at(cls, out: Path | str | Store) -> Store:
        """The store of ``out``: a store as is, a ``Path`` or a string without ``://`` as a local
        directory, any other string as an fsspec URL. Raises UsageError for an empty string (it
        would name the working directory without saying so)."""
        if isinstance(out, Store):
            return out
        if isinstance(out, str) and not out.strip():
            raise UsageError("the output path is empty: name a directory (. for this one)")
        if isinstance(out, str) and "://" in out:
            return cls(out.rstrip("/"))
        return cls(Path(out))

    @property
    def local(self) -> bool:
        """True for a plain local directory (no fsspec)."""
        return self._fs is None

    @property
    def path(self) -> Path | None:
        """The local directory this store writes: a plain path, or a ``file://`` URL's path;
        ``None`` for any other filesystem."""
        if isinstance(self.root, Path):
            return self.root
        return Path(self.root.removeprefix("file://")) if self.root.startswith("file://") else None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Store, (self.root,))

    def __str__(self) -> str:
        return str(self.root)

    def label(self, name: str) -> str:
        """``name`` inside the store, as a user would write it (for messages)."""
        return str(self.root / name) if isinstance(self.root, Path) else f"{self.root}/{name}"

    def exists(self) -> bool:
        """True if the directory (or, for a local store, any file at its path) exists."""
        return self.root.exists() if isinstance(self.root, Path) else bool(self._fs.exists(self.root))

    def is_dir(self) -> bool:
        """True if the store's root is a directory."""
        return self.root.is_dir() if isinstance(self.root, Path) else bool(self._fs.isdir(self.root))

    def makedirs(self) -> None:
        """Create the directory and its parents if they are missing."""
        if isinstance(self.root, Path):
            self.root.mkdir(parents=True, exist_ok=True)
        else:
            self._fs.makedirs(self.root, exist_ok=True)

    def names(self) -> list[str]:
        """The names of the files in the directory (none if it is missing), sorted; the lock
        file :data:`LOCK` is left out (it is no file of the corpus)."""
        if isinstance(self.root, Path):
            return sorted(p.name for p in self.root.iterdir() if p.name != LOCK) if self.root.is_dir() else []
        if not self._fs.isdir(self.root):
            return []
        names = (p.rstrip("/").rsplit("/", 1)[-1] for p in self._fs.ls(self.root, detail=False))
        return sorted(name for name in names if name != LOCK)

    def remove(self, name: str) -> None:
        """Delete the file ``name`` if it exists."""
        if isinstance(self.root, Path):
            (self.root / name).unlink(missing_ok=True)
        elif self._fs.exists(self.label(name)):
            self._fs.rm(self.label(name))

    def clean_tmp(self) -> None:
        """Delete every temporary file (``*.tmp``) left by a killed or failed attempt."""
        for name in self.names():
            if name.endswith(TMP):
                self.remove(name)

    @contextlib.contextmanager
    def lock(self) -> Iterator[Store]:
        """Hold an exclusive advisory lock on this directory for the block; yield the store.

        A local directory (a path or a ``file://`` URL) is created if missing and locked with
        ``fcntl.flock`` (non-blocking) on its file :data:`LOCK`, which holds this process's id;
        the file is removed when the block ends, and so is a directory this call made if
        nothing else was written in it (a refused run leaves no directory behind). Other fsspec
        URLs (``s3://``, ``memory://``) have no such lock and are not locked, nor is anything on
        a platform without ``fcntl``. Raises OutputBusy, naming the holder's pid, when another
        run holds the lock, and UsageError when the path is a file."""
        path = self.path
        try:
            import fcntl  # noqa: F401  (POSIX only)
        except ImportError:
            path = None
        if path is None:
            yield self
            return
        if path.exists() and not path.is_dir():
            raise UsageError(f"{self} exists and is not a directory")
        made = new_folders(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd = _acquire(path / LOCK, str(self))
            _HELD.add(fd)
            try:
                yield self
            finally:
                with contextlib.suppress(OSError):
                    (path / LOCK).unlink()  # while locked: a run that opened it re-checks
                _HELD.discard(fd)
                os.close(fd)
        finally:
            for directory in made:  # deepest first; stops at the first that holds something
                try:
                    directory.rmdir()
                except OSError:
                    break

    def open_read(self, name: str) -> IO[bytes]:
        """The file ``name``, open for binary reading. Raises OSError (FileNotFoundError)."""
        if isinstance(self.root, Path):
            return open(self.root / name, "rb")
        return self._fs.open(self.label(name), "rb")  # type: ignore[no-any-return]

    def read_text(self, name: str) -> str:
        """The UTF-8 text of the file ``name``. Raises OSError."""
        with self.open_read(name) as fh:
            return fh.read().decode("utf-8")

    def size(self, name: str) -> int:
        """The size in bytes of the file ``name``. Raises OSError (FileNotFoundError)."""
        if isinstance(self.root, Path):
            return (self.root / name).stat().st_size
        return int(self._fs.size(self.label(name)))

    def is_file(self, name: str) -> bool:
        """True if ``name`` is a file of the directory."""
        if isinstance(self.root, Path):
            return (self.root / name).is_file()
        return bool(self._fs.isfile(self.label(name)))

    @contextlib.contextmanager
    def atomic(self, name: str) -> Iterator[IO[bytes]]:
        """Write ``name`` atomically: yield a binary file open on ``.NAME.TOKEN.tmp``; when the
        block ends without error, flush and fsync it (local stores) and rename it to ``name``
        (replacing it); on any error (or kill of the process) no file ``name`` is made or
        changed, and on an error the temporary file is removed and the error re-raised."""
        tmp = f".{name}.{uuid.uuid4().hex[:12]}{TMP}"
        try:
            if isinstance(self.root, Path):
                with open(self.root / tmp, "wb") as fh:
                    yield fh
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(self.root / tmp, self.root / name)
            else:
                with self._fs.open(self.label(tmp), "wb") as fh:
                    yield fh
                self._fs.mv(self.label(tmp), self.label(name))
        except BaseException:
            with contextlib.suppress(OSError):
                self.remove(tmp)
            raise

    def write_text(self, name: str, text: str) -> None:
        """Write UTF-8 ``text`` to ``name`` atomically (:meth:`atomic`)."""
        with self.atomic(name) as fh:
            fh.write(text.encode("utf-8"))


def new_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first: what
    ``path.mkdir(parents=True)`` would make, and what to remove, in order, to undo it."""
    return [d for d in (path, *path.parents) if not d.exists()]


#: Descriptors of the locks this process holds. A forked child (a ``generate`` pool worker)
#: closes its copies at once: an ``flock`` lasts while any descriptor of its open file does, so
#: workers orphaned by a killed run would otherwise keep its output locked.
_HELD: set[int] = set()


def _close_inherited_locks() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def _acquire(lock: Path, label: str) -> int:
    """Open ``lock`` and take its exclusive ``flock`` without waiting; write this process's id
    into it and return the descriptor. A lock file that its holder removed while this process
    opened it is no lock: take the new one. Raises OutputBusy naming the holder's pid."""
    import fcntl

    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            holder = f" (pid {pid})" if pid.isdigit() else ""
            raise OutputBusy(
                f"{label} is being written by another geoforge run{holder}; "
                "wait for it or choose another --out"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            here = os.stat(lock)
        except FileNotFoundError:
            here = None
        mine = os.fstat(fd)
        if here is not None and (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _filesystem(url: str) -> Any:
    """The fsspec filesystem of ``url``. Raises UsageError naming the extra or the package
    that the URL's protocol needs."""
    try:
        import fsspec
    except ImportError:
        raise UsageError(f"--out {url}: writing to a URL needs fsspec: pip install 'geoforge[ray]'") from None
    protocol = url.split("://", 1)[0]
    try:
        return fsspec.filesystem(protocol)
    except (ImportError, ValueError) as e:
        raise UsageError(f"--out {url}: no filesystem for {protocol}:// ({e})") from None
