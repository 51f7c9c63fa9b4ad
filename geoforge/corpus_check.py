"""Checking a corpus directory on disk: what ``geoforge corpus verify`` reports.

A corpus is valid when (DESIGN.md, "Corpus on disk"):

* every shard is a readable tar, complete to its end-of-archive blocks (one that cannot be
  opened, or is damaged or truncated, is one problem naming it and why), whose members are
  grouped by sample: the members of one key are adjacent, none is repeated, and every sample
  has ``KEY.json``, ``KEY.png`` and ``KEY.txt`` and the same set of members as every other
  sample (``KEY.negatives.png`` in a corpus with image negatives);
* every sample's JSON parses, its key matches, and its negatives' files exist (the tiles of
  ``negatives.png`` that its ``negatives`` record names);
* ``sizes.json`` names exactly the shards, with their sample counts, and ``manifest.json``
  agrees on the number of samples and shards;
* no temporary file (``*.tmp``) is left from an interrupted write.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from geoforge.corpus import NEGATIVES, shard_members, shard_problem, shards_in
from geoforge.errors import UsageError

#: Members every sample has.
REQUIRED = ("json", "png", "txt")


@dataclass
class CorpusReport:
    """What :func:`verify_corpus` found: ``problems`` (one line each, empty when the corpus is
    valid), and the counts of ``shards``, ``samples`` and image ``negatives``."""

    path: Path
    problems: list[str] = field(default_factory=list)
    shards: int = 0
    samples: int = 0
    negatives: int = 0

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "path": str(self.path),
            "ok": self.ok,
            "shards": self.shards,
            "samples": self.samples,
            "image_negatives": self.negatives,
            "problems": self.problems,
        }


def _check_shard(path: Path, report: CorpusReport) -> dict[str, set[str]] | None:
    """Check one shard (layout, then samples; see the module docstring) and return each key's
    members, or ``None`` when the shard cannot be read or is damaged (reported in one line
    naming it: its file cannot be opened, it is no tar, or its tar ends early)."""
    try:
        with open(path, "rb") as fh, tarfile.open(fileobj=fh, mode="r") as tar:
            files = shard_members(tar, fh)
            seen = _check_layout(path.name, [_split(m.name) for m in files], report)
            _check_samples(path.name, tar, files, report)
    except OSError as e:
        report.problems.append(f"{path.name} cannot be read: {shard_problem(e)}")
        return None
    except tarfile.TarError as e:
        report.problems.append(f"{path.name} is damaged: {shard_problem(e)}")
        return None
    return seen


def _split(member_name: str) -> tuple[str, str]:
    """``KEY.EXT`` → ``(KEY, EXT)``."""
    key, _, ext = member_name.partition(".")
    return key, ext


def _check_layout(name: str, members: list[tuple[str, str]], report: CorpusReport) -> dict[str, set[str]]:
    """Adjacency, repeats and required members of one shard; returns each key's members."""
    seen: dict[str, set[str]] = {}
    last = None
    for i, (key, ext) in enumerate(members):
        if key != last and key in seen:
            report.problems.append(
                f"{name}: members of sample {key} are not adjacent ({key}.{ext} is member {i + 1})"
            )
        if ext in seen.setdefault(key, set()):
            report.problems.append(f"{name}: sample {key} has {key}.{ext} twice")
        seen[key].add(ext)
        last = key
    for key, exts in seen.items():
        missing = [e for e in REQUIRED if e not in exts]
        if missing:
            report.problems.append(f"{name}: sample {key} lacks " + ", ".join(f"{key}.{e}" for e in missing))
    return seen


def _check_samples(
    name: str, tar: tarfile.TarFile, members: list[tarfile.TarInfo], report: CorpusReport
) -> None:
    """Each sample's JSON parses, names its key, and its image negatives have tiles."""
    files = {m.name: m for m in members}
    for member_name, member in files.items():
        key, ext = _split(member_name)
        if ext != "json":
            continue
        fh = tar.extractfile(member)
        try:
            meta = json.loads(fh.read() if fh else b"")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            report.problems.append(f"{name}: {member_name} does not parse: {e}")
            continue
        if not isinstance(meta, dict) or meta.get("key", key) != key:
            report.problems.append(f"{name}: {member_name} is not the record of sample {key}")
            continue
        image = json.loads(str(meta.get("negatives") or "{}")).get("image", [])
        report.negatives += len(image)
        if image and f"{key}.{NEGATIVES}" not in files:
            report.problems.append(
                f"{name}: sample {key} names {len(image)} image negative(s) but has no {key}.{NEGATIVES}"
            )


