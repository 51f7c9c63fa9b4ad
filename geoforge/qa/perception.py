"""Perception questions: what a figure shows, answered exactly or not at all.

Each :class:`Relation` has a question template, a way to propose subjects from a figure's
stated facts and drawing, and an answer function that reads a Scene. The answer function is
the one judgement for a question: it makes the answer on the positive figure and on each image
negative (:mod:`geoforge.qa.build` records the negatives on which it differs). It answers only
when the figure is unambiguous:

* a relation holds when its fact's residual is at most :data:`EXACT` (it is exact by
  construction: the positive's facts come from the program) and fails when it is false by the
  verifier's margin (:func:`geoforge.verify.violation` ≥ 1: 8°, 12%, 3% of the figure);
* anything in between, a point the figure lacks, or a mark that two readings share, gives
  ``None`` and the question is not asked of that figure.

Marks are read from the glyphs the renderer draws (:func:`geoforge.render.marks.marks`), the
automatic right-angle squares of ``perp`` constructions included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise, permutations

import numpy as np

from geoforge.caption import CLAIM_TOL, Claim
from geoforge.facts import SHAPES, Fact, residual
from geoforge.geometry import norm
from geoforge.qa.items import NONE, Answer, Distractor
from geoforge.scene import Scene
from geoforge.verify import DEFAULT_MARGINS, violation

#: A relation holds on a figure when its residual is at most this (as captions' claims do).
EXACT = CLAIM_TOL
Subject = tuple[str, ...]


def stated_facts(claims: Sequence[Claim]) -> list[Fact]:
    """The facts ``claims`` state, with ``shape`` facts expanded into their defining facts
    (:data:`geoforge.facts.SHAPES`)."""
    out: list[Fact] = []
    for claim in claims:
        for f in claim.facts():
            if f.name == "shape":
                kind, *pts = f.args
                out.extend(
                    Fact(t.split()[0], tuple(pts[int(i)] for i in t.split()[1:])) for t in SHAPES[kind][1]
                )
            else:
                out.append(f)
    return out


def drawn(scene: Scene, a: str, b: str) -> bool:
    """True if segment ``ab`` lies on a line the figure draws."""
    return a != b and any(a in g and b in g for g in scene.lines)


def segments(scene: Scene) -> list[tuple[str, str]]:
    """The drawn segments a reader names: consecutive points along each drawn line, and each
    line's two ends."""
    out: list[tuple[str, str]] = []
    for g in scene.lines:
        for pair in [*pairwise(g), (g[0], g[-1])]:
            if pair not in out:
                out.append(pair)
    return out


def _has(scene: Scene, names: Subject) -> bool:
    return all(n in scene.points for n in names)


def _yes_no(scene: Scene, fact: Fact, claim: Claim) -> Answer | None:
    if not _has(scene, fact.points):
        return None
    if residual(fact, scene) <= EXACT:
        return Answer("yesno", "yes")
    if violation(claim, scene) >= 1.0:
        return Answer("yesno", "no")
    return None


def _perpendicular(scene: Scene, s: Subject) -> Answer | None:
    return _yes_no(scene, Fact("perp", s), Claim("perpendicular", s))


def _parallel(scene: Scene, s: Subject) -> Answer | None:
    return _yes_no(scene, Fact("para", s), Claim("parallel", s))


def _on_segment(scene: Scene, s: Subject) -> Answer | None:
    """X on segment YZ: on the line exactly and at least the incidence margin from both ends,
    or off the line by at least that margin."""
    if not _has(scene, s):
        return None
    x, y, z = (scene.points[n] for n in s)
    far = DEFAULT_MARGINS.incidence * scene.scale
    if residual(Fact("coll", s), scene) <= EXACT:
        inside = float(np.dot(x - y, z - y)) > 0 and float(np.dot(x - z, y - z)) > 0
        return Answer("yesno", "yes") if inside and min(norm(x - y), norm(x - z)) >= far else None
    return Answer("yesno", "no") if violation(Claim("on_segment", s), scene) >= 1.0 else None


