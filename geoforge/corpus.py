"""Corpus on disk: WebDataset tar shards, ``sizes.json``, ``manifest.json`` and a dataset card.

Layout (DESIGN.md, "Corpus on disk")::

    OUT/shard-000000.tar   KEY.json, KEY.png, KEY.txt (and KEY.negatives.png in a corpus
                           with image negatives) per sample, in index order
    OUT/sizes.json         {"shard-000000.tar": 1000, ...} (open_clip's convention)
    OUT/manifest.json      version, git SHA, resolved recipe and its hash, seed, counts,
                           rejections by reason, and a ``run`` section with timings
    OUT/README.md          Hugging Face dataset card

Shards are deterministic: tar members carry a fixed mtime, owner and mode, and samples are
written in index order whatever the backend and the number of workers. A shard is written to
``.shard-NNNNNN.tar.TOKEN.tmp`` and renamed when complete (:meth:`geoforge.store.Store.atomic`),
so a kill or a full disk never leaves a half shard under a final name; ``resume`` keeps
complete shards and redoes the rest. The directory may be any fsspec URL
(:class:`geoforge.store.Store`).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from geoforge.errors import GeoforgeError, UsageError
from geoforge.store import TMP, Store

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

#: zlib level of the strip of image negatives (see :func:`pack_negatives`).
STRIP_LEVEL = 6

#: The tar mtime of every member: 2000-01-01T00:00:00Z, so shards are byte-identical.
MTIME = 946684800
SHARD = "shard-{:06d}.tar"
_SHARD_RE = re.compile(r"^shard-(\d{6})\.tar$")
_OWN_FILES = ("manifest.json", "sizes.json", "README.md")
#: The member holding a sample's image negatives side by side (:func:`pack_negatives`). Every
#: sample of a corpus with image negatives has it, whatever number it got, so WebDataset, Hugging
#: Face ``datasets`` and open_clip read every sample with the same members.
NEGATIVES = "negatives.png"
#: The grey level of an empty tile of :data:`NEGATIVES` (the figures' white background).
EMPTY_TILE = 255


class CorpusError(GeoforgeError):
    """A corpus directory cannot be written or read as asked."""


def shard_name(index: int) -> str:
    """``shard-000042.tar`` for shard 42."""
    return SHARD.format(index)


def prepare_output(out: Store, *, resume: bool, overwrite: bool) -> set[int]:
    """Get the corpus directory ``out`` ready and return the indices of complete shards to keep.

    A missing or empty directory is created. An existing corpus is refused unless ``resume``
    (keep complete shards) or ``overwrite`` (delete this corpus's files, nothing else) is
    given. A directory that is not empty and holds no corpus (no ``manifest.json`` and no
    shard) is refused either way: writing the corpus would replace files of its own names there,
    such as a ``README.md``. Leftover ``.tmp`` files from a killed run are removed. Raises
    UsageError.
    """
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    out.makedirs()
    existing = out.names()
    shards = {int(m.group(1)) for name in existing if (m := _SHARD_RE.match(name))}
    if existing and not (resume or overwrite):
        raise UsageError(f"{out} is not empty: pass --resume to continue it or --overwrite to replace it")
    leftovers = all(name.endswith(TMP) for name in existing)  # a run killed at its first write
    if existing and not leftovers and not shards and "manifest.json" not in existing:
        raise UsageError(
            f"{out} is not empty and holds no corpus (no manifest.json or shard-*.tar) to "
            f"{'resume' if resume else 'replace'}: choose a new or empty --out"
        )
    out.clean_tmp()
    if overwrite:
        for name in existing:
            if _SHARD_RE.match(name) or name in _OWN_FILES:
                out.remove(name)
        return set()
    return shards


def write_shard(out: Store, name: str, samples: Iterable[tuple[str, dict[str, bytes]]]) -> int:
    """Write ``(key, {ext: bytes})`` pairs to the tar ``name`` of ``out`` atomically
    (:meth:`geoforge.store.Store.atomic`); returns the count.

    Members are named ``KEY.EXT`` in the order given, with mtime :data:`MTIME`, uid/gid 0,
    empty owner names and mode 0644 (ustar format). On any error (including one raised while
    ``samples`` is iterated) no file ``name`` is made, and the error is re-raised.
    """
    count = 0
    with out.atomic(name) as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key, files in samples:
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                info.mtime = MTIME
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
            count += 1
    return count


def pack_negatives(pngs: Sequence[bytes | np.ndarray], slots: int, size: int) -> bytes:
    """The :data:`NEGATIVES` member: one greyscale PNG, ``slots · size`` pixels wide and ``size``
    high, whose tile ``i`` (columns ``i·size`` to ``(i+1)·size``) is image negative ``i``, pixel
    for pixel (PNG is lossless), and whose tiles past ``len(pngs)`` are white
    (:data:`EMPTY_TILE`). ``slots`` is the number of image negatives the corpus asked for, so
    every sample has the same member; ``KEY.json``'s ``negatives`` record says how many tiles
    are filled. Raises CorpusError if there are more negatives than slots or a negative is not
    ``size`` × ``size`` pixels. A negative may be given as its PNG bytes or as its pixels, an
    (H, W) uint8 array (no decoding).

    The strip is written by :func:`geoforge.render.draw.encode_png` (rows unfiltered) at zlib
    level :data:`STRIP_LEVEL`. Pillow's ``optimize=True``, used before, took 75–110 ms for ten
    448-px tiles, more than making and verifying them. On the 60 strips of a ``mmgeo-4k``
    corpus with ten negatives each (``benchmarks/strip_png.py``, 2-core VM; write, read,
    bytes): Pillow ``optimize=True`` 75 ms, 4.6 ms, 35.5 KB; level 6 9.7 ms, 3.2 ms, 39.1 KB;
    level 3 3.9 ms, 1.6 ms, 50.8 KB. Level 6 keeps the corpus near its old size: a strip is
    written once and read every epoch."""
    import numpy as np
    from PIL import Image

    from geoforge.render.draw import encode_png

    if len(pngs) > slots:
        raise CorpusError(f"{len(pngs)} image negatives do not fit {slots} tiles")
    strip = np.full((size, slots * size), EMPTY_TILE, dtype=np.uint8)
    for i, png in enumerate(pngs):
        if isinstance(png, bytes):
            with Image.open(io.BytesIO(png)) as image:
                tile = np.asarray(image.convert("L"))
        else:
            tile = png
        if tile.shape != (size, size):
            height, width = tile.shape[:2]
            raise CorpusError(f"image negative {i} is {width}×{height} px, not {size}×{size}")
        strip[:, i * size : (i + 1) * size] = tile
    return encode_png(strip, STRIP_LEVEL)


def unpack_negatives(strip: bytes | Image.Image, count: int) -> list[Image.Image]:
    """The first ``count`` tiles of a :data:`NEGATIVES` member (PNG bytes, or the image a
    WebDataset or ``datasets`` reader decoded), as square images in the strip's mode. The
    tile size is the strip's height. Raises CorpusError if the strip holds fewer tiles."""
    from PIL import Image

    image = Image.open(io.BytesIO(strip)) if isinstance(strip, bytes) else strip
    size = image.height
    if count * size > image.width:
        raise CorpusError(f"{count} image negatives asked of a strip of {image.width // size} tiles")
    return [image.crop((i * size, 0, (i + 1) * size, size)) for i in range(count)]


@dataclass
class Record:
    """One sample read back from a shard: its ``key`` and members by extension."""

    key: str
    files: dict[str, bytes]

    @property
    def meta(self) -> dict[str, object]:
        """The decoded ``KEY.json``."""
        return json.loads(self.files["json"])

    def image_negatives(self) -> list[Image.Image]:
        """This sample's image negatives, in the order of its ``negatives`` record's ``image``
        list (empty without negatives)."""
        record = json.loads(str(self.meta.get("negatives") or "{}"))
        count = len(record.get("image", []))
        return unpack_negatives(self.files[NEGATIVES], count) if count else []


def read_shard(path: Path | str, out: Store | None = None) -> Iterator[Record]:
    """Yield the samples of the shard ``path`` (a file, or the name of a shard of the corpus
    ``out``) in the order of their first members. A sample's members are found by key wherever
    they are, so a shard whose members are not adjacent (grouped by extension by another tool)
    reads the same (``geoforge corpus verify`` reports it). Raises CorpusError if it is not a
    readable tar."""
    label = out.label(str(path)) if out is not None else path
    try:
        with (
            out.open_read(str(path)) if out is not None else open(path, "rb") as fh,
            tarfile.open(fileobj=fh, mode="r") as tar,
        ):
            groups: dict[str, list[tarfile.TarInfo]] = {}
            for member in shard_members(tar, fh):
                groups.setdefault(member.name.partition(".")[0], []).append(member)
            for key, members in groups.items():
                record = Record(key, {})
                for member in members:
                    data = tar.extractfile(member)
                    record.files[member.name.partition(".")[2]] = data.read() if data else b""
                yield record
    except (tarfile.TarError, OSError) as e:
        raise CorpusError(f"{label}: cannot read shard: {shard_problem(e)}") from None


def shard_members(tar: tarfile.TarFile, fh: IO[bytes]) -> list[tarfile.TarInfo]:
    """The file members of ``tar``, open on the seekable ``fh``. Raises tarfile.ReadError when an
    uncompressed tar does not end with its end-of-archive blocks after the last member: tarfile
    stops quietly at a header cut short or overwritten, and the shard would read as a shorter
    one (a resumed run would keep it, a trainer would train on fewer samples)."""
    files = [m for m in tar.getmembers() if m.isfile()]
    if tar.fileobj is fh:
        fh.seek(tar.offset)
        end = fh.read(2 * tarfile.BLOCKSIZE)
        if len(end) < 2 * tarfile.BLOCKSIZE:
            raise tarfile.ReadError(f"truncated after member {len(files)} (no end-of-archive blocks)")
        if end.count(0) != len(end):
            raise tarfile.ReadError(f"the header after member {len(files)} is not a tar header")
    return files


def shard_problem(error: tarfile.TarError | OSError) -> str:
    """Why a shard could not be read, in one line: the system's reason for an OSError
    (``Permission denied``), ``not a tar archive`` for a file that no tar method opens
    (tarfile lists each method's failure on lines of their own), else tarfile's message
    (``unexpected end of data``) on one line."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error)
    if isinstance(error, tarfile.ReadError) and "could not be opened successfully" in text:
        return "not a tar archive"
    return " ".join(text.split()) or type(error).__name__


def shards_in(out: Path) -> list[Path]:
    """The complete shards of a corpus directory, in order."""
    return sorted(p for p in out.iterdir() if _SHARD_RE.match(p.name))


def read_corpus(out: str | Path) -> Iterator[Record]:
    """Every sample of a corpus directory (a path or its string), in order. Raises
    CorpusError if there is none."""
    out = Path(out)
    if not out.is_dir():
        raise CorpusError(f"{out} is not a corpus directory")
    paths = shards_in(out)
    if not paths:
        raise CorpusError(f"{out} holds no shard-NNNNNN.tar")
    for path in paths:
        yield from read_shard(path)


def git_sha() -> str | None:
    """The git commit of the geoforge source tree, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass
class Counts:
    """Counts over sample metadata, added one sample at a time and merged shard by shard, so a
    corpus of any size is counted in constant memory: samples, families, features, styles,
    rejections (the rejected entries of each sample's ``draws``) and the negatives' totals.
    Merging the counts of the shards in shard order gives exactly the counts of the whole
    corpus read in order."""

    samples: int = 0
    families: Counter[str] = field(default_factory=Counter)
    features: Counter[str] = field(default_factory=Counter)
    styles: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    negatives: NegativeStats = field(default_factory=lambda: NegativeStats())

    def add(self, meta: dict[str, Any]) -> None:
        """Count one sample, given its decoded ``KEY.json``."""
        self.samples += 1
        self.families[str(meta["family"])] += 1
        self.features.update(meta["features"])
        self.styles[str(meta["style"])] += 1
        self.rejections.update(d for d in meta["draws"] if d != "accepted")
        if "negatives" in meta:
            question = str(meta["caption"].get("question", ""))
            self.negatives.add(json.loads(str(meta["negatives"])), question)

    def merge(self, other: Counts) -> None:
        """Add the counts of the samples that follow (another shard's)."""
        self.samples += other.samples
        for mine, theirs in (
            (self.families, other.families),
            (self.features, other.features),
            (self.styles, other.styles),
            (self.rejections, other.rejections),
        ):
            mine.update(theirs)
        self.negatives.merge(other.negatives)

    def to_json(self, asked: Mapping[str, int] | None = None) -> dict[str, object]:
        """The manifest's ``counts``: JSON-ready, every mapping sorted by key; ``asked``: the
        negatives asked per sample by kind (:meth:`NegativeStats.to_json`)."""
        out: dict[str, object] = {
            "samples": self.samples,
            "families": dict(sorted(self.families.items())),
            "features": dict(sorted(self.features.items())),
            "styles": dict(sorted(self.styles.items())),
            "rejections": dict(sorted(self.rejections.items())),
        }
        if self.negatives.samples:
            out["negatives"] = self.negatives.to_json(asked)
        return out


def summarise(records: Iterable[Record], asked: Mapping[str, int] | None = None) -> dict[str, object]:
    """:class:`Counts` over ``records``, as JSON; ``asked``: the negatives asked per sample by
    kind (:meth:`NegativeStats.to_json`)."""
    counts = Counts()
    for r in records:
        counts.add(r.meta)
    return counts.to_json(asked)


#: The kinds of negatives of a ``negatives`` record.
NEGATIVE_KINDS = ("image", "caption", "retrieval")
#: Negatives of one kind that count as many for a sample (the manifest's ``at_least_8``).
MANY_NEGATIVES = 8


@dataclass
class NegativeStats:
    """Totals over the samples' ``negatives`` records: accepted negatives by kind and plugin,
    per-sample counts (their sum and how many samples got each number), the mean pixel difference
    of image negatives (summed exactly, as a fraction, so any split into shards gives the same
    mean), how each kind is false (``geometry``, ``value``, ``undrawn circle``, ``absent
    point``), the image negatives on which the engine restored a true mark, given or stroke
    that the plugin dropped, the caption negatives of question-style positives that keep the
    question, rejections by plugin and reason, and plugin failures with the first message of
    each. Constant memory whatever the number of samples."""

    samples: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    totals: Counter[str] = field(default_factory=Counter)
    #: ``(kind, n)`` → samples that got exactly ``n`` negatives of ``kind``.
    per_sample: Counter[tuple[str, int]] = field(default_factory=Counter)
    pixel_sum: Fraction = Fraction(0)
    pixel_n: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)
    how: Counter[tuple[str, str]] = field(default_factory=Counter)
    restored: int = 0
    questions: Counter[bool] = field(default_factory=Counter)

    def add(self, record: dict[str, Any], question: str = "") -> None:
        """Count one sample's negatives record; ``question`` is its positive's question."""
        self.samples += 1
        for kind in NEGATIVE_KINDS:
            self.totals[kind] += len(record[kind])
            self.per_sample[kind, len(record[kind])] += 1
            self.accepted.update(f"{kind}: {x['plugin']}" for x in record[kind])
            self.how.update((kind, x.get("how", "geometry")) for x in record[kind])
        self.restored += sum(x.get("restored", 0) > 0 for x in record["image"])
        if question:
            self.questions.update(x["text"].endswith(" " + question) for x in record["caption"])
        for x in record["image"]:
            self.pixel_sum += Fraction(x["pixel_diff"])
            self.pixel_n += 1
        self.rejections.update(record["rejections"])
        self.failures.update(record["failures"])
        for key, message in record.get("errors", {}).items():
            self.errors.setdefault(key, message)

    def merge(self, other: NegativeStats) -> None:
        """Add the totals of the samples that follow (another shard's); the first message of a
        failure stays the earlier sample's."""
        self.samples += other.samples
        for mine, theirs in (
            (self.accepted, other.accepted),
            (self.totals, other.totals),
            (self.per_sample, other.per_sample),
            (self.rejections, other.rejections),
            (self.failures, other.failures),
            (self.how, other.how),
            (self.questions, other.questions),
        ):
            mine.update(theirs)  # type: ignore[attr-defined, arg-type]
        self.pixel_sum += other.pixel_sum
        self.pixel_n += other.pixel_n
        self.restored += other.restored
        for key, message in other.errors.items():
            self.errors.setdefault(key, message)

    def at_least(self, kind: str, threshold: int) -> int:
        """The samples that got at least ``threshold`` negatives of ``kind``."""
        return sum(c for (k, got), c in self.per_sample.items() if k == kind and got >= threshold)

    def to_json(self, asked: Mapping[str, int] | None = None) -> dict[str, object]:
        """JSON-ready totals, with the share of samples that got at least 8 of each kind
        (``at_least_8``) and, since a sample cannot get more than it asked, the share that got
        at least ``min(8, K)`` (``at_least_k``), ``K`` the number ``asked`` per sample of that
        kind (``at_least_k_threshold``; 8 for a kind ``asked`` does not name)."""
        n = max(self.samples, 1)
        how = sorted(self.how.items())
        asked = asked or {}
        threshold = {k: min(MANY_NEGATIVES, int(asked.get(k, MANY_NEGATIVES))) for k in NEGATIVE_KINDS}
        return {
            "samples": self.samples,
            "accepted": dict(sorted(self.accepted.items())),
            "at_least_8": {k: round(self.at_least(k, MANY_NEGATIVES) / n, 4) for k in NEGATIVE_KINDS},
            "at_least_k": {k: round(self.at_least(k, threshold[k]) / n, 4) for k in NEGATIVE_KINDS},
            "at_least_k_threshold": threshold,
            "mean_per_sample": {k: round(self.totals[k] / n, 3) for k in NEGATIVE_KINDS},
            "mean_pixel_diff": round(float(self.pixel_sum / self.pixel_n), 5) if self.pixel_n else 0.0,
            "how_false": {
                kind: {h: round(c / max(self.totals[kind], 1), 4) for (k, h), c in how if k == kind}
                for kind in NEGATIVE_KINDS
            },
            "restored_share": round(self.restored / max(self.totals["image"], 1), 4),
            "question_kept": round(self.questions[True] / sum(self.questions.values()), 4)
            if self.questions
            else None,
            "rejections": dict(sorted(self.rejections.items())),
            "failures": dict(sorted(self.failures.items())),
            "errors": dict(sorted(self.errors.items())),
        }


def write_json(out: Store, name: str, data: object) -> None:
    """Write JSON (sorted keys, indented, UTF-8) to ``name`` of ``out`` atomically."""
    out.write_text(name, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
