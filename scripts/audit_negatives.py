#!/usr/bin/env python
"""Audit the hard negatives of a geoforge corpus from what a model is shown: the caption text
and the drawn figure, by code independent of geoforge's verifier.

Usage::

    python scripts/audit_negatives.py CORPUS_DIR [--limit N] [--workers W] [--json]

It reads only the WebDataset shards (``CORPUS_DIR/shard-*.tar``: ``KEY.png``, ``KEY.txt``,
``KEY.json``, ``KEY.negatives.png``: the image negatives side by side, read with
geoforge.corpus). Captions are read by this audit's own parser of the caption
text (scripts/audit/reader.py) and judged on the figure's drawn points and circles
(scripts/audit_claims.py). The figure is re-realised and re-rendered with geoforge.program,
geoforge.realise and geoforge.render only, and must reproduce the stored positive PNG byte for
byte and each image negative's tile pixel for pixel, so the audit judges the very points that
were drawn (scripts/audit/figures.py). geoforge.caption, geoforge.verify, geoforge.negatives
and the plugins are never imported, and geoforge.facts
(which geoforge.program loads) is never called to judge.

Judged, for up to ``--limit`` negatives of each kind (samples in order):

* each positive: it re-realises to its stored points and re-renders to its PNG, and every
  statement of its caption text holds on its figure (to 1e-6-ish); a text the audit cannot
  read is reported;
* image negative: it re-realises (positive's seed, ``max_tries=3``, positive's points as
  reference) and re-renders to its stored tile pixel for pixel; it differs visibly; at least one statement of
  the positive caption text is clearly false on its drawn points (angle 8°, length/ratio 12%,
  point off its line or circle by 3% of the figure size; a length value counts only if the
  negative prints a length); and, when it prints no length, it is not the positive up to
  similarity (after the best similarity alignment some point is off by 3% of the figure size,
  or a stated point or circle is gone);
* caption/retrieval negative: its text is not the positive's (whitespace normalised) and a
  statement of it is clearly false on the positive's drawn points.

Shortcuts are counted, not failed: an image negative that drops a mark or given of the
positive that still holds on it, or a drawn line/circle that still holds; one that keeps less
than half of the positive's ink in place (re-framed); one whose only difference is a printed
number; a rule negative of a question-style positive that loses the question. How each
negative is false is classified (geometry, value, undrawn circle, absent point).

Prints a table per kind and plugin, the shares, and every failure (key, kind, index, plugin,
reason), or JSON with ``--json``. Exits 1 if a negative is not clearly false or a positive
statement does not hold (or a figure does not reproduce), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from geoforge.corpus import NEGATIVES, CorpusError, unpack_negatives

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit.figures import (
    PIXEL_SHARE,
    REFRAMED,
    dropped_true_marks,
    dropped_true_strokes,
    figure_of,
    grey,
    ink_kept,
    paint_figure,
    pixel_share,
    png_size,
    realise_figure,
    rerender,
    similarity_gap,
    stored_points_differ,
)
from audit_claims import (
    HOW,
    INCIDENCE_MARGIN,
    Figure,
    ReadError,
    Reading,
    how_false,
    judge_all,
    normalise,
    read_caption,
)

KINDS = ("image", "caption", "retrieval")
#: Failure reasons (a negative that is not a proven negative, or a figure that does not
#: reproduce).
NOT_FALSE = "not clearly false"
SIMILAR = "the positive up to similarity"
SAME_TEXT = "same text as the positive"
UNREADABLE = "unreadable text"
NO_REALISE = "does not realise"
RERENDER = "re-render differs"
MISSING = "image missing"
INVISIBLE = "not visibly different"
LOOKALIKE = "looks like another image negative"
BAD_POSITIVE = "positive does not reproduce"
#: An image negative this close to its positive after similarity alignment has the same shape.
SAME_SHAPE = 1e-3
#: Shortcuts (counted and listed, not failed).
SHORTCUTS = (
    "dropped true mark",
    "dropped true stroke",
    "re-framed",
    "printed value only",
    "question dropped",
)

# --------------------------------------------------------------------------- corpus reading


class ShardError(Exception):
    """A shard that cannot be read to its end: the message names it."""


def read_records(corpus: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, {extension: bytes})`` of every sample in ``corpus/shard-*.tar``, in order.
    Raises ShardError naming a shard that is damaged (truncated, not a tar) or unreadable."""
    for shard in sorted(corpus.glob("shard-*.tar")):
        try:
            yield from _shard_records(shard)
        except (OSError, tarfile.TarError) as e:
            raise ShardError(
                f"{shard}: cannot be read ({e}); check it with `geoforge corpus verify`"
            ) from None


