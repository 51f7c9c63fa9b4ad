"""A pre-decoded image cache of a corpus, so that training reads pixels instead of decoding PNGs.

``geoforge corpus cache DATA --size S --out DIR`` decodes every sample's positive and image
negatives once, through the trainer's own :meth:`geoforge_train.data.Transform.pixels` without
augmentation (the whole figure, longer side resized to S px, bicubic, centred on white), and
writes them as uint8 arrays that ``geoforge train mmclip --data DATA --data-cache DIR`` reads
memory-mapped: the tensors it trains on are equal to those of the decoded path. ``DIR`` holds,
per shard of ``DATA`` (in :class:`~geoforge_train.data.CorpusIndex` order):

* ``part-NNNNNN.npy``: uint8 (images, S, S), greyscale: each sample's positive, then its image
  negatives in record order (every filled tile of its strip);
* ``part-NNNNNN.rows.npy``: int64 (samples, 2): each sample's first row and its negatives;
* ``part-NNNNNN.ids.npy``: int64 (images,): each negative's id
  (:func:`geoforge_train.data.tile_id`), −1 for a positive;

and ``index.json``: the format version, the size, and per shard its name, byte size and a
fingerprint of its members' layout (SHA-1 of every member's extension, offset and size), which
a training run compares with the shards it reads. A regenerated or edited corpus moves members
(a PNG of another length shifts every later offset), so a stale cache is refused with a
one-line error. Numpy's ``.npy`` format and ``numpy.load(mmap_mode="r")`` do the storage.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geoforge.errors import UsageError
from geoforge.store import new_folders
from geoforge_train.data import (
    UNREADABLE,
    CorpusIndex,
    DataError,
    Decoded,
    Transform,
    _read,
    decode_images,
    read_meta,
    unreadable,
)

#: Version of the cache layout; a cache of another version is refused.
CACHE_VERSION = 1
INDEX = "index.json"


def _by_shard(index: CorpusIndex) -> list[tuple[Path, list[dict[str, tuple[Path, int, int]]]]]:
    """The samples of ``index`` grouped by shard, in order."""
    groups: list[tuple[Path, list[dict[str, tuple[Path, int, int]]]]] = []
    for spans in index.samples:
        path = spans["json"][0]
        if not groups or groups[-1][0] != path:
            groups.append((path, []))
        groups[-1][1].append(spans)
    return groups


def fingerprint(samples: list[dict[str, tuple[Path, int, int]]]) -> str:
    """SHA-1 (hex) of the layout of one shard's members: each sample's extensions, offsets and
    sizes in order. Any change of a member's length moves every later offset."""
    h = hashlib.sha1()
    for spans in samples:
        for ext in sorted(spans):
            _, offset, size = spans[ext]
            h.update(f"{ext}:{offset}:{size};".encode())
    return h.hexdigest()


def _shard_entry(path: Path, samples: list[dict[str, tuple[Path, int, int]]], part: int) -> dict[str, Any]:
    return {
        "part": f"part-{part:06d}",
        "shard": path.name,
        "bytes": path.stat().st_size,
        "samples": len(samples),
        "fingerprint": fingerprint(samples),
    }


def _write_part(job: tuple[Path, list[dict[str, tuple[Path, int, int]]], int, Path]) -> int:
    """Decode one shard into its part files (written under ``.tmp`` names, then renamed);
    returns the images written."""
    shard, samples, size, stem = job
    transform = Transform(size)
    counts = []
    for spans in samples:
        record = json.loads(read_meta(spans).get("negatives", "{}") or "{}")
        counts.append(len(record.get("image", [])))
    rows = np.zeros((len(samples), 2), dtype=np.int64)
    rows[:, 0] = np.concatenate([[0], np.cumsum(np.array(counts) + 1)[:-1]])
    rows[:, 1] = counts
    total = int(sum(counts) + len(samples))
    tmp = stem.with_name(stem.name + ".npy.tmp")
    images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(total, size, size))
    ids = np.full(total, -1, dtype=np.int64)
    for (start, count), spans in zip(rows.tolist(), samples, strict=True):
        files = {ext: _read(span) for ext, span in spans.items() if ext in ("json", "png", "negatives.png")}
        try:
            decoded = decode_images(files, count, transform)
        except UNREADABLE as e:
            raise unreadable(spans, e) from None
        if decoded.positive.ndim != 2:
            key = json.loads(files["json"])["key"]
            raise DataError(f"{shard}: sample {key} is not greyscale; the cache holds greyscale figures only")
        images[start] = decoded.positive
        images[start + 1 : start + 1 + count] = decoded.negatives
        ids[start + 1 : start + 1 + count] = decoded.negative_ids
    images.flush()
    del images
    np.save(stem.with_name(stem.name + ".rows.npy"), rows)
    np.save(stem.with_name(stem.name + ".ids.npy"), ids)
    os.replace(tmp, stem.with_name(stem.name + ".npy"))
    return total


def _own_files(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name == INDEX or (p.name.startswith("part-") and ".npy" in p.name)]


