"""The figure side of the audit (see scripts/audit_negatives.py): re-realise and re-render a
stored figure, compare it with its positive up to similarity, and find the shortcuts an image
negative may take (a dropped true mark or given, a dropped true stroke, a re-framed image).

The only geoforge code used is the figure itself: geoforge.program.parse_program,
geoforge.realise.realise and geoforge.render (layout and paint); the audit reads the stored
image negatives with geoforge.corpus (the tiles of ``KEY.negatives.png``).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from audit_claims import Figure, off_line, vertex_angle
from PIL import Image

#: A pixel differs when its grey level changes by more than this.
PIXEL_LEVEL = 64
#: An image negative must differ from its positive in at least this share of the pixels.
PIXEL_SHARE = 0.001
#: Ink: pixels darker than this grey level.
DARK = 128
#: A negative keeping less than this share of its positive's ink in place is re-framed.
REFRAMED = 0.5
#: The re-realised positive must reproduce the stored coordinates to this (diagram units).
POINT_TOL = 1e-9
#: Marks, givens and strokes "still hold" on a negative to these tolerances.
HOLD_REL = 1e-6
HOLD_DEG = 1e-4


@dataclass
class Drawn:
    """A realised, laid-out and painted figure: its scene, program, layout and PNG bytes."""

    scene: Any
    program: Any
    plan: Any
    png: bytes


def realise_figure(
    program_text: str, seed: int, reference: dict[str, np.ndarray] | None = None
) -> tuple[Any, Any]:
    """Parse and realise a stored program as geoforge does: the positive with its seed, an
    image negative with the positive's seed, ``max_tries=3`` and the positive's points as
    ``reference``. Raises whatever geoforge raises."""
    from geoforge.program import parse_program
    from geoforge.realise import realise

    program = parse_program(program_text)
    if reference is None:
        return program, realise(program, seed=seed)
    return program, realise(program, seed=seed, max_tries=3, reference=reference)


def paint_figure(scene: Any, size: int, positive: Any = None, keep: bool = True) -> tuple[Any, bytes]:
    """Lay out and paint ``scene`` at ``size`` pixels, keeping the framing of ``positive`` (a
    positive's layout) when given and, with ``keep``, its labels where their points did not
    move."""
    from geoforge.render import layout
    from geoforge.render.draw import paint

    if positive is None:
        plan = layout(scene, size)
    else:
        plan = layout(scene, size, view=positive.view, keep=positive.labels if keep else ())
    return plan, paint(plan, "png")


def rerender(scene: Any, size: int, stored: Image.Image, positive: Any) -> tuple[bool, bool | None]:
    """Does ``scene`` paint exactly the pixels of ``stored`` (an image negative's tile), and did
    it keep the framing of ``positive`` (the positive's layout)? Tried as geoforge renders
    image negatives (in the positive's framing where the figure fits it, with the positive's
    labels kept where their points did not move), then as older corpora did (the framing
    without the labels; fitted on its own, framing ``None``)."""
    pixels = np.asarray(stored.convert("L"))

    def same(png: bytes) -> bool:
        with Image.open(io.BytesIO(png)) as im:
            return np.array_equal(np.asarray(im.convert("L")), pixels)

    if positive is not None:
        view = positive.view
        for keep in (True, False):
            plan, png = paint_figure(scene, size, positive, keep)
            if same(png):
                return True, bool(plan.view[0] == view[0] and np.array_equal(plan.view[1], view[1]))
    return same(paint_figure(scene, size)[1]), None


def grey(png: bytes | Image.Image) -> np.ndarray:
    if isinstance(png, Image.Image):
        return np.asarray(png.convert("L"), dtype=np.int16)
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("L"), dtype=np.int16)


def png_size(png: bytes) -> int:
    with Image.open(io.BytesIO(png)) as im:
        return int(im.size[0])


def pixel_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels whose grey level differs by more than :data:`PIXEL_LEVEL` (1 if the
    sizes differ)."""
    if a.shape != b.shape:
        return 1.0
    return float(np.mean(np.abs(a - b) > PIXEL_LEVEL))


def ink_kept(positive: np.ndarray, negative: np.ndarray) -> float:
    """Share of the positive's dark pixels that are still dark in the negative."""
    dark = positive < DARK
    if positive.shape != negative.shape or not dark.any():
        return 0.0
    return float(np.mean(negative[dark] < DARK))


@lru_cache(maxsize=4096)
def number(text: str) -> float:
    """The value of a program literal (``3``, ``4*4/5``, ``3*sqrt(2)``)."""
    import sympy

    return float(sympy.sympify(text, rational=True))


def printed_unit(program: Any, points: dict[str, np.ndarray]) -> float | None:
    """Printed units per diagram unit: the first ``given length a b V`` fixes V/|ab|; ``None``
    if the figure prints no length."""
    for st in program.statements:
        if st.kind == "given" and st.name == "length":
            a, b, v = st.args
            d = float(np.hypot(*(points[a] - points[b])))
            return number(v) / d if d > 0 else math.inf
    return None


def figure_of(scene: Any, program: Any, unit: float | None = None) -> Figure:
    """The :class:`Figure` a scene shows: its points, its drawn circles, its printed unit
    (``unit`` overrides it)."""
    points = {n: np.asarray(p, dtype=np.float64) for n, p in scene.points.items()}
    circles = [(np.asarray(c.center, dtype=np.float64), float(c.radius)) for c in scene.circles]
    return Figure(points, circles, unit if unit is not None else printed_unit(program, points))


def stored_points_differ(meta: dict[str, Any], scene: Any) -> str | None:
    stored = {p["name"]: np.array([float(p["x"]), float(p["y"])]) for p in meta.get("points", [])}
    if set(stored) != set(scene.points):
        return f"realises points {sorted(scene.points)}, stored {sorted(stored)}"
    worst = max((float(np.max(np.abs(scene.points[n] - stored[n]))) for n in stored), default=0.0)
    return f"points off the stored ones by {worst:.3g}" if worst > POINT_TOL else None


def similarity_gap(positive: dict[str, np.ndarray], negative: dict[str, np.ndarray]) -> float:
    """How far ``negative`` is from ``positive`` after the best similarity alignment of their
    common points (rotation, uniform scale, translation; reflections included; least squares,
    as Umeyama/Procrustes): the largest remaining distance, as a share of the positive's
    size. ``inf`` with fewer than two common points."""
    names = [n for n in positive if n in negative]
    if len(names) < 2:
        return math.inf
    y = np.array([complex(*positive[n]) for n in names])
    x = np.array([complex(*negative[n]) for n in names])
    y0, x0 = y - y.mean(), x - x.mean()
    xy = np.array(list(positive.values()))
    size = max(float(np.hypot(*(xy.max(axis=0) - xy.min(axis=0)))), 1e-12)
    best = math.inf
    for xx in (x0, np.conj(x0)):
        den = float(np.sum(np.abs(xx) ** 2))
        if den <= 1e-24:
            continue
        s = np.vdot(xx, y0) / den
        best = min(best, float(np.max(np.abs(s * xx - y0))))
    return best / size


# --------------------------------------------------------------------------- marks and strokes


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _triple(a: str, b: str, c: str) -> tuple[str, str, str]:
    return min((a, b, c), (c, b, a))


def mark_key(st: Any) -> tuple[Any, ...]:
    """A mark or given in a form that ignores the order of equivalent arguments."""
    a = tuple(st.args)
    if st.kind == "given":
        pts, value = a[:-1], round(number(a[-1]), 9)
        return ("given", st.name, _pair(*pts) if st.name == "length" else _triple(*pts), value)
    if st.name in ("right", "angle"):
        return ("mark", st.name, _triple(*a))
    if st.name == "equal":
        return ("mark", "equal", frozenset(_pair(a[i], a[i + 1]) for i in range(0, len(a) - 1, 2)))
    if st.name == "equalangle":
        return ("mark", "equalangle", frozenset(_triple(*a[i : i + 3]) for i in range(0, len(a) - 2, 3)))
    return (st.kind, st.name, a)


def mark_holds(st: Any, f: Figure, unit: float | None) -> bool:
    """A positive's mark or given is true of figure ``f`` (given lengths in ``unit``)."""
    a = tuple(st.args[:-1] if st.kind == "given" else st.args)
    if any(n not in f.points for n in a):
        return False
    if st.kind == "given":
        if st.name == "length":
            return unit is not None and abs(f.dist(*a) * unit - number(st.args[-1])) <= HOLD_REL * number(
                st.args[-1]
            )
        return abs(vertex_angle(f, *a) - number(st.args[-1])) <= HOLD_DEG
    if st.name == "right":
        return abs(vertex_angle(f, *a) - 90.0) <= HOLD_DEG
    if st.name == "angle":
        t = vertex_angle(f, *a)
        return not math.isnan(t) and 0.0 < t < 180.0
    if st.name == "equal":
        lengths = [f.dist(a[i], a[i + 1]) for i in range(0, len(a) - 1, 2)]
        return max(lengths) - min(lengths) <= HOLD_REL * max(lengths)
    if st.name == "equalangle":
        angles = [vertex_angle(f, *a[i : i + 3]) for i in range(0, len(a) - 2, 3)]
        return max(angles) - min(angles) <= HOLD_DEG
    return False


def dropped_true_marks(pos_program: Any, neg_program: Any, f: Figure, unit: float | None) -> list[str]:
    """The positive's labels (givens) and marks that still hold on the negative figure ``f``
    but that the negative's program no longer has."""
    kept = {mark_key(st) for st in neg_program.statements if st.kind in ("mark", "given")}
    return [
        st.text()
        for st in pos_program.statements
        if st.kind in ("mark", "given") and mark_key(st) not in kept and mark_holds(st, f, unit)
    ]


def dropped_true_strokes(pos_scene: Any, neg_scene: Any, f: Figure) -> list[str]:
    """The positive's drawn lines and circles that still hold on the negative figure ``f``
    (their points, those it still has, still collinear or on a circle about the same centre)
    but that the negative does not draw."""
    out = []
    tol = HOLD_REL * f.size
    for line in pos_scene.lines:
        present = [n for n in line if n in f.points]
        if len(present) < 2:
            continue
        a, b = max(((p, q) for p in present for q in present), key=lambda pq: f.dist(*pq))
        if f.dist(a, b) <= tol or any(off_line(f, p, a, b) > HOLD_REL for p in present):
            continue
        if not _covered(f, a, b, neg_scene.lines):
            out.append("line " + "".join(present))
    for c in pos_scene.circles:
        on = [n for n in c.on if n in f.points and n != c.center_name]
        if c.center_name is not None:
            if c.center_name not in f.points or not on:
                continue
            centre = f.p(c.center_name)
        else:
            if len(on) < 3:
                continue
            centre = _centre(f, *on[:3])
            if centre is None:
                continue
        radii = [float(np.hypot(*(f.p(n) - centre))) for n in on]
        if max(radii) - min(radii) > tol:
            continue
        drawn = any(
            float(np.hypot(*(np.asarray(d.center) - centre))) <= 1e-5 * f.size
            and abs(float(d.radius) - radii[0]) <= 1e-5 * f.size
            for d in neg_scene.circles
        )
        if not drawn:
            out.append(f"circle {'about ' + c.center_name if c.center_name else 'through'} {''.join(on)}")
    return out


def _covered(f: Figure, a: str, b: str, lines: Any) -> bool:
    """The segment ab is drawn by the negative: the segments it draws along line ab (each
    from extreme to extreme of a collinear group) cover it."""
    pa, length = f.p(a), f.dist(a, b)
    axis = (f.p(b) - pa) / length
    spans = []
    for g in lines:
        if len(g) < 2 or any(n not in f.points for n in (g[0], g[-1])):
            continue
        ends = [f.p(g[0]) - pa, f.p(g[-1]) - pa]
        if any(abs(float(axis[0] * e[1] - axis[1] * e[0])) > HOLD_REL * f.size for e in ends):
            continue
        t = sorted(float(np.dot(axis, e)) for e in ends)
        spans.append((t[0], t[1]))
    reach = 0.0
    for lo, hi in sorted(spans):
        if lo > reach + HOLD_REL * f.size:
            break
        reach = max(reach, hi)
    return reach >= length - HOLD_REL * f.size


def _centre(f: Figure, a: str, b: str, c: str) -> np.ndarray | None:
    pa, pb, pc = f.p(a), f.p(b), f.p(c)
    u, w = pb - pa, pc - pa
    den = 2.0 * float(u[0] * w[1] - u[1] * w[0])
    if abs(den) < 1e-12 * f.size**2:
        return None
    uu, ww = float(np.dot(u, u)), float(np.dot(w, w))
    return pa + np.array([(w[1] * uu - u[1] * ww) / den, (u[0] * ww - w[0] * uu) / den])