def _shard_records(shard: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    key, files = None, {}
    with tarfile.open(shard) as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name.rsplit("/", 1)[-1]
            k, _, ext = name.partition(".")
            if k != key:
                if key is not None:
                    yield key, files
                key, files = k, {}
            data = tar.extractfile(member)
            files[ext] = data.read() if data else b""
    if key is not None:
        yield key, files


# --------------------------------------------------------------------------- one sample


@dataclass
class Entry:
    """The audit of one negative: its failures ``(reason, detail)``, how it is false, its
    shortcuts ``(name, detail)`` and measurements."""

    kind: str
    index: int
    plugin: str
    failures: list[tuple[str, str]] = field(default_factory=list)
    how: str = ""
    shortcuts: list[tuple[str, str]] = field(default_factory=list)
    ink: float | None = None
    gap: float | None = None
    framing: bool | None = None  # kept the positive's framing (None: rendered without it)
    question: bool | None = None  # kept the question (rule negatives of question positives)


@dataclass
class SampleResult:
    key: str
    entries: list[Entry] = field(default_factory=list)
    positive_failures: list[tuple[str, str]] = field(default_factory=list)
    statements: int = 0


def _negatives(meta: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    raw = meta.get("negatives") or "{}"
    record = json.loads(raw) if isinstance(raw, str) else raw
    return {k: list(record.get(k) or []) for k in KINDS}


def _tiles(files: dict[str, bytes], count: int) -> list[Image.Image | None]:
    """The first ``count`` image negatives of a sample (``None`` for each that is missing)."""
    try:
        return list(unpack_negatives(files[NEGATIVES], count))
    except (KeyError, CorpusError, OSError):
        return [None] * count


def audit_sample(job: tuple[str, dict[str, bytes], dict[str, int]]) -> SampleResult:
    """Audit one sample: its positive, then the first ``wanted[kind]`` negatives of each kind."""
    key, files, wanted = job
    out = SampleResult(key)
    meta = json.loads(files["json"])
    negatives = {k: v[: wanted.get(k, 0)] for k, v in _negatives(meta).items()}
    text = files.get("txt", b"").decode()
    size = png_size(files["png"])
    try:
        program, scene = realise_figure(str(meta["program"]), int(meta["realise_seed"]))
    except Exception as e:  # any failure to realise is a finding, not a crash
        out.positive_failures.append((NO_REALISE, f"{type(e).__name__}: {e}"))
        for kind, negs in negatives.items():
            out.entries += [
                Entry(kind, i, str(n.get("plugin")), [(BAD_POSITIVE, "")]) for i, n in enumerate(negs)
            ]
        return out
    plan, png = paint_figure(scene, size)
    if png != files["png"]:
        out.positive_failures.append(
            (RERENDER, f"{pixel_share(grey(png), grey(files['png'])):.5f} of pixels differ")
        )
    moved = stored_points_differ(meta, scene)
    if moved:
        out.positive_failures.append(("points differ", moved))
    caption = meta.get("caption", {})
    if isinstance(caption, dict) and caption.get("text") not in (None, text):
        out.positive_failures.append(("caption differs", "KEY.txt is not the JSON caption text"))
    fig = figure_of(scene, program)
    reading = _self_check(text, fig, out)
    pos_grey = grey(files["png"])
    tiles = _tiles(files, len(negatives["image"]))
    for i, (neg, tile) in enumerate(zip(negatives["image"], tiles)):
        out.entries.append(_image(i, neg, tile, meta, program, scene, plan, fig, reading, pos_grey, size))
    _lookalikes(out.entries[-len(tiles) :] if tiles else [], tiles)
    for kind in ("caption", "retrieval"):
        for i, neg in enumerate(negatives[kind]):
            out.entries.append(_caption(kind, i, neg, text, fig, reading))
    return out


def _lookalikes(entries: list[Entry], tiles: list[Image.Image | None]) -> None:
    """A failure on each image negative whose tile is not visibly different from an earlier
    tile of the same positive (the rule that judges a negative against its positive): it shows
    the model nothing the earlier one does not."""
    greys = [None if t is None else grey(t) for t in tiles]
    for j, (entry, later) in enumerate(zip(entries, greys)):
        for i, earlier in enumerate(greys[:j]):
            if later is not None and earlier is not None and (d := pixel_share(earlier, later)) < PIXEL_SHARE:
                entry.failures.append((LOOKALIKE, f"{d:.5f} of pixels differ from image negative {i}"))
                break


def _self_check(text: str, fig: Figure, out: SampleResult) -> Reading | None:
    """Read the positive caption and check every statement holds on its own figure."""
    try:
        reading = read_caption(text)
    except ReadError as e:
        out.positive_failures.append((UNREADABLE, f"{e}: {text!r}"))
        return None
    out.statements = len(reading.statements)
    for said, j in judge_all(reading.statements, fig):
        if not j.judged:
            out.positive_failures.append(("statement not checkable", f"`{said}`: {j.why}"))
        elif not j.holds:
            out.positive_failures.append(("statement does not hold", f"`{said}`: {j.why}"))
    gone = [p for p in reading.asks if p not in fig.points]
    if gone:
        out.positive_failures.append(
            ("question names an absent point", f"{reading.question} ({', '.join(gone)})")
        )
    return reading


def _image(
    i: int,
    neg: dict[str, Any],
    tile: Image.Image | None,
    meta: dict[str, Any],
    pos_program: Any,
    pos_scene: Any,
    plan: Any,
    pos_fig: Figure,
    reading: Reading | None,
    pos_grey: Any,
    size: int,
) -> Entry:
    e = Entry("image", i, str(neg.get("plugin")))
    if tile is None:
        e.failures.append((MISSING, f"no tile {i} in {NEGATIVES}"))
    try:
        program, scene = realise_figure(str(neg["program"]), int(meta["realise_seed"]), pos_scene.points)
    except Exception as x:
        e.failures.append((NO_REALISE, f"{type(x).__name__}: {x}"))
        return e
    if tile is not None:
        same, e.framing = rerender(scene, size, tile, plan)
        if not same:
            e.failures.append((RERENDER, "the re-realised program does not paint the stored tile"))
        neg_grey = grey(tile)
        diff = pixel_share(pos_grey, neg_grey)
        if diff < PIXEL_SHARE:
            e.failures.append((INVISIBLE, f"{diff:.5f} of pixels differ"))
        e.ink = ink_kept(pos_grey, neg_grey)
        if e.ink < REFRAMED:
            e.shortcuts.append(("re-framed", f"{100 * e.ink:.0f}% of the positive's ink in place"))
    fig = figure_of(scene, program)
    e.gap = similarity_gap(pos_fig.points, fig.points)
    if reading is None:
        e.failures.append((UNREADABLE, "the positive caption cannot be read"))
        return e
    judged = judge_all(reading.statements, fig)
    false = [j for _, j in judged if j.false]
    if not false:
        detail = " | ".join(f"{said}: {j.why}" for said, j in judged)
        similar = fig.unit is None and set(fig.points) == set(pos_fig.points) and e.gap < INCIDENCE_MARGIN
        if similar:
            e.failures.append((SIMILAR, f"{100 * e.gap:.2f}% of the figure apart after alignment [{detail}]"))
        else:
            e.failures.append((NOT_FALSE, f"every statement of the positive still holds [{detail}]"))
    else:
        e.how = how_false(false)
        if e.how == "value" and e.gap < SAME_SHAPE:
            e.shortcuts.append(("printed value only", f"the positive up to similarity ({100 * e.gap:.3f}%)"))
    unit = fig.unit if fig.unit is not None else pos_fig.unit
    for text in dropped_true_marks(pos_program, program, fig, unit):
        e.shortcuts.append(("dropped true mark", text))
    for text in dropped_true_strokes(pos_scene, scene, fig):
        e.shortcuts.append(("dropped true stroke", text))
    return e


def _caption(
    kind: str, i: int, neg: dict[str, Any], text: str, fig: Figure, reading: Reading | None
) -> Entry:
    plugin = str(neg.get("plugin"))
    e = Entry(kind, i, plugin)
    neg_text = neg.get("text")
    if not isinstance(neg_text, str) or not neg_text.strip():
        e.failures.append((UNREADABLE, "the negative has no text"))
        return e
    if normalise(neg_text) == normalise(text):
        e.failures.append((SAME_TEXT, neg_text))
    try:
        neg_reading = read_caption(neg_text)
    except ReadError as x:
        e.failures.append((UNREADABLE, f"{x}: {neg_text!r}"))
        return e
    if reading is not None and reading.question and kind == "caption" and plugin == "caption_rules":
        e.question = neg_reading.question == reading.question
        if not e.question:
            e.shortcuts.append(("question dropped", f"`{reading.question}` → `{neg_reading.question}`"))
    judged = judge_all(neg_reading.statements, fig)
    false = [j for _, j in judged if j.false]
    if not false:
        detail = " | ".join(f"{said}: {j.why}" for said, j in judged)
        e.failures.append((NOT_FALSE, f"every statement holds on the positive [{detail}]"))
    else:
        e.how = how_false(false)
    return e


# --------------------------------------------------------------------------- the report


@dataclass
class Tally:
    checked: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, entry: Entry) -> None:
        self.checked += 1
        if entry.failures:
            self.failed += 1
            self.reasons.update({r for r, _ in entry.failures})

    def to_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "failed": self.failed, "reasons": dict(sorted(self.reasons.items()))}


