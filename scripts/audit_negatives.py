#!/usr/bin/env python
"""Audit the hard negatives stored in a geoforge corpus, independently of the verifier.

Usage::

    python scripts/audit_negatives.py CORPUS_DIR [--limit 1000] [--json]

It reads only the WebDataset shards (``CORPUS_DIR/shard-*.tar``). The only geoforge code it
uses is the figure itself: :func:`geoforge.program.parse_program` and
:func:`geoforge.realise.realise`. Everything that *judges* (is a claim false by a clear
margin, is a caption a paraphrase, do two images differ) is written here on plain numpy
coordinates, without :mod:`geoforge.verify`, :mod:`geoforge.facts` or
:mod:`geoforge.caption`, so that a bug there cannot hide itself.

Checks, for up to ``--limit`` negatives of each kind (image, caption, retrieval), taking the
samples in order:

* image negative: its PNG differs from the positive's in at least :data:`PIXEL_SHARE` of the
  pixels (grey levels differing by more than :data:`PIXEL_LEVEL`); its program re-realises
  (seed = the positive's ``realise_seed``, ``max_tries=3``, ``reference`` = the positive's
  points); at least one claim of the positive caption is false on it by the margins; and every
  claim the verifier recorded as ``violated`` is false by this script's measure;
* caption and retrieval negative: the positive re-realises to its stored points (to
  :data:`POINT_TOL`); at least one of the negative's claims is false on the positive figure;
  every claim recorded as ``violated`` is false; and its claims are not a paraphrase of the
  positive's (same set of claims up to the symmetries of each claim kind).

Margins: an angle off by at least :data:`ANGLE_MARGIN` degrees, a length or ratio off by at
least :data:`REL_MARGIN` (relative to the larger), or a point missing. Lengths are in the
given units of the positive figure (the first ``given length a b V`` fixes units = V/|ab|).

Prints a table per kind and plugin and every failure (key, kind, index, plugin, reason), or
the same as JSON with ``--json``. As a check on itself, it also judges each positive claim on
its own figure (none may be false). Exits 1 if any negative fails (or a positive claim is
false), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from geoforge.program import parse_program
from geoforge.realise import realise

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_claims import (
    KINDS,
    PIXEL_LEVEL,
    PIXEL_SHARE,
    POINT_TOL,
    Figure,
    UnknownClaim,
    Verdict,
    _value,
    claim_set,
    judge,
)

# --------------------------------------------------------------------------- corpus reading


@dataclass
class Record:
    key: str
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads(self.files["json"])


def read_records(corpus: Path) -> Iterator[Record]:
    """The samples of every ``shard-*.tar`` under ``corpus``, in shard and member order."""
    for shard in sorted(corpus.glob("shard-*.tar")):
        current: Record | None = None
        with tarfile.open(shard) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                key, _, ext = name.partition(".")
                if current is None or current.key != key:
                    if current is not None:
                        yield current
                    current = Record(key)
                data = tar.extractfile(member)
                current.files[ext] = data.read() if data else b""
        if current is not None:
            yield current


def _grey(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("L"), dtype=np.int16)


def pixel_share(a: bytes, b: bytes) -> float:
    """Fraction of pixels whose grey level differs by more than :data:`PIXEL_LEVEL` (1.0 if the
    sizes differ)."""
    x, y = _grey(a), _grey(b)
    if x.shape != y.shape:
        return 1.0
    return float(np.mean(np.abs(x - y) > PIXEL_LEVEL))


def _stored_points(meta: dict[str, Any]) -> dict[str, np.ndarray]:
    return {p["name"]: np.array([float(p["x"]), float(p["y"])]) for p in meta["points"]}


def positive_unit(program_text: str, points: dict[str, np.ndarray]) -> float:
    """Given units per diagram unit: the first ``given length a b V`` fixes V/|ab|; 1 if none."""
    program = parse_program(program_text)
    for st in program.statements:
        if st.kind == "given" and st.name == "length":
            a, b, v = st.args
            d = float(np.hypot(*(points[a] - points[b])))
            return _value(v) / d if d > 0 else math.inf
    return 1.0


# --------------------------------------------------------------------------- the audit


@dataclass
class Tally:
    audited: int = 0
    passed: int = 0
    failed: int = 0

    def add(self, ok: bool) -> None:
        self.audited += 1
        if ok:
            self.passed += 1
        else:
            self.failed += 1


@dataclass
class Report:
    corpus: str
    limit: int
    kinds: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in KINDS})
    plugins: dict[str, dict[str, Tally]] = field(default_factory=lambda: {k: {} for k in KINDS})
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: Positive claims this audit finds false on their own figure (an audit or generator bug).
    positive_failures: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 0
    pixel_diffs: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, kind: str, key: str, index: int, plugin: str, reasons: list[str]) -> None:
        ok = not reasons
        self.kinds[kind].add(ok)
        self.plugins[kind].setdefault(plugin, Tally()).add(ok)
        if not ok:
            self.failures.append(
                {"key": key, "kind": kind, "index": index, "plugin": plugin, "reason": "; ".join(reasons)}
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "limit": self.limit,
            "samples_read": self.samples,
            "seconds": round(self.seconds, 2),
            "mean_pixel_diff": round(float(np.mean(self.pixel_diffs)), 5) if self.pixel_diffs else None,
            "kinds": {k: vars(t) for k, t in self.kinds.items()},
            "plugins": {k: {p: vars(t) for p, t in sorted(v.items())} for k, v in self.plugins.items()},
            "failures": self.failures,
            "positive_failures": self.positive_failures,
            "ok": not self.failures and not self.positive_failures,
        }


def _judge_all(claims: list[list[str]], fig: Figure) -> tuple[list[tuple[list[str], Verdict]], list[str]]:
    """Each claim's verdict on ``fig``, and the problems met (unknown kinds)."""
    out, problems = [], []
    for c in claims:
        try:
            out.append((c, judge(c, fig)))
        except (UnknownClaim, ValueError, TypeError) as e:
            problems.append(f"cannot judge claim {' '.join(c)}: {e}")
    return out, problems


