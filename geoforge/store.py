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
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from geoforge.errors import UsageError

#: The suffix of every temporary file a store writes.
TMP = ".tmp"


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
        directory, any other string as an fsspec URL."""
        if isinstance(out, Store):
            return out
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
        """The names of the files in the directory (none if it is missing), sorted."""
        if isinstance(self.root, Path):
            return sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []
        if not self._fs.isdir(self.root):
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self._fs.ls(self.root, detail=False))

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

    def open_read(self, name: str) -> IO[bytes]:
        """The file ``name``, open for binary reading. Raises OSError (FileNotFoundError)."""
        if isinstance(self.root, Path):
            return open(self.root / name, "rb")
        return self._fs.open(self.label(name), "rb")  # type: ignore[no-any-return]

    def read_text(self, name: str) -> str:
        """The UTF-8 text of the file ``name``. Raises OSError."""
        with self.open_read(name) as fh:
            return fh.read().decode("utf-8")

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