@dataclass
class Report:
    corpus: str
    limit: int
    workers: int = 1
    samples: int = 0
    statements: int = 0
    seconds: float = 0.0
    kinds: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in KINDS})
    plugins: dict[str, dict[str, Tally]] = field(default_factory=lambda: {k: {} for k in KINDS})
    how: dict[str, Counter[str]] = field(default_factory=lambda: {k: Counter() for k in KINDS})
    shortcut_counts: dict[str, Counter[str]] = field(
        default_factory=lambda: {s: Counter() for s in SHORTCUTS}
    )
    inks: list[float] = field(default_factory=list)
    framings: Counter[str] = field(default_factory=Counter)
    questions: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    shortcuts: list[dict[str, Any]] = field(default_factory=list)
    positive_failures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, result: SampleResult) -> None:
        self.samples += 1
        self.statements += result.statements
        for reason, detail in result.positive_failures:
            self.positive_failures.append({"key": result.key, "reason": reason, "detail": detail})
        for e in result.entries:
            self.kinds[e.kind].add(e)
            self.plugins[e.kind].setdefault(e.plugin, Tally()).add(e)
            row = {"key": result.key, "kind": e.kind, "index": e.index, "plugin": e.plugin}
            for reason, detail in e.failures:
                self.failures.append({**row, "reason": reason, "detail": detail})
            if not e.failures:
                self.how[e.kind][e.how] += 1
            for name in dict.fromkeys(n for n, _ in e.shortcuts):
                self.shortcut_counts[name][f"{e.kind}/{e.plugin}"] += 1
                detail = "; ".join(d for n, d in e.shortcuts if n == name)
                self.shortcuts.append({**row, "shortcut": name, "detail": detail})
            if e.ink is not None:
                self.inks.append(e.ink)
            if e.framing is not None:
                self.framings["kept" if e.framing else "changed"] += 1
            if e.question is not None:
                self.questions["kept" if e.question else "dropped"] += 1

    @property
    def ok(self) -> bool:
        return not self.failures and not self.positive_failures

    def shares(self) -> dict[str, Any]:
        def share(n: int, d: int) -> float | None:
            return round(n / d, 4) if d else None

        images = self.kinds["image"].checked
        count = {s: sum(c.values()) for s, c in self.shortcut_counts.items()}
        passed = {k: sum(self.how[k].values()) for k in KINDS}
        asked = sum(self.questions.values())
        return {
            "image": {
                "dropped_true_mark": share(count["dropped true mark"], images),
                "dropped_true_stroke": share(count["dropped true stroke"], images),
                "reframed": share(count["re-framed"], images),
                "printed_value_only": share(count["printed value only"], images),
                "mean_ink_kept": round(sum(self.inks) / len(self.inks), 4) if self.inks else None,
                "framing_changed": share(self.framings["changed"], sum(self.framings.values())),
            },
            "question_kept": {
                "checked": asked,
                "kept": self.questions["kept"],
                "share": share(self.questions["kept"], asked),
            },
            "how_false": {
                k: {h: share(self.how[k][h], passed[k]) for h in HOW if self.how[k][h]} for k in KINDS
            },
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "limit": self.limit,
            "workers": self.workers,
            "samples_read": self.samples,
            "positive_statements": self.statements,
            "seconds": round(self.seconds, 2),
            "kinds": {k: t.to_json() for k, t in self.kinds.items()},
            "plugins": {k: {p: t.to_json() for p, t in sorted(v.items())} for k, v in self.plugins.items()},
            "shares": self.shares(),
            "shortcut_counts": {s: dict(sorted(c.items())) for s, c in self.shortcut_counts.items()},
            "failures": self.failures,
            "positive_failures": self.positive_failures,
            "shortcuts": self.shortcuts,
            "ok": self.ok,
        }


