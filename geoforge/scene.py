"""Scene: a realised program, with float64 coordinates and what to draw.

A Scene is produced by :func:`geoforge.realise.realise`. Coordinates are in diagram units
(free shapes are sampled with a size of about 2); :attr:`Scene.scale` is the diagram's size,
used to make fact residuals and degeneracy checks relative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from geoforge.program import Program


@dataclass(frozen=True)
class SceneCircle:
    """A circle to draw: float64 ``center`` of shape (2,), ``radius`` in diagram units,
    ``center_name`` if a named point sits at its centre, and the named points on it."""

    center: np.ndarray
    radius: float
    center_name: str | None = None
    on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scene:
    """A realised :class:`Program`.

    ``points`` maps each point name to a float64 array of shape (2,). ``lines`` are groups of
    collinear named points to draw as one segment from extreme to extreme; ``circles`` the
    circles to draw. ``seed`` and ``tries`` (whole-program attempts used) record how it was
    made; the same program and seed always give the same Scene.
    """

    program: Program
    points: dict[str, np.ndarray]
    seed: int
    tries: int = 1
    lines: tuple[tuple[str, ...], ...] = ()
    circles: tuple[SceneCircle, ...] = ()
    meta: dict[str, object] = field(default_factory=dict, compare=False)
    fixed_unit: float | None = None

    @cached_property
    def scale(self) -> float:
        """The diagram's size: the diagonal of the points' bounding box (at least 1e-9)."""
        xy = self.coords
        if len(xy) < 2:
            return 1.0
        return max(float(np.hypot(*(xy.max(axis=0) - xy.min(axis=0)))), 1e-9)

    @cached_property
    def unit(self) -> float:
        """Factor from diagram units to the units of the givens: the first ``given length``
        fixes it (value / realised length); 1.0 when there is none. ``fixed_unit`` overrides
        it: a hard negative is judged in its positive's units."""
        from geoforge.exact import parse_value

        if self.fixed_unit is not None:
            return self.fixed_unit
        for st in self.program.statements:
            if st.kind == "given" and st.name == "length":
                a, b, v = st.args
                d = float(np.hypot(*(self.points[a] - self.points[b])))
                return float(parse_value(v)) / d if d > 0 else math.inf
        return 1.0

    @cached_property
    def coords(self) -> np.ndarray:
        """All point coordinates as a float64 array of shape (N, 2), in :attr:`names` order."""
        return np.array([self.points[n] for n in self.names], dtype=np.float64).reshape(-1, 2)

    @property
    def names(self) -> tuple[str, ...]:
        """Point names in order of introduction."""
        return tuple(self.points)


def stroke_share(scene: Scene, points: set[str] | frozenset[str]) -> float:
    """The share of ``scene``'s drawn stroke length that moves with ``points``: its lines (each
    from extreme to extreme point) that hold one of them, and its circles about one of them or
    through one, as a share of the length of all its lines and circles (diagram units: a
    circle counts its circumference). 0.0 for a scene that draws nothing.

    A perturbation that moves ``points`` (with :func:`geoforge.edit.dependents`, the points
    built on them) moves about this share of the figure's ink; when it is most of it, the
    verifier rejects the candidate as changing more than one detail (``moves most of the
    figure``), or it breaks no stated claim, since everything built on the moved points
    follows them (``benchmarks/stroke_share.py``). Raises ValueError for a scene with a point
    or radius that is not finite."""
    if not np.all(np.isfinite(scene.coords)):
        raise ValueError("stroke_share of a scene with non-finite coordinates")
    moved = total = 0.0
    for group in scene.lines:
        length = float(np.hypot(*(scene.points[group[-1]] - scene.points[group[0]])))
        total += length
        if not points.isdisjoint(group):
            moved += length
    for c in scene.circles:
        length = 2 * math.pi * c.radius
        total += length
        if c.center_name in points or not points.isdisjoint(c.on):
            moved += length
    return moved / total if total > 0 else 0.0


def _merge_groups(groups: list[set[str]]) -> list[set[str]]:
    """Merge collinear groups that share two or more points: each group in turn absorbs the
    first merged group that shares two points with it, again while it grows, then goes last."""
    merged: list[set[str]] = []
    for g in groups:
        g = set(g)
        while True:
            if len(g) == 2:  # most groups are one segment: two membership tests, no new set
                a, b = g
                hit = next((i for i, m in enumerate(merged) if a in m and b in m), -1)
            else:
                hit = next((i for i, m in enumerate(merged) if len(m & g) >= 2), -1)
            if hit < 0:
                break
            g |= merged.pop(hit)
        merged.append(g)
    return merged


