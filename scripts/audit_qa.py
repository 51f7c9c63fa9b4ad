#!/usr/bin/env python
"""Re-check the Q&A of a geoforge corpus from what a model is shown, by code independent of
geoforge's Q&A engine.

Usage::

    python scripts/audit_qa.py CORPUS_DIR [--limit N] [--json]

For every item of every sample's ``qa`` record it reads only the text a model sees and is
trained on: the ``prompt`` (the question and, for multiple choice, "Choices: A. … D. …"), the
``response`` (``\\boxed{…}``) and, for each flip, the answer ``display`` on that image
negative. The question is read by this script's own patterns, typed by hand; the answer is
measured on the figure's drawn points with the audit's own geometry (scripts/audit_claims.py,
which never calls geoforge.facts); the figure is re-realised from its stored program and seed
(scripts/audit/figures.py: geoforge.program and geoforge.realise only). geoforge.qa,
geoforge.caption, geoforge.verify and geoforge.render are never imported.

Checked per item:

* the answer is what the figure shows: a relation holds to 1e-6 (1e-4° for angles) for "yes",
  fails by the margin for "no" (8°; a point 3% of the figure off the line); a value matches to
  1e-6 relative; a "which point" answer is the one labelled point at the midpoint, or "none"
  when every labelled point is at least 3% of the segment from it; a count counts the points on
  the one circle drawn about the centre, every other point at least 3% of the figure off it;
  marked segments and angles are read from the program's ``mark``/``given`` statements and
  measured;
* a reasoning question's set-up statements all hold on the figure (read by the audit's caption
  reader, scripts/audit/reader.py);
* every wrong option of a multiple-choice question is wrong by the margin: 8° for angles,
  12% for lengths and ratios, another count, a point at least 3% of the segment from the
  midpoint, a segment at least 12% longer or shorter than the marked ones;
* every flip's answer is what its image negative (re-realised from the program in the
  sample's ``negatives`` record) shows, and differs from the positive's.

Exits 1 if any item fails, 2 on a usage error; prints the failures, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from audit.figures import figure_of, number, realise_figure
from audit_claims import (
    ANGLE_MARGIN,
    INCIDENCE_MARGIN,
    REL_MARGIN,
    Figure,
    ReadError,
    judge,
    line_angle,
    off_line,
    read_caption,
    value_of,
    vertex_angle,
)

#: "Holds" tolerances: shares of the figure or segment, degrees, relative values.
HOLD = 1e-6
HOLD_DEG = 1e-4
_P = r"([A-Z][0-9]*'*)"
_CHOICES = re.compile(r"^(.*) Choices: A\. (.+) B\. (.+) C\. (.+) D\. (.+)$")
_BOXED = re.compile(r"^\\boxed\{(.+)\}$")


class Unclear(ValueError):
    """The figure does not settle the question (neither clearly yes nor clearly no)."""


@dataclass
class Seen:
    """A figure as the audit sees it: measured points and circles, and what the program marks
    (``equal`` tick groups as sets of sorted segment names, ``angles`` as ``(a, b, c, value)``
    with the right-angle marks as 90) and draws (``lines``, groups of collinear points)."""

    figure: Figure
    equal: list[set[str]]
    angles: list[tuple[str, str, str, float]]
    lines: list[tuple[str, ...]]


def _statements(program_text: str) -> list[list[str]]:
    body = program_text.split("?")[0].replace("|", ";")
    return [part.split() for part in body.split(";") if "=" not in part and part.split()]


def seen(program_text: str, seed: int, reference: dict[str, np.ndarray] | None = None) -> Seen:
    """Realise a stored program as geoforge did and read its marks from the program text."""
    program, scene = realise_figure(program_text, seed, reference)
    equal, angles = [], []
    for words in _statements(program_text):
        kind, name, *args = words
        if kind == "mark" and name == "equal":
            equal.append({"".join(sorted(args[i : i + 2])) for i in range(0, len(args) - 1, 2)})
        elif kind == "mark" and name == "right":
            angles.append((*args, 90.0))
        elif kind == "given" and name == "angle":
            angles.append((*args[:3], number(args[3])))
    return Seen(figure_of(scene, program), equal, angles, [tuple(g) for g in scene.lines])


def _near(f: Figure, p: np.ndarray, q: np.ndarray, share: float) -> bool:
    return float(np.hypot(*(p - q))) <= share * f.size


def _inside(f: Figure, x: str, y: str, z: str) -> bool:
    """x strictly between y and z, at least the incidence margin of the figure from both."""
    p, a, b = f.p(x), f.p(y), f.p(z)
    t = float(np.dot(p - a, b - a)) / float(np.dot(b - a, b - a))
    return 0 < t < 1 and min(f.dist(x, y), f.dist(x, z)) >= INCIDENCE_MARGIN * f.size


def on_segment(s: Seen, x: str, y: str, z: str) -> str:
    f = s.figure
    off = off_line(f, x, y, z)
    if off <= HOLD and _inside(f, x, y, z):
        return "yes"
    if off >= INCIDENCE_MARGIN:
        return "no"
    raise Unclear(f"{x} vs segment {y}{z}: off by {off:.3g} of the figure")


def lines_at(target: float) -> Callable[..., str]:
    def answer(s: Seen, a: str, b: str, c: str, d: str) -> str:
        t = line_angle(s.figure, a, b, c, d)
        if abs(t - target) <= HOLD_DEG:
            return "yes"
        if abs(t - target) >= ANGLE_MARGIN:
            return "no"
        raise Unclear(f"∠({a}{b}, {c}{d}) = {t:.4f}°")

    return answer


def midpoint(s: Seen, a: str, b: str) -> str:
    f = s.figure
    mid = (f.p(a) + f.p(b)) / 2
    others = [n for n in f.points if n not in (a, b)]
    exact = [n for n in others if _near(f, f.p(n), mid, HOLD)]
    if len(exact) == 1:
        return exact[0]
    if not exact and all(float(np.hypot(*(f.p(n) - mid))) >= 0.03 * f.dist(a, b) for n in others):
        return "none"
    raise Unclear(f"midpoint of {a}{b}: {exact or 'a point near it'}")


def on_circle(s: Seen, o: str) -> str:
    f = s.figure
    circles = [(c, r) for c, r in f.circles if _near(f, c, f.p(o), 1e-9)]
    if len(circles) != 1:
        raise Unclear(f"{len(circles)} circles drawn about {o}")
    (c, r), on = circles[0], 0
    for n, p in f.points.items():
        if n == o:
            continue
        gap = abs(float(np.hypot(*(p - c))) - r) / f.size
        if HOLD < gap < INCIDENCE_MARGIN:
            raise Unclear(f"{n} is {gap:.3g} of the figure off circle {o}")
        on += gap <= HOLD
    return str(on)


def marked_equal(s: Seen, *ab: str) -> str:
    groups = [g for g in s.equal if _equal_lengths(s.figure, g)]
    if not ab:
        if len(groups) > 1:
            raise Unclear("several groups of equal ticks")
        chosen = groups[0] if groups else set()
    else:
        mine = [g for g in groups if "".join(sorted(ab)) in g]
        if len(mine) > 1:
            raise Unclear(f"{''.join(ab)} in several groups")
        chosen = mine[0] - {"".join(sorted(ab))} if mine else set()
    return ", ".join(sorted(chosen)) or "none"


def _equal_lengths(f: Figure, group: set[str]) -> bool:
    lengths = [f.dist(*_ends(f, seg)) for seg in group]
    return max(lengths) - min(lengths) <= HOLD * max(lengths)


def _ends(f: Figure, seg: str) -> tuple[str, str]:
    """Split a segment name such as ``AB`` or ``A1B`` into its two point names."""
    names = re.findall(r"[A-Z][0-9]*'*", seg)
    if len(names) != 2 or any(n not in f.points for n in names):
        raise Unclear(f"segment {seg}")
    return names[0], names[1]


def marked_angle(s: Seen, b: str) -> str:
    """The printed value (or 90 for a square) of the one angle marked at b; a right angle the
    renderer squares on its own (two drawn lines through b at 90°) counts as marked too."""
    f = s.figure
    found = {
        v for a, vertex, c, v in s.angles if vertex == b and abs(vertex_angle(f, a, b, c) - v) <= HOLD_DEG
    }
    through = [g for g in s.lines if b in g]
    for g, h in ((g, h) for i, g in enumerate(through) for h in through[i + 1 :]):
        x, y = next(n for n in g if n != b), next(n for n in h if n != b)
        if abs(line_angle(f, b, x, b, y) - 90.0) <= HOLD_DEG:
            found.add(90.0)
    if len(found) != 1:
        raise Unclear(f"angles marked at {b}: {sorted(found)}")
    return f"{found.pop():g}"


QUESTIONS: list[tuple[re.Pattern[str], str, Callable[..., str]]] = [
    (re.compile(rf"^Does {_P} lie on segment {_P}{_P}\?$"), "yesno", on_segment),
    (re.compile(rf"^Is {_P}{_P} ⊥ {_P}{_P}\?$"), "yesno", lines_at(90.0)),
    (re.compile(rf"^Is {_P}{_P} ∥ {_P}{_P}\?$"), "yesno", lines_at(0.0)),
    (re.compile(rf"^Which point is the midpoint of {_P}{_P}\?$"), "point", midpoint),
    (re.compile(rf"^How many labelled points lie on circle {_P}\?$"), "count", on_circle),
    (re.compile(r"^Which segments are marked equal\?$"), "segments", marked_equal),
    (re.compile(rf"^Which segments are marked equal to {_P}{_P}\?$"), "segments", marked_equal),
    (re.compile(rf"^What is the measure of the angle marked at {_P}\?$"), "angle", marked_angle),
]
REASONING: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^Find the length of {_P}{_P}\.$"), "length"),
    (re.compile(rf"^Find ∠{_P}{_P}{_P}\.$"), "angle"),
    (re.compile(rf"^Find the ratio {_P}{_P}/{_P}{_P}\.$"), "ratio"),
]


def measure(f: Figure, kind: str, pts: tuple[str, ...]) -> float:
    """A reasoning value on the figure: printed length, degrees, or a ratio of lengths."""
    if kind == "length":
        if f.unit is None:
            raise Unclear("a length asked of a figure that prints none")
        return f.dist(*pts) * f.unit
    if kind == "angle":
        return vertex_angle(f, *pts)
    return f.dist(pts[0], pts[1]) / f.dist(pts[2], pts[3])


def _number(display: str) -> float:
    return value_of(display.removesuffix("°"))


def _apart(kind: str, x: float, y: float) -> bool:
    if kind == "angle":
        return abs(x - y) >= ANGLE_MARGIN
    return abs(x - y) >= REL_MARGIN * max(abs(x), abs(y))


def read_item(item: dict[str, Any]) -> tuple[str, list[str], str]:
    """``(question, options, answer)`` as the model reads them from ``prompt`` and
    ``response``; ``options`` is empty for a free-form question."""
    prompt, response = item["prompt"], item["response"]
    m = _CHOICES.match(prompt)
    question, options = (m.group(1), list(m.groups()[1:])) if m else (prompt, [])
    b = _BOXED.match(response)
    if b is None:
        raise ReadError(f"response `{response}` is not \\boxed{{…}}")
    answer = b.group(1)
    if options:
        if answer not in "ABCD" or len(answer) != 1:
            raise ReadError(f"choice answer `{answer}` is not a letter")
        answer = options["ABCD".index(answer)]
    return question, options, answer


def check_perception(question: str, s: Seen) -> tuple[str, str, tuple[str, ...]]:
    """``(kind, answer, points)`` for a perception question on figure ``s``."""
    for pattern, kind, answer in QUESTIONS:
        m = pattern.match(question)
        if m:
            pts = m.groups()
            if any(p not in s.figure.points for p in pts):
                raise Unclear(f"point of {pts} missing")
            return kind, answer(s, *pts), pts
    raise ReadError(f"cannot read the question `{question}`")


def _wrong_option_problem(kind: str, truth: str, option: str, s: Seen, pts: tuple[str, ...]) -> str | None:
    f = s.figure
    if option == truth:
        return f"option {option} is the answer"
    if kind in ("angle", "length", "ratio"):
        return (
            None if _apart(kind, _number(option), _number(truth)) else f"option {option} too close to {truth}"
        )
    if kind == "point":
        if option == "none":
            return None
        mid = (f.p(pts[0]) + f.p(pts[1])) / 2
        gap = float(np.hypot(*(f.p(option) - mid)))
        return None if gap >= 0.03 * f.dist(*pts) else f"option {option} near the midpoint"
    if kind == "segments":
        ref = set(truth.split(", ")) if truth != "none" else {"".join(sorted(pts))}
        base = f.dist(*_ends(f, sorted(ref)[0]))
        for seg in set(option.split(", ")) - ref:
            if not _apart("length", f.dist(*_ends(f, seg)), base):
                return f"option segment {seg} about as long as the marked ones"
        return None
    return None  # counts: any other count is wrong


def check_item(item: dict[str, Any], pos: Seen, negatives: list[Seen | None]) -> list[str]:
    """The problems of one Q&A item (empty if it checks out)."""
    problems: list[str] = []
    try:
        question, options, answer = read_item(item)
        if len(set(options)) != len(options):
            problems.append(f"repeated options {options}")
        if question.startswith("As shown in the figure, "):
            setup, _, asked = question.rpartition(". ")
            for st in read_caption(setup + ".").statements:
                j = judge(st, pos.figure)
                if not j.holds:
                    problems.append(f"set-up statement `{st.text}` does not hold: {j.why}")
            kind, pts = next(((k, m.groups()) for p, k in REASONING if (m := p.match(asked))), ("", ()))
            if not kind:
                raise ReadError(f"cannot read the question `{asked}`")
            truth = measure(pos.figure, kind, pts)
            if abs(_number(answer) - truth) > HOLD * max(1.0, abs(truth)):
                problems.append(f"answer {answer} but the figure gives {truth:.9g}")
            problems += [
                p for o in options if o != answer and (p := _wrong_option_problem(kind, answer, o, pos, pts))
            ]
            return problems
        kind, truth, pts = check_perception(question, pos)
        shown = f"{_number(answer):g}" if kind == "angle" else answer
        if shown != truth:
            problems.append(f"answer {answer} but the figure shows {truth}")
        problems += [
            p for o in options if o != answer and (p := _wrong_option_problem(kind, truth, o, pos, pts))
        ]
        for flip in item["flips"]:
            neg = negatives[flip["tile"]] if flip["tile"] < len(negatives) else None
            if neg is None:
                problems.append(f"flip on negative {flip['tile']}: the negative does not realise")
                continue
            _, on_neg, _ = check_perception(question, neg)
            said = f"{_number(flip['display']):g}" if kind == "angle" else flip["display"]
            if said != on_neg or on_neg == truth:
                problems.append(
                    f"flip on negative {flip['tile']} says {said}; it shows {on_neg}, the positive {truth}"
                )
    except (ReadError, Unclear, KeyError, StopIteration) as e:
        problems.append(f"{type(e).__name__}: {e}")
    return problems


def check_sample(meta: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(key, item id, problem)`` for every problem of one sample's Q&A."""
    seed = int(meta["realise_seed"])
    pos = seen(meta["program"], seed)
    stored = {p["name"]: np.array([p["x"], p["y"]], dtype=np.float64) for p in meta["points"]}
    if any(float(np.max(np.abs(pos.figure.points[n] - stored[n]))) > 1e-9 for n in stored):
        return [(meta["key"], "", "figure does not reproduce its stored points")]
    negatives: list[Seen | None] = []
    for neg in json.loads(meta.get("negatives") or "{}").get("image", []):
        try:
            negatives.append(seen(neg["program"], seed, pos.figure.points))
        except Exception:
            negatives.append(None)
    out = []
    for item in json.loads(meta["qa"])["items"]:
        out += [(meta["key"], item["id"], p) for p in check_item(item, pos, negatives)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="Check the first N samples.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from audit_negatives import read_records

    if not any(args.corpus.glob("shard-*.tar")):
        sys.stderr.write(f"error: {args.corpus}: no shard-*.tar files\n")
        return 2
    failures, items, samples = [], Counter(), 0
    for key, files in read_records(args.corpus):
        if args.limit is not None and samples >= args.limit:
            break
        meta = json.loads(files["json"])
        if "qa" not in meta:
            sys.stderr.write(f"error: {args.corpus}: sample {key} has no `qa` (generate with --qa)\n")
            return 2
        samples += 1
        for item in json.loads(meta["qa"])["items"]:
            items[item["type"]] += 1
        failures += check_sample(meta)
    report = {"samples": samples, "items": dict(items), "failures": [list(f) for f in failures]}
    if args.json:
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
    else:
        print(f"{samples} samples, {sum(items.values())} items ({dict(items)}): {len(failures)} failures")
        for key, qid, problem in failures:
            print(f"  {key} {qid}: {problem}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