def _jobs(corpus: Path, limit: int, report: Report) -> Iterator[tuple[str, dict[str, bytes], dict[str, int]]]:
    taken = dict.fromkeys(KINDS, 0)
    for key, files in read_records(corpus):
        if all(taken[k] >= limit for k in KINDS):
            return
        if "json" not in files or "png" not in files:
            report.positive_failures.append(
                {"key": key, "reason": "incomplete sample", "detail": sorted(files)}
            )
            continue
        negatives = _negatives(json.loads(files["json"]))
        wanted = {k: min(len(negatives[k]), limit - taken[k]) for k in KINDS}
        for k in KINDS:
            taken[k] += wanted[k]
        yield key, files, wanted


def audit(corpus: Path, limit: int = 1_000_000, workers: int = 1) -> Report:
    """Audit up to ``limit`` negatives of each kind of ``corpus`` (samples in order) and every
    positive read, in ``workers`` processes."""
    start = time.perf_counter()
    report = Report(str(corpus), limit, workers)
    jobs = _jobs(corpus, limit, report)
    if workers > 1:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ctx.Pool(workers) as pool:
            for result in pool.imap(audit_sample, jobs, chunksize=2):
                report.add(result)
    else:
        for job in jobs:
            report.add(audit_sample(job))
    report.seconds = time.perf_counter() - start
    return report