def _violated_not_false(violated: list[list[str]], fig: Figure) -> list[str]:
    """Reasons for each recorded violation (``[kind, *args, v]``) that is not false on ``fig``."""
    out = []
    for row in violated:
        claim = row[:-1]
        try:
            bad, why = judge(claim, fig)
        except (UnknownClaim, ValueError, TypeError) as e:
            out.append(f"cannot judge violated claim {' '.join(claim)}: {e}")
            continue
        if not bad:
            out.append(
                f"recorded as violated ({row[-1]}) but holds within margins: {' '.join(claim)} [{why}]"
            )
    return out


def _audit_image(
    neg: dict[str, Any], rec: Record, meta: dict[str, Any], pos_fig: Figure, report: Report
) -> list[str]:
    reasons: list[str] = []
    png = rec.files.get(str(neg.get("file", "")))
    if png is None:
        reasons.append(f"image {neg.get('file')!r} is not in the shard")
    else:
        share = pixel_share(rec.files["png"], png)
        report.pixel_diffs.append(share)
        if share < PIXEL_SHARE:
            reasons.append(f"not visibly different: {share:.5f} of pixels differ by > {PIXEL_LEVEL}")
    try:
        program = parse_program(str(neg["program"]))
        scene = realise(program, seed=int(meta["realise_seed"]), max_tries=3, reference=pos_fig.points)
    except Exception as e:  # the figure does not exist: any geoforge error is a failure here
        reasons.append(f"negative does not realise: {type(e).__name__}: {e}")
        return reasons
    fig = Figure({n: np.asarray(p, dtype=np.float64) for n, p in scene.points.items()}, pos_fig.unit)
    verdicts, problems = _judge_all(meta["caption"]["claims"], fig)
    reasons.extend(problems)
    if not any(bad for _, (bad, _) in verdicts):
        detail = " | ".join(f"{' '.join(c)}: {why}" for c, (_, why) in verdicts)
        reasons.append(f"every positive claim still holds on the negative within margins [{detail}]")
    reasons.extend(_violated_not_false(neg.get("violated", []), fig))
    return reasons


def _audit_caption(
    neg: dict[str, Any], pos_fig: Figure, pos_claims: frozenset[tuple[str, ...]], reproduced: str | None
) -> list[str]:
    reasons = [reproduced] if reproduced else []
    claims = neg.get("claims", [])
    verdicts, problems = _judge_all(claims, pos_fig)
    reasons.extend(problems)
    if not any(bad for _, (bad, _) in verdicts):
        detail = " | ".join(f"{' '.join(c)}: {why}" for c, (_, why) in verdicts)
        reasons.append(f"every claim holds on the positive within margins [{detail}]")
    if claim_set(claims) == pos_claims:
        reasons.append("paraphrase of the positive (same claims up to symmetry)")
    reasons.extend(_violated_not_false(neg.get("violated", []), pos_fig))
    return reasons


