"""Corpus on disk: WebDataset tar shards, ``sizes.json``, ``manifest.json`` and a dataset card.

Layout (DESIGN.md, "Corpus on disk")::

    OUT/shard-000000.tar   KEY.json, KEY.png, KEY.txt (and KEY.negatives.png in a corpus
                           with image negatives) per sample, in index order
    OUT/sizes.json         {"shard-000000.tar": 1000, ...} (open_clip's convention)
    OUT/manifest.json      version, git SHA, resolved recipe and its hash, seed, counts,
                           rejections by reason, and a ``run`` section with timings
    OUT/README.md          Hugging Face dataset card

Shards are deterministic: tar members carry a fixed mtime, owner and mode, and samples are
written in index order whatever the number of workers. A shard is written to
``.shard-NNNNNN.tar.tmp`` and renamed when complete, so a kill or a full disk never leaves a
half shard under a final name; ``resume`` keeps complete shards and redoes the rest.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geoforge.errors import GeoforgeError, UsageError

if TYPE_CHECKING:
    from PIL import Image

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


def prepare_output(out: Path, *, resume: bool, overwrite: bool) -> set[int]:
    """Get ``out`` ready and return the indices of complete shards to keep.

    A missing or empty directory is created. An existing corpus is refused unless ``resume``
    (keep complete shards) or ``overwrite`` (delete this corpus's files, nothing else) is
    given. Leftover ``.tmp`` files from a killed run are removed. Raises UsageError.
    """
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    existing = [p for p in out.iterdir()]
    shards = {int(m.group(1)) for p in existing if (m := _SHARD_RE.match(p.name))}
    ours = [p for p in existing if _SHARD_RE.match(p.name) or p.name in _OWN_FILES or p.name.endswith(".tmp")]
    if existing and not (resume or overwrite):
        raise UsageError(f"{out} is not empty: pass --resume to continue it or --overwrite to replace it")
    for p in out.iterdir():
        if p.name.endswith(".tmp"):
            p.unlink()
    if overwrite:
        for p in ours:
            if p.exists():
                p.unlink()
        return set()
    return shards


def write_shard(path: Path, samples: Iterable[dict[str, bytes] | tuple[str, dict[str, bytes]]]) -> int:
    """Write ``(key, {ext: bytes})`` pairs to the tar ``path`` atomically; returns the count.

    Members are named ``KEY.EXT`` in the order given, with mtime :data:`MTIME`, uid/gid 0,
    empty owner names and mode 0644 (ustar format). The data go to a temporary name first,
    are flushed and fsynced, then renamed. On any error the temporary file is removed and the
    error re-raised.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with open(tmp, "wb") as fh:
            with tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for key, files in samples:  # type: ignore[misc]
                    for ext, data in files.items():
                        info = tarfile.TarInfo(f"{key}.{ext}")
                        info.size = len(data)
                        info.mtime = MTIME
                        info.mode = 0o644
                        info.uid = info.gid = 0
                        info.uname = info.gname = ""
                        tar.addfile(info, io.BytesIO(data))
                    count += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def pack_negatives(pngs: Sequence[bytes], slots: int, size: int) -> bytes:
    """The :data:`NEGATIVES` member: one greyscale PNG, ``slots · size`` pixels wide and ``size``
    high, whose tile ``i`` (columns ``i·size`` to ``(i+1)·size``) is image negative ``i``, pixel
    for pixel (PNG is lossless), and whose tiles past ``len(pngs)`` are white
    (:data:`EMPTY_TILE`). ``slots`` is the number of image negatives the corpus asked for, so
    every sample has the same member; ``KEY.json``'s ``negatives`` record says how many tiles
    are filled. Raises CorpusError if there are more negatives than slots or a negative is not
    ``size`` × ``size`` pixels."""
    from PIL import Image

    if len(pngs) > slots:
        raise CorpusError(f"{len(pngs)} image negatives do not fit {slots} tiles")
    strip = Image.new("L", (slots * size, size), EMPTY_TILE)
    for i, png in enumerate(pngs):
        with Image.open(io.BytesIO(png)) as tile:
            if tile.size != (size, size):
                width, height = tile.size
                raise CorpusError(f"image negative {i} is {width}×{height} px, not {size}×{size}")
            strip.paste(tile.convert("L"), (i * size, 0))
    buf = io.BytesIO()
    strip.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


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


def read_shard(path: Path) -> Iterator[Record]:
    """Yield the samples of a shard in the order of their first members. A sample's members
    are found by key wherever they are, so a shard whose members are not adjacent (grouped by
    extension by another tool) reads the same (``geoforge corpus verify`` reports it). Raises
    CorpusError if it is not a readable tar."""
    try:
        with tarfile.open(path, "r") as tar:
            groups: dict[str, list[tarfile.TarInfo]] = {}
            for member in tar.getmembers():
                if member.isfile():
                    groups.setdefault(member.name.partition(".")[0], []).append(member)
            for key, members in groups.items():
                record = Record(key, {})
                for member in members:
                    fh = tar.extractfile(member)
                    record.files[member.name.partition(".")[2]] = fh.read() if fh else b""
                yield record
    except (tarfile.TarError, OSError) as e:
        raise CorpusError(f"{path}: cannot read shard: {e}") from None


def shards_in(out: Path) -> list[Path]:
    """The complete shards of a corpus directory, in order."""
    return sorted(p for p in out.iterdir() if _SHARD_RE.match(p.name))


def read_corpus(out: Path) -> Iterator[Record]:
    """Every sample of a corpus directory, in order. Raises CorpusError if there is none."""
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


def summarise(records: Iterable[Record]) -> dict[str, object]:
    """Counts over sample metadata: samples, families, features, styles, rejections (the
    rejected entries of each sample's ``draws``)."""
    families: Counter[str] = Counter()
    features: Counter[str] = Counter()
    styles: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    negatives = NegativeStats()
    n = 0
    for r in records:
        meta = r.meta
        n += 1
        families[str(meta["family"])] += 1
        features.update(meta["features"])  # type: ignore[arg-type]
        styles[str(meta["style"])] += 1
        rejections.update(d for d in meta["draws"] if d != "accepted")  # type: ignore[attr-defined]
        if "negatives" in meta:
            question = str(meta["caption"].get("question", ""))  # type: ignore[attr-defined]
            negatives.add(json.loads(str(meta["negatives"])), question)
    out: dict[str, object] = {
        "samples": n,
        "families": dict(sorted(families.items())),
        "features": dict(sorted(features.items())),
        "styles": dict(sorted(styles.items())),
        "rejections": dict(sorted(rejections.items())),
    }
    if negatives.samples:
        out["negatives"] = negatives.to_json()
    return out


@dataclass
class NegativeStats:
    """Totals over the samples' ``negatives`` records: accepted negatives by kind and plugin,
    per-sample counts, mean pixel difference of image negatives, how each kind is false
    (``geometry``, ``value``, ``undrawn circle``, ``absent point``), the image negatives on which
    the engine restored a true mark, given or stroke that the plugin dropped, the caption
    negatives of question-style positives that keep the question, rejections by plugin and
    reason, and plugin failures with the first message of each."""

    samples: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    per_sample: dict[str, list[int]] = field(
        default_factory=lambda: {"image": [], "caption": [], "retrieval": []}
    )
    pixel_diffs: list[float] = field(default_factory=list)
    rejections: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)
    how: Counter[tuple[str, str]] = field(default_factory=Counter)
    restored: int = 0
    questions: Counter[bool] = field(default_factory=Counter)

    def add(self, record: dict[str, Any], question: str = "") -> None:
        """Count one sample's negatives record; ``question`` is its positive's question."""
        self.samples += 1
        for kind in self.per_sample:
            self.per_sample[kind].append(len(record[kind]))
            self.accepted.update(f"{kind}: {x['plugin']}" for x in record[kind])
            self.how.update((kind, x.get("how", "geometry")) for x in record[kind])
        self.restored += sum(x.get("restored", 0) > 0 for x in record["image"])
        if question:
            self.questions.update(x["text"].endswith(" " + question) for x in record["caption"])
        self.pixel_diffs.extend(x["pixel_diff"] for x in record["image"])
        self.rejections.update(record["rejections"])
        self.failures.update(record["failures"])
        for key, message in record.get("errors", {}).items():
            self.errors.setdefault(key, message)

    def to_json(self) -> dict[str, object]:
        """JSON-ready totals, with the share of samples that got at least 8 of each kind."""
        return {
            "samples": self.samples,
            "accepted": dict(sorted(self.accepted.items())),
            "at_least_8": {
                k: round(sum(v >= 8 for v in c) / max(len(c), 1), 4) for k, c in self.per_sample.items()
            },
            "mean_per_sample": {k: round(sum(c) / max(len(c), 1), 3) for k, c in self.per_sample.items()},
            "mean_pixel_diff": round(sum(self.pixel_diffs) / len(self.pixel_diffs), 5)
            if self.pixel_diffs
            else 0.0,
            "how_false": {
                kind: {h: round(n / max(sum(c), 1), 4) for (k, h), n in sorted(self.how.items()) if k == kind}
                for kind, c in self.per_sample.items()
            },
            "restored_share": round(self.restored / max(sum(self.per_sample["image"]), 1), 4),
            "question_kept": round(self.questions[True] / sum(self.questions.values()), 4)
            if self.questions
            else None,
            "rejections": dict(sorted(self.rejections.items())),
            "failures": dict(sorted(self.failures.items())),
            "errors": dict(sorted(self.errors.items())),
        }


def write_json(path: Path, data: object) -> None:
    """Write JSON (sorted keys, indented, UTF-8) atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