def _midpoint(scene: Scene, s: Subject) -> Answer | None:
    """The labelled point at the midpoint of segment AB, ``none`` if every labelled point is
    clearly off it."""
    if not _has(scene, s):
        return None
    others = [n for n in scene.points if n not in s]
    exact = [n for n in others if residual(Fact("midp", (n, *s)), scene) <= EXACT]
    if len(exact) == 1:
        return Answer("point", exact[0])
    if not exact and all(violation(Claim("midpoint", (n, *s)), scene) >= 1.0 for n in others):
        return Answer("point", NONE)
    return None


def _circle_about(scene: Scene, o: str):  # type: ignore[no-untyped-def]
    found = [c for c in scene.circles if c.center_name == o]
    return found[0] if len(found) == 1 else None


def _on_circle(scene: Scene, s: Subject) -> Answer | None:
    """How many labelled points lie on the one circle drawn about O; ``None`` if a point is
    neither on it exactly nor off it by the incidence margin."""
    if not _has(scene, s):
        return None
    circle = _circle_about(scene, s[0])
    if circle is None:
        return None
    gaps = [
        abs(norm(p - circle.center) - circle.radius) / scene.scale
        for n, p in scene.points.items()
        if n != s[0]
    ]
    if any(EXACT < g < DEFAULT_MARGINS.incidence for g in gaps):
        return None
    return Answer("count", str(sum(g <= EXACT for g in gaps)))


def _seg(a: str, b: str) -> str:
    return "".join(sorted((a, b)))


def _segments_text(segs: set[str]) -> str:
    return ", ".join(sorted(segs)) if segs else NONE


def equal_groups(scene: Scene) -> list[set[str]]:
    """The ``mark equal`` groups the figure draws (each a set of segments ``"AB"``, letters
    sorted) whose segments are equal to :data:`EXACT` (a false mark is never drawn on a kept
    figure, and never read)."""
    out = []
    for st in scene.program.statements:
        if st.kind == "mark" and st.name == "equal" and _has(scene, st.points):
            a = st.points
            pairs = [(a[i], a[i + 1]) for i in range(0, len(a) - 1, 2)]
            if all(residual(Fact("cong", (*pairs[0], *p)), scene) <= EXACT for p in pairs[1:]):
                out.append({_seg(*p) for p in pairs})
    return out


def _equal_marks(scene: Scene, s: Subject) -> Answer | None:
    """With no subject, the segments of the figure's one group of equal ticks; with subject
    AB, the other segments marked equal to AB; ``none`` where there are none."""
    groups = equal_groups(scene)
    if not s:
        if len(groups) > 1:
            return None
        return Answer("segments", _segments_text(groups[0] if groups else set()))
    if not _has(scene, s):
        return None
    mine = [g for g in groups if _seg(*s) in g]
    if len(mine) > 1:
        return None
    return Answer("segments", _segments_text(mine[0] - {_seg(*s)} if mine else set()))


def angle_marks(scene: Scene) -> list[tuple[str, tuple[str, ...]]]:
    """The angle glyphs the figure draws as ``(kind, (a, b, c))`` with the vertex ``b`` in the
    middle: ``right`` squares (marked and automatic), ``given`` value arcs, plain ``angle`` and
    ``equalangle`` arcs (:func:`geoforge.render.marks.marks`)."""
    from geoforge.render.marks import marks

    return [
        (m.kind, m.at)
        for m in marks(scene, scene.points, 1.0, auto=True)
        if m.kind in ("right", "given", "angle", "equalangle")
    ]


def _marked_angle(scene: Scene, s: Subject) -> Answer | None:
    """The value of the one angle marked at B: 90 for a right-angle square, the printed value
    of a ``given angle``; ``None`` if B has no such mark or several, or if another angle at B
    is right (:func:`_square_possible`)."""
    if not _has(scene, s):
        return None
    at = [(k, a) for k, a in angle_marks(scene) if a[1] == s[0]]
    if len(at) != 1 or at[0][0] not in ("right", "given"):
        return None
    kind, (a, b, c) = at[0]
    value = "90"
    if kind == "given":
        value = next(
            st.args[-1]
            for st in scene.program.statements
            if st.kind == "given" and st.name == "angle" and st.points in ((a, b, c), (c, b, a))
        )
    if residual(Fact("angle", (a, b, c, value)), scene) > EXACT:
        return None
    if value != "90" and _square_possible(scene, b):
        return None
    return Answer("angle", value)