def _positive(meta: dict[str, Any]) -> tuple[Figure, str | None]:
    """The positive figure (re-realised) and why it does not reproduce the stored points."""
    stored = _stored_points(meta)
    unit = positive_unit(str(meta["program"]), stored)
    try:
        scene = realise(parse_program(str(meta["program"])), seed=int(meta["realise_seed"]))
    except Exception as e:
        return Figure(stored, unit), f"positive does not realise: {type(e).__name__}: {e}"
    points = {n: np.asarray(p, dtype=np.float64) for n, p in scene.points.items()}
    if set(points) != set(stored):
        return Figure(stored, unit), f"positive realises other points: {sorted(points)} vs {sorted(stored)}"
    worst = max((float(np.max(np.abs(points[n] - stored[n]))) for n in stored), default=0.0)
    if worst > POINT_TOL:
        return Figure(stored, unit), f"positive does not reproduce its stored points (off by {worst:.3g})"
    return Figure(points, unit), None


def audit(corpus: Path, limit: int = 1000) -> Report:
    """Audit up to ``limit`` negatives of each kind in ``corpus``, samples in order."""
    start = time.perf_counter()
    report = Report(str(corpus), limit)
    for rec in read_records(corpus):
        if all(report.kinds[k].audited >= limit for k in KINDS):
            break
        report.samples += 1
        meta = rec.meta
        record = json.loads(meta.get("negatives") or "{}")
        wanted = {k: record.get(k, [])[: max(0, limit - report.kinds[k].audited)] for k in KINDS}
        if not any(wanted.values()):
            continue
        stored = _stored_points(meta)
        if wanted["caption"] or wanted["retrieval"]:
            pos_fig, reproduced = _positive(meta)
        else:
            pos_fig, reproduced = Figure(stored, positive_unit(str(meta["program"]), stored)), None
        image_ref = Figure(stored, pos_fig.unit)
        pos_claims = claim_set(meta["caption"]["claims"])
        for claim, (bad, why) in _judge_all(meta["caption"]["claims"], pos_fig)[0]:
            if bad:
                report.positive_failures.append(
                    {"key": rec.key, "claim": claim, "reason": f"false on its own figure: {why}"}
                )
        for i, neg in enumerate(wanted["image"]):
            reasons = _audit_image(neg, rec, meta, image_ref, report)
            report.add("image", rec.key, i, str(neg.get("plugin")), reasons)
        for kind in ("caption", "retrieval"):
            for i, neg in enumerate(wanted[kind]):
                reasons = _audit_caption(neg, pos_fig, pos_claims, reproduced)
                report.add(kind, rec.key, i, str(neg.get("plugin")), reasons)
    report.seconds = time.perf_counter() - start
    return report


def format_report(report: Report) -> str:
    lines = [f"audit of {report.corpus}: {report.samples} samples read in {report.seconds:.1f} s"]
    lines.append(f"{'kind':<10} {'plugin':<18} {'audited':>8} {'passed':>8} {'failed':>8}")
    for kind in KINDS:
        t = report.kinds[kind]
        lines.append(f"{kind:<10} {'(all)':<18} {t.audited:>8} {t.passed:>8} {t.failed:>8}")
        for plugin, p in sorted(report.plugins[kind].items()):
            lines.append(f"{'':<10} {plugin:<18} {p.audited:>8} {p.passed:>8} {p.failed:>8}")
    if report.pixel_diffs:
        lines.append(f"mean pixel difference of audited image negatives: {np.mean(report.pixel_diffs):.5f}")
    if report.failures:
        lines.append(f"{len(report.failures)} failures:")
        for f in report.failures:
            lines.append(f"  {f['key']} {f['kind']}[{f['index']}] ({f['plugin']}): {f['reason']}")
    else:
        lines.append("no failures")
    for f in report.positive_failures:
        lines.append(f"  positive {f['key']}: {' '.join(f['claim'])}: {f['reason']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="corpus directory holding shard-*.tar")
    parser.add_argument("--limit", type=int, default=1000, help="negatives of each kind to audit")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir() or not any(args.corpus.glob("shard-*.tar")):
        print(f"error: {args.corpus}: no shard-*.tar found", file=sys.stderr)
        return 2
    report = audit(args.corpus, args.limit)
    if args.json:
        print(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    else:
        print(format_report(report))
    return 1 if report.failures or report.positive_failures else 0


if __name__ == "__main__":
    sys.exit(main())
