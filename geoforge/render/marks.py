"""Mark glyphs in pixel space: right-angle squares, equal-length ticks and angle arcs.

They come from the program's ``mark`` statements, from ``given angle`` (an arc beside the value)
and, optionally, from the ``perp`` facts its constructions declare. Every glyph is a tuple of
polylines, each a float64 array of shape (K, 2) in pixels (origin top-left, y down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geoforge.scene import Scene

#: Glyph sizes as fractions of the label font size.
SQUARE = 0.55
TICK = 0.65
TICK_GAP = 0.25
ARC = 0.95
ARC_GAP = 0.22


@dataclass(frozen=True)
class Mark:
    """One glyph: ``kind`` is ``right``, ``equal``, ``angle``, ``equalangle`` or ``given``;
    ``at`` the point names it marks (vertex in the middle for angles); ``paths`` its polylines,
    each float64 (K, 2) in pixels."""

    kind: str
    at: tuple[str, ...]
    paths: tuple[np.ndarray, ...]


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(*v))
    return v / n if n > 0 else v


def square(px: dict[str, np.ndarray], a: str, b: str, c: str, font_px: float) -> np.ndarray:
    """Right-angle square at ``b`` between rays ``ba`` and ``bc``: a (3, 2) polyline."""
    ba, bc = px[a] - px[b], px[c] - px[b]
    side = min(SQUARE * font_px, 0.35 * min(np.hypot(*ba), np.hypot(*bc)))
    u, w = _unit(ba) * side, _unit(bc) * side
    return np.array([px[b] + u, px[b] + u + w, px[b] + w])


def ticks(p: np.ndarray, q: np.ndarray, count: int, font_px: float) -> tuple[np.ndarray, ...]:
    """``count`` tick marks across the middle of segment ``pq``: (2, 2) polylines."""
    u = _unit(q - p)
    n = np.array([-u[1], u[0]]) * TICK * font_px / 2
    mid = (p + q) / 2
    gap = TICK_GAP * font_px
    return tuple(
        np.array([c - n, c + n]) for c in (mid + u * gap * (k - (count - 1) / 2) for k in range(count))
    )


def arcs(
    px: dict[str, np.ndarray], a: str, b: str, c: str, count: int, font_px: float
) -> tuple[np.ndarray, ...]:
    """``count`` concentric arcs at ``b`` spanning the angle ``abc`` (< 180°): (K, 2) polylines."""
    ba, bc = px[a] - px[b], px[c] - px[b]
    start = math.atan2(ba[1], ba[0])
    sweep = (math.atan2(bc[1], bc[0]) - start + math.pi) % (2 * math.pi) - math.pi
    room = 0.45 * min(np.hypot(*ba), np.hypot(*bc))
    radius = min(ARC * font_px, room / (1 + ARC_GAP * (count - 1)))
    out = []
    for k in range(count):
        r = radius * (1 + ARC_GAP * k)
        t = start + sweep * np.linspace(0.0, 1.0, max(6, int(abs(sweep) * r / 2)))
        out.append(px[b] + r * np.stack([np.cos(t), np.sin(t)], axis=1))
    return tuple(out)


def _groups(scene: Scene) -> dict[frozenset[str], int]:
    """Each pair of points on a drawn line → the index of that line in ``scene.lines``."""
    return {frozenset((p, q)): i for i, g in enumerate(scene.lines) for p in g for q in g if p != q}


def _auto_right(scene: Scene, px: dict[str, np.ndarray]) -> list[tuple[str, str, str]]:
    """Right angles ``(a, b, c)`` (square at ``b``) from the ``perp`` facts of the constructions
    whose two segments meet at a named point: a shared endpoint, or an endpoint of one lying
    on the drawn line through the other (as a foot does)."""
    from geoforge.constructions import REGISTRY

    lines = [set(g) for g in scene.lines]
    out = []
    for clause in scene.program.clauses:
        for call in clause.calls:
            c = REGISTRY[call.name]
            bind = dict(zip(c.params, call.args))
            for f in c.facts:
                if f.name != "perp":
                    continue
                p, q, r, s = (bind.get(x, x) for x in f.args)
                if len({p, q}) < 2 or len({r, s}) < 2:
                    continue
                shared = {p, q} & {r, s}
                if len(shared) == 1:
                    v = shared.pop()
                    out.append((({p, q} - {v}).pop(), v, ({r, s} - {v}).pop()))
                    continue
                for v, end, seg in ((p, q, {r, s}), (q, p, {r, s}), (r, s, {p, q}), (s, r, {p, q})):
                    line = next((g for g in lines if seg <= g and v in g), None)
                    if line is not None:
                        far = max(sorted(line - {v}), key=lambda n: float(np.hypot(*(px[n] - px[v]))))
                        out.append((end, v, far))
                        break
    return out


def marks(scene: Scene, px: dict[str, np.ndarray], font_px: float, auto: bool) -> tuple[Mark, ...]:
    """All glyphs for ``scene`` with point positions ``px`` (name → (2,) pixels).

    Successive ``mark equal`` statements get 1, 2, 3, ... ticks; successive ``mark equalangle``
    statements 1, 2, 3, ... arcs. A right angle is drawn once per vertex and pair of lines;
    with ``auto`` the construction's ``perp`` facts add squares the program did not mark.
    """
    group = _groups(scene)

    def key(a: str, b: str, c: str) -> tuple[str, frozenset[object]]:
        return b, frozenset(group.get(frozenset((b, x)), frozenset((b, x))) for x in (a, c))

    out: list[Mark] = []
    seen: set[tuple[str, frozenset[object]]] = set()
    arcs_at: set[tuple[str, frozenset[str]]] = set()
    n_equal = n_angle = 0
    for st in scene.program.statements:
        args = st.points
        if st.kind == "mark" and st.name == "right":
            a, b, c = args
            seen.add(key(a, b, c))
            out.append(Mark("right", args, (square(px, a, b, c, font_px),)))
        elif st.kind == "mark" and st.name == "equal":
            n_equal += 1
            for i in range(0, len(args), 2):
                p, q = args[i : i + 2]
                out.append(Mark("equal", (p, q), ticks(px[p], px[q], n_equal, font_px)))
        elif st.kind == "mark" and st.name == "equalangle":
            n_angle += 1
            for i in range(0, len(args), 3):
                a, b, c = args[i : i + 3]
                out.append(Mark("equalangle", (a, b, c), arcs(px, a, b, c, n_angle, font_px)))
        elif st.name == "angle" and (args[1], frozenset(args[::2])) not in arcs_at:
            a, b, c = args
            arcs_at.add((b, frozenset((a, c))))
            kind = "angle" if st.kind == "mark" else "given"
            out.append(Mark(kind, args, arcs(px, a, b, c, 1, font_px)))
    if auto:
        for a, b, c in _auto_right(scene, px):
            if key(a, b, c) not in seen:
                seen.add(key(a, b, c))
                out.append(Mark("right", (a, b, c), (square(px, a, b, c, font_px),)))
    return tuple(out)