def build_cache(data: str, out: Path, size: int, workers: int = 1, overwrite: bool = False) -> dict[str, Any]:
    """Write the cache of ``data`` (sources as :func:`geoforge_train.data.shard_paths` reads
    them) at ``size`` px into ``out``, decoding shards in ``workers`` processes; returns the
    index (plus ``images``: the count written). Raises UsageError if ``out`` holds files and
    ``overwrite`` is not given (with it, only the cache's own files are replaced), DataError for
    a corpus that cannot be read whole (a missing or corrupt shard, an unreadable sample:
    :class:`geoforge_train.data.UnreadableSample`) or that is not greyscale.
    ``data`` is indexed before ``out`` is touched; when the command fails, the directories it
    made go again with the files it wrote in them (never a directory that existed before)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"--out {out} is not empty: pass --overwrite to replace the cache in it")
    index = CorpusIndex.build(data, strict="a cache covers every shard")
    made = new_folders(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        for p in _own_files(out):
            p.unlink()
        return _write_cache(data, index, out, size, workers)
    except BaseException:
        if made:  # this command made ``out``: its files go, then each folder made that is empty
            for p in _own_files(out):
                p.unlink(missing_ok=True)
            for folder in made:  # deepest first
                if not any(folder.iterdir()):
                    folder.rmdir()
        raise


def _write_cache(data: str, index: CorpusIndex, out: Path, size: int, workers: int) -> dict[str, Any]:
    """Decode the shards of ``index`` into ``out`` (the body of :func:`build_cache`)."""
    groups = _by_shard(index)
    jobs = [(path, samples, size, out / f"part-{i:06d}") for i, (path, samples) in enumerate(groups)]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            written = list(pool.map(_write_part, jobs))
    else:
        written = [_write_part(job) for job in jobs]
    entries = [_shard_entry(path, samples, i) for i, (path, samples) in enumerate(groups)]
    meta = {
        "version": CACHE_VERSION,
        "size": size,
        "data": data,
        "samples": len(index.samples),
        "shards": entries,
    }
    (out / INDEX).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta | {"images": sum(written)}


@dataclass
class ImageCache:
    """A cache that :func:`build_cache` wrote, opened for reading. ``meta`` is its
    ``index.json``; the arrays are memory-mapped on first use in each process (and not
    pickled into DataLoader workers)."""

    root: Path
    meta: dict[str, Any]
    _parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = field(default=None, repr=False)
    _where: list[tuple[int, int]] = field(default_factory=list, repr=False)

    @staticmethod
    def open(root: str | Path) -> ImageCache:
        """Read ``root/index.json``. Raises DataError if it is missing, unreadable or of
        another version."""
        root = Path(root)
        try:
            meta = json.loads((root / INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(
                f"--data-cache {root}: no readable {INDEX} ({type(e).__name__}): "
                "build one with geoforge corpus cache"
            ) from None
        if meta.get("version") != CACHE_VERSION:
            raise DataError(
                f"--data-cache {root}: cache version {meta.get('version')}, expected "
                f"{CACHE_VERSION}: build it again with geoforge corpus cache --overwrite"
            )
        return ImageCache(root, meta)

    def check(self, index: CorpusIndex, transform: Transform) -> None:
        """Raise DataError, in one line naming what differs, unless this cache holds exactly the
        shards of ``index`` (names, byte sizes, member layouts, in order) at ``transform.size``
        and ``transform`` draws no augmentation (the cache holds un-augmented images)."""
        rebuild = (
            f"rebuild it: geoforge corpus cache DATA --size {transform.size} --out {self.root} --overwrite"
        )
        if self.meta["size"] != transform.size:
            raise DataError(
                f"--data-cache {self.root}: images of {self.meta['size']} px, but the model "
                f"takes {transform.size} px; {rebuild}"
            )
        if transform.train and (transform.rotate > 0 or transform.downscale < 1):
            raise DataError(
                f"--data-cache {self.root} holds images without augmentation: "
                "--rotate and --downscale need the decoded path (drop --data-cache)"
            )
        groups = _by_shard(index)
        stored = self.meta["shards"]
        if len(groups) != len(stored):
            raise DataError(
                f"--data-cache {self.root} is stale: built for {len(stored)} shard(s), "
                f"the data has {len(groups)} readable; {rebuild}"
            )
        self._where = []
        for i, ((path, samples), entry) in enumerate(zip(groups, stored, strict=True)):
            now = {"shard": path.name, "bytes": path.stat().st_size, "samples": len(samples)}
            for key, value in now.items():
                if entry[key] != value:
                    raise DataError(
                        f"--data-cache {self.root} is stale: shard {i} ({path}) has {key} "
                        f"{value}, the cache {entry[key]}; {rebuild}"
                    )
            if entry["fingerprint"] != fingerprint(samples):
                raise DataError(
                    f"--data-cache {self.root} is stale: the members of {path} moved since "
                    f"the cache was built; {rebuild}"
                )
            self._where += [(i, j) for j in range(len(samples))]

    def decoded(self, i: int) -> Decoded:
        """Sample ``i``'s images as :func:`geoforge_train.data.decode_images` gives them without
        augmentation (copies, not views of the map). Needs :meth:`check` first."""
        if self._parts is None:
            self._parts = [
                tuple(_mapped(self.root / f"{e['part']}{ext}") for ext in (".npy", ".rows.npy", ".ids.npy"))
                for e in self.meta["shards"]
            ]
        part, j = self._where[i]
        images, rows, ids = self._parts[part]
        start, count = (int(v) for v in rows[j])
        block = np.array(images[start : start + 1 + count])
        return Decoded(block[0], list(block[1:]), ids[start + 1 : start + 1 + count].tolist())

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_parts": None}


def _mapped(file: Path) -> np.ndarray:
    """``file`` memory-mapped. Raises DataError naming it when it is truncated or unreadable."""
    try:
        return np.load(file, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise DataError(f"--data-cache: {file} cannot be read ({e}); build the cache again") from None