def drawing(
    program: Program, points: dict[str, np.ndarray]
) -> tuple[tuple[tuple[str, ...], ...], tuple[SceneCircle, ...]]:
    """What to draw for a program: collinear groups (as lines) and circles.

    Derived from the facts each construction declares and from the goals: ``coll``/``midp``
    give a line through their points; ``perp``, ``para`` and ``eqangle`` give the segments
    they mention; ``cyclic`` and ``circle`` give circles; free polygons (``triangle``,
    ``quadrangle``, ...) give their sides; a construction's ``draws`` add the circles a
    textbook figure shows (the circle of ``on_circle``, ``tangent``, ...), but not circles
    that only fix a distance (``lconst``, ``eqdistance``). ``draw`` statements add to this.
    Each group of points is ordered along its line.
    """
    from geoforge.constructions import REGISTRY
    from geoforge.facts import Fact

    groups: list[set[str]] = []
    circle_sets: list[tuple[str | None, tuple[str, ...]]] = []
    facts: list[Fact] = list(program.goals)
    for clause in program.clauses:
        for call in clause.calls:
            c = REGISTRY[call.name]
            binding = dict(zip(c.params, call.args))
            facts.extend(Fact(f.name, tuple(binding.get(a, a) for a in f.args)) for f in c.facts)
            for kind, args in c.draws:
                bound = tuple(binding[a] for a in args)
                circle_sets.append((bound[0], bound[1:]) if kind == "circle" else (None, bound))
            if not c.inputs and len(c.outputs) >= 2:
                outs = [binding[o] for o in c.outputs]
                pairs = zip(outs, outs[1:] + outs[:1]) if len(outs) >= 3 else [tuple(outs)]
                groups.extend({a, b} for a, b in pairs)
    for f in facts:
        if f.name in ("coll", "midp"):
            groups.append(set(f.args))
        elif f.name in ("perp", "para", "eqangle"):
            groups.extend({f.args[i], f.args[i + 1]} for i in range(0, len(f.args), 2))
        elif f.name == "s_angle":
            groups.extend(({f.args[0], f.args[1]}, {f.args[1], f.args[2]}))
        elif f.name == "aconst":
            groups.extend(({f.args[0], f.args[1]}, {f.args[2], f.args[3]}))
        elif f.name == "cyclic":
            circle_sets.append((None, f.args))
        elif f.name == "circle":
            circle_sets.append((f.args[0], f.args[1:]))
    for st in program.statements:
        if st.kind in ("mark", "given"):
            groups.extend(_marked_segments(st.name, st.points))
            continue
        if st.name in ("segment", "line", "ray"):
            groups.append(set(st.args))
        elif st.name == "polygon":
            groups.extend({a, b} for a, b in zip(st.args, st.args[1:] + st.args[:1]))
        elif st.name == "circle":
            circle_sets.append((st.args[0], st.args[1:]))
        elif st.name == "circumcircle":
            circle_sets.append((None, st.args))
    groups = [g for g in _merge_groups([g for g in groups if len(g) >= 2]) if all(p in points for p in g)]
    lines = tuple(_ordered(g, points) for g in groups)
    circles = [_circle_from(center, on, points) for center, on in circle_sets]
    return lines, _dedupe(circles, points)


def _marked_segments(name: str, pts: tuple[str, ...]) -> list[set[str]]:
    """The segments a mark or a given refers to, so the figure shows what it marks: both
    sides of an angle (``right``, ``angle``, ``equalangle``), each marked segment
    (``equal``, ``length``)."""
    if name in ("right", "angle"):
        return [{pts[0], pts[1]}, {pts[1], pts[2]}]
    if name == "equalangle":
        return [s for i in range(0, len(pts), 3) for s in ({pts[i], pts[i + 1]}, {pts[i + 1], pts[i + 2]})]
    return [{pts[i], pts[i + 1]} for i in range(0, len(pts) - 1, 2)]


def _ordered(group: set[str], points: dict[str, np.ndarray]) -> tuple[str, ...]:
    """The names of a collinear ``group`` in order along its line, so that the first and the
    last are its ends: by x where the group is at least as wide as it is tall, else by y.
    (Projecting the points on the extent ``(w, h)`` does the same for a rising line, but puts
    every point of a line falling at 45° at one value: the names then decided the order, and a
    midpoint ``a`` of ``bc`` coming first left only ``ac`` drawn.)"""
    xy = {n: (float(points[n][0]), float(points[n][1])) for n in group}
    xs, ys = [p[0] for p in xy.values()], [p[1] for p in xy.values()]
    axis = 0 if max(xs) - min(xs) >= max(ys) - min(ys) else 1
    return tuple(sorted(group, key=lambda n: (xy[n][axis], n)))


def _circle_from(center: str | None, on: tuple[str, ...], points: dict[str, np.ndarray]) -> SceneCircle:
    if center is not None:
        c = points[center]
        return SceneCircle(c, float(np.hypot(*(points[on[0]] - c))), center, on)
    a, b, c = (points[n] for n in on[:3])
    ba, ca = b - a, c - a
    d = 2 * (ba[0] * ca[1] - ba[1] * ca[0])
    ux = (ca[1] * ba.dot(ba) - ba[1] * ca.dot(ca)) / d
    uy = (ba[0] * ca.dot(ca) - ca[0] * ba.dot(ba)) / d
    cen = a + np.array([ux, uy])
    return SceneCircle(cen, float(np.hypot(*(a - cen))), None, on)


def _dedupe(circles: list[SceneCircle], points: dict[str, np.ndarray]) -> tuple[SceneCircle, ...]:
    """Keep one circle per (centre, radius); name its centre and collect the points on it."""
    if not circles:
        return ()
    names = list(points)
    xy = np.array(list(points.values())).reshape(-1, 2)
    span = float(np.hypot(*(xy.max(axis=0) - xy.min(axis=0)))) if len(xy) > 1 else 1.0
    tol = 1e-7 * max(span, 1e-9)
    out: list[SceneCircle] = []
    for c in circles:
        if not np.all(np.isfinite(c.center)) or not math.isfinite(c.radius):
            continue
        if any(np.hypot(*(c.center - o.center)) < tol and abs(c.radius - o.radius) < tol for o in out):
            continue
        gaps = np.hypot(xy[:, 0] - c.center[0], xy[:, 1] - c.center[1])  # each point to the centre
        center = c.center_name or next((n for n, d in zip(names, gaps) if d < tol), None)
        on = tuple(n for n, d in zip(names, np.abs(gaps - c.radius)) if d < tol)
        out.append(SceneCircle(c.center, c.radius, center, on))
    return tuple(out)