def verify_corpus(out: Path) -> CorpusReport:
    """Check the corpus directory ``out`` (see the module docstring) and return what was
    found; never raises for a broken corpus, only UsageError (exit 2: bad usage, not a corpus
    with problems, which is exit 1) when ``out`` is no directory."""
    if not out.is_dir():
        raise UsageError(f"{out} is not a directory")
    report = CorpusReport(out)
    leftovers = sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp"))
    report.problems += [f"temporary file left from an interrupted write: {name}" for name in leftovers]
    counts: dict[str, int] = {}
    shapes: Counter[frozenset[str]] = Counter()
    damaged: set[str] = set()
    for path in shards_in(out):
        seen = _check_shard(path, report)
        if seen is None:
            damaged.add(path.name)
            continue
        shapes.update(frozenset(exts) for exts in seen.values())
        counts[path.name] = len(seen)
    report.shards, report.samples = len(counts), sum(counts.values())
    if not counts and not damaged:
        report.problems.append("no shard-NNNNNN.tar in the corpus")
    if len(shapes) > 1:
        common = shapes.most_common(1)[0][0]
        odd = sum(n for s, n in shapes.items() if s != common)
        report.problems.append(
            f"{odd} sample(s) have other members than the {shapes[common]} with {', '.join(sorted(common))}"
        )
    _check_index(out, counts, damaged, report)
    return report


def _load(path: Path, report: CorpusReport, what: str = "an object") -> dict | None:  # type: ignore[type-arg]
    """The JSON object in ``path``, or ``None`` with the problem reported: the file is missing,
    does not parse, or holds another JSON value (``what`` says what was expected)."""
    if not path.is_file():
        report.problems.append(f"{path.name} is missing")
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        report.problems.append(f"{path.name} does not parse: {e}")
        return None
    if not isinstance(found, dict):
        kind = "null" if found is None else type(found).__name__
        report.problems.append(f"{path.name} is a JSON {kind}, not {what}")
        return None
    return found


def _check_index(out: Path, counts: dict[str, int], damaged: set[str], report: CorpusReport) -> None:
    """``sizes.json`` and ``manifest.json`` agree with the shards (the ``damaged`` ones, already
    reported, count as shards of unknown size)."""
    sizes = _load(out / "sizes.json", report, "an object of shard sizes")
    if sizes is not None:
        for name in sorted(set(sizes) | set(counts) | damaged):
            if name in damaged and name in sizes:
                continue
            if name not in counts and name not in damaged:
                report.problems.append(f"sizes.json names {name}, which is not in the corpus")
            elif name not in sizes:
                report.problems.append(f"sizes.json does not name {name}")
            elif sizes[name] != counts[name]:
                report.problems.append(
                    f"sizes.json says {name} holds {sizes[name]} samples; it holds {counts[name]}"
                )
    manifest = _load(out / "manifest.json", report)
    if manifest is not None and manifest.get("complete") is False:
        report.problems.append(
            "manifest.json says the corpus is incomplete (its run stopped): "
            "run the same generate command with --resume to finish it"
        )
    elif manifest is not None:
        known = [("shards", report.shards + len(damaged))]
        if not damaged:  # a damaged shard's samples cannot be counted
            known.insert(0, ("samples", report.samples))
        for field_, actual in known:
            if manifest.get(field_) != actual:
                report.problems.append(
                    f"manifest.json says {field_} {manifest.get(field_)}; the corpus has {actual}"
                )
        recorded = manifest.get("shard_bytes")
        if isinstance(recorded, dict):  # absent in corpora made before it was recorded
            for name, size in sorted(recorded.items()):
                path = out / name
                if name not in damaged and path.is_file() and path.stat().st_size != size:
                    report.problems.append(
                        f"manifest.json says {name} has {size} bytes; it has {path.stat().st_size}"
                    )