def format_report(report: Report, examples: int = 10) -> str:
    lines = [
        f"audit of {report.corpus}: {report.samples} positives ({report.statements} statements) "
        f"in {report.seconds:.1f} s with {report.workers} worker(s)",
        f"{'kind':<10} {'plugin':<16} {'checked':>8} {'failed':>7}  failure reasons",
    ]
    for kind in KINDS:
        rows = [("(all)", report.kinds[kind]), *sorted(report.plugins[kind].items())]
        for i, (plugin, t) in enumerate(rows):
            why = ", ".join(f"{r} {n}" for r, n in sorted(t.reasons.items()))
            lines.append(f"{kind if i == 0 else '':<10} {plugin:<16} {t.checked:>8} {t.failed:>7}  {why}")
    shares = report.shares()

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    img = shares["image"]
    lines.append(
        f"image negatives: dropped true mark {pct(img['dropped_true_mark'])}, dropped true stroke "
        f"{pct(img['dropped_true_stroke'])}, re-framed {pct(img['reframed'])}, printed value only "
        f"{pct(img['printed_value_only'])}, mean ink kept {pct(img['mean_ink_kept'])}, framing changed "
        f"{pct(img['framing_changed'])}"
    )
    q = shares["question_kept"]
    lines.append(
        f"question-style rule negatives keeping the question: {q['kept']}/{q['checked']} ({pct(q['share'])})"
    )
    for kind in KINDS:
        how = shares["how_false"][kind]
        lines.append(
            f"how false ({kind}, passed): " + (", ".join(f"{h} {pct(v)}" for h, v in how.items()) or "n/a")
        )
    for name, counts in report.shortcut_counts.items():
        if counts:
            lines.append(f"shortcut {name}: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
            for s in [s for s in report.shortcuts if s["shortcut"] == name][:examples]:
                lines.append(f"    {s['key']} {s['kind']}[{s['index']}] ({s['plugin']}): {s['detail']}")
    if report.positive_failures:
        lines.append(f"{len(report.positive_failures)} positive failures:")
        lines += [f"  {f['key']}: {f['reason']}: {f['detail']}" for f in report.positive_failures]
    if report.failures:
        lines.append(f"{len(report.failures)} failures:")
        lines += [
            f"  {f['key']} {f['kind']}[{f['index']}] ({f['plugin']}): {f['reason']}: {f['detail']}"
            for f in report.failures
        ]
    lines.append("ok" if report.ok else "FAILED")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="corpus directory holding shard-*.tar")
    parser.add_argument("--limit", type=int, default=1_000_000, help="negatives of each kind to audit")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    if args.limit < 0 or args.workers < 1:
        print("error: --limit must be ≥ 0 and --workers ≥ 1", file=sys.stderr)
        return 2
    if not args.corpus.is_dir() or not any(args.corpus.glob("shard-*.tar")):
        print(f"error: {args.corpus}: no shard-*.tar found", file=sys.stderr)
        return 2
    try:
        report = audit(args.corpus, args.limit, args.workers)
    except ShardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    else:
        print(format_report(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