def _square_possible(scene: Scene, b: str) -> bool:
    """True if two drawn lines through ``b`` are perpendicular: a reader may take that right
    angle for the one marked at ``b``, whether or not the renderer squares it."""
    through = [next(n for n in g if n != b) for g in scene.lines if b in g]
    return any(residual(Fact("perp", (b, x, b, y)), scene) <= EXACT for x, y in combinations(through, 2))


# --- subjects ---------------------------------------------------------------------------------


def _line_pairs(scene: Scene, facts: list[Fact], name: str) -> tuple[list[Subject], list[Subject]]:
    """Subjects for ``perp``/``para``: the stated ones whose segments are drawn, and pairs of
    drawn segments on different lines."""
    stated = [
        f.args for f in facts if f.name == name and drawn(scene, *f.args[:2]) and drawn(scene, *f.args[2:])
    ]
    segs = segments(scene)
    others: list[Subject] = [
        (*p, *q)
        for p, q in combinations(segs, 2)
        if not any(set(p) <= set(g) and set(q) <= set(g) for g in scene.lines)
    ]
    return stated, others


def _perp_subjects(scene: Scene, facts: list[Fact]) -> list[Subject]:
    stated, others = _line_pairs(scene, facts, "perp")
    return stated + others


def _para_subjects(scene: Scene, facts: list[Fact]) -> list[Subject]:
    stated, others = _line_pairs(scene, facts, "para")
    return stated + others


def _on_segment_subjects(scene: Scene, facts: list[Fact]) -> list[Subject]:
    on: list[Subject] = []
    for f in facts:
        if f.name in ("coll", "midp"):
            on.extend(t for t in permutations(f.args, 3) if drawn(scene, t[1], t[2]))
    off = [(x, *seg) for seg in segments(scene) for x in scene.points if x not in seg]
    return on + off


def _midpoint_subjects(scene: Scene, facts: list[Fact]) -> list[Subject]:
    return [f.args[1:] for f in facts if f.name == "midp" and drawn(scene, *f.args[1:])]


def _circle_subjects(scene: Scene, facts: list[Fact]) -> list[Subject]:
    return [(c.center_name,) for c in scene.circles if c.center_name is not None]


def _equal_subjects(scene: Scene, facts: list[Fact]) -> list[Subject]:
    groups = equal_groups(scene)
    out: list[Subject] = [()] if len(groups) == 1 else []
    return out + [(s[0], s[1]) for g in groups for s in sorted(g)]


def _angle_subjects(scene: Scene, facts: list[Fact]) -> list[Subject]:
    return sorted({(a[1],) for k, a in angle_marks(scene) if k in ("right", "given")})


# --- distractors ------------------------------------------------------------------------------


def _midpoint_distractors(scene: Scene, s: Subject, answer: Answer) -> list[Distractor]:
    """Points a reader may take for the midpoint: another labelled point on the segment
    (nearest the midpoint first), the labelled point nearest the midpoint off it, an end of
    the segment; each at least the incidence margin from the midpoint."""
    a, b = (scene.points[n] for n in s)
    mid = (a + b) / 2
    far = DEFAULT_MARGINS.incidence * scene.scale
    others = sorted(
        (n for n in scene.points if n not in s and n != answer.value and norm(scene.points[n] - mid) >= far),
        key=lambda n: norm(scene.points[n] - mid),
    )
    on = [n for n in others if _on_segment(scene, (n, *s)) == Answer("yesno", "yes")]
    off = [n for n in others if n not in on][:1]
    readings = [(n, "another point on the segment") for n in on]
    readings += [(n, "the nearest point") for n in off] + [(n, "an end of the segment") for n in s]
    return [Distractor(Answer("point", n), why) for n, why in readings]


def _count_distractors(scene: Scene, s: Subject, answer: Answer) -> list[Distractor]:
    """Counts a reader may give: the centre counted, one point missed, the points inside the
    circle counted too."""
    circle = _circle_about(scene, s[0])
    assert circle is not None
    n = int(answer.value)
    inside = sum(
        norm(p - circle.center) < circle.radius * (1 - DEFAULT_MARGINS.incidence)
        for k, p in scene.points.items()
        if k != s[0]
    )
    options = [
        (n + 1, "the centre counted"),
        (n - 1, "a point missed"),
        (n + inside, "the points inside counted"),
    ]
    return [Distractor(Answer("count", str(k)), why) for k, why in options if k >= 0 and k != n]


def _equal_distractors(scene: Scene, s: Subject, answer: Answer) -> list[Distractor]:
    """Answers with one marked segment swapped for a drawn, unmarked segment beside it that is
    clearly unequal to it (by the length margin)."""
    if answer.value == NONE:
        return []
    chosen = set(answer.value.split(", "))
    marked = set().union(*equal_groups(scene))
    out = []
    for seg in sorted(chosen):
        length = norm(scene.points[seg[0]] - scene.points[seg[1]])
        for p, q in segments(scene):
            other = _seg(p, q)
            if other in marked or not set(other) & set(seg):
                continue
            d = norm(scene.points[p] - scene.points[q])
            if abs(d - length) >= DEFAULT_MARGINS.length_rel * max(d, length):
                out.append(
                    Distractor(
                        Answer("segments", _segments_text(chosen - {seg} | {other})), "an unmarked segment"
                    )
                )
    return out


def _no_distractors(scene: Scene, s: Subject, answer: Answer) -> list[Distractor]:
    return []


def _same_points(scene: Scene, s: Subject) -> object:
    return frozenset(s)


def _same_lines(scene: Scene, s: Subject) -> object:
    """Two segments on the same two drawn lines ask the same question (AD ⊥ BC, AD ⊥ DC)."""
    return frozenset(
        next((i for i, g in enumerate(scene.lines) if p in g and q in g), (p, q)) for p, q in (s[:2], s[2:])
    )


@dataclass(frozen=True)
class Relation:
    """A kind of perception question: its ``name``, its question for a subject, the subjects
    a figure with stated facts offers (``propose``), its ``answer`` on any Scene (``None``:
    not answerable there) and the wrong readings of a figure that give ``distractors``
    (values answers get theirs from :mod:`geoforge.qa.choices`); subjects with the same
    ``same`` key ask the same question."""

    name: str
    question: Callable[[Subject], str]
    propose: Callable[[Scene, list[Fact]], list[Subject]]
    answer: Callable[[Scene, Subject], Answer | None]
    distractors: Callable[[Scene, Subject, Answer], list[Distractor]] = _no_distractors
    same: Callable[[Scene, Subject], object] = _same_points


def _equal_question(s: Subject) -> str:
    return (
        "Which segments are marked equal?" if not s else f"Which segments are marked equal to {s[0]}{s[1]}?"
    )


#: The perception relations, by name.
RELATIONS: dict[str, Relation] = {
    r.name: r
    for r in (
        Relation(
            "on_segment",
            lambda s: f"Does {s[0]} lie on segment {s[1]}{s[2]}?",
            _on_segment_subjects,
            _on_segment,
        ),
        Relation(
            "perpendicular",
            lambda s: f"Is {s[0]}{s[1]} ⊥ {s[2]}{s[3]}?",
            _perp_subjects,
            _perpendicular,
            same=_same_lines,
        ),
        Relation(
            "parallel",
            lambda s: f"Is {s[0]}{s[1]} ∥ {s[2]}{s[3]}?",
            _para_subjects,
            _parallel,
            same=_same_lines,
        ),
        Relation(
            "midpoint",
            lambda s: f"Which point is the midpoint of {s[0]}{s[1]}?",
            _midpoint_subjects,
            _midpoint,
            _midpoint_distractors,
        ),
        Relation(
            "on_circle",
            lambda s: f"How many labelled points lie on circle {s[0]}?",
            _circle_subjects,
            _on_circle,
            _count_distractors,
        ),
        Relation("equal_marks", _equal_question, _equal_subjects, _equal_marks, _equal_distractors),
        Relation(
            "marked_angle",
            lambda s: f"What is the measure of the angle marked at {s[0]}?",
            _angle_subjects,
            _marked_angle,
        ),
    )
}
