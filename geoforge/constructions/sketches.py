"""Numeric sketches: the functions a construction's ``sketch`` calls to place its points.

Every function takes ``rng`` (``numpy.random.Generator``) and then the construction's
arguments in the order the table gives: points as float64 arrays of shape (2,), literals as
strings. It returns either a *locus* for a single new point (:class:`Line`, :class:`Ray` or
:class:`Circle`) or a tuple of new points, one per output. Free shapes are sampled in a box of
side about 2 with well-shaped angles (no angle under about 25°) so textbook figures stay
legible. Raises DegenerateError when the configuration does not allow the construction.

The geometry of each sketch is derived here from the facts the construction declares; the
comments name the derivation where it is not a one-liner.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from geoforge.errors import DegenerateError
from geoforge.exact import angle_radians, parse_value
from geoforge.geometry import (
    Circle,
    Line,
    Point,
    Ray,
    angle_at,
    cross,
    intersect_lc,
    intersect_ll,
    norm,
    reflect_in_line,
    rotate,
)

Locus = Line | Circle
Result = Locus | tuple[Point, ...]
Gen = np.random.Generator

SKETCHES: dict[str, Callable[..., Result]] = {}


def sketch(fn: Callable[..., Result]) -> Callable[..., Result]:
    """Register ``fn`` in :data:`SKETCHES` under its name (a leading underscore is dropped)."""
    SKETCHES[fn.__name__.lstrip("_")] = fn
    return fn


def _unit(v: Point) -> Point:
    n = norm(v)
    if n < 1e-12:
        raise DegenerateError("zero-length direction")
    return v / n


@sketch
def square(rng: Gen, a: Point, b: Point) -> tuple[Point, ...]:
    """Square abxy on the counter-clockwise side of ab."""
    v = rotate(b - a, math.pi / 2)
    return (b + v, a + v)


# --- loci ---------------------------------------------------------------------------------


@sketch
def line(rng: Gen, a: Point, b: Point) -> Line:
    return Line.through(a, b)


@sketch
def opline(rng: Gen, a: Point, b: Point) -> Ray:
    """The ray from a away from b."""
    return Ray(a, _unit(a - b))


@sketch
def tline(rng: Gen, x: Point, a: Point, b: Point) -> Line:
    """Through x, perpendicular to ab."""
    return Line(x, rotate(_unit(b - a), math.pi / 2))


@sketch
def pline(rng: Gen, x: Point, a: Point, b: Point) -> Line:
    """Through x, parallel to ab."""
    return Line(x, _unit(b - a))


@sketch
def bline(rng: Gen, a: Point, b: Point) -> Line:
    """Perpendicular bisector of ab."""
    return Line((a + b) / 2, rotate(_unit(b - a), math.pi / 2))


@sketch
def circle(rng: Gen, o: Point, a: Point, b: Point) -> Circle:
    """Centre o, radius |ab|."""
    r = norm(b - a)
    if r < 1e-9:
        raise DegenerateError("circle of zero radius")
    return Circle(o, r)


@sketch
def dia(rng: Gen, a: Point, b: Point) -> Circle:
    """The circle on diameter ab."""
    return Circle((a + b) / 2, norm(b - a) / 2)


@sketch
def cyclic(rng: Gen, a: Point, b: Point, c: Point) -> Circle:
    return Circle.through3(a, b, c)


def _bisector_dir(a: Point, b: Point, c: Point) -> Point:
    return _unit(_unit(a - b) + _unit(c - b))


@sketch
def bisect(rng: Gen, a: Point, b: Point, c: Point) -> Line:
    """Internal bisector of ∠abc."""
    return Line(b, _bisector_dir(a, b, c))


@sketch
def exbisect(rng: Gen, a: Point, b: Point, c: Point) -> Line:
    """External bisector of ∠abc."""
    return Line(b, rotate(_bisector_dir(a, b, c), math.pi / 2))


@sketch
def amirror(rng: Gen, a: Point, b: Point, c: Point) -> Line:
    """Through b, the mirror image of line ba in line bc."""
    return Line(b, _unit(reflect_in_line(a, Line.through(b, c)) - b))


def _dirangle(a: Point, b: Point) -> float:
    return math.atan2(b[1] - a[1], b[0] - a[0])


@sketch
def aline(rng: Gen, a: Point, b: Point, c: Point, d: Point, e: Point) -> Line:
    """Through a with ∠(ax, ab) = ∠(dc, de) as directed line angles: dir(ax) = dir(ab) −
    dir(de) + dir(dc)."""
    t = _dirangle(a, b) - _dirangle(d, e) + _dirangle(d, c)
    return Line(a, np.array([math.cos(t), math.sin(t)]))


@sketch
def aline0(rng: Gen, a: Point, b: Point, c: Point, d: Point, e: Point, f: Point, g: Point) -> Line:
    """Through g with ∠(ab, cd) = ∠(ef, gx): dir(gx) = dir(ef) + dir(cd) − dir(ab)."""
    t = _dirangle(e, f) + _dirangle(c, d) - _dirangle(a, b)
    return Line(g, np.array([math.cos(t), math.sin(t)]))


def _inscribed_circle(a: Point, b: Point, theta: float) -> Circle:
    """The circle of points x with directed line angle ∠(xa, xb) = θ (mod π): it passes
    through a and b, and its centre lies on ab's bisector at (|ab|/2)·cot θ from the
    midpoint (inscribed angle theorem); the side is fixed by testing one point."""
    s = math.sin(theta)
    if abs(s) < 1e-3:
        raise DegenerateError("inscribed angle of 0° or 180°: the locus is a line")
    m, half = (a + b) / 2, norm(b - a) / 2
    n = rotate(_unit(b - a), math.pi / 2)
    for sign in (1.0, -1.0):
        o = m + sign * n * half * math.cos(theta) / s
        r = norm(a - o)
        x = o + r * _unit(o - m if norm(o - m) > 1e-9 * r else n)
        got = (_dirangle(x, b) - _dirangle(x, a)) % math.pi
        if min(abs(got - theta % math.pi), math.pi - abs(got - theta % math.pi)) < 1e-6:
            return Circle(o, r)
    raise DegenerateError("no inscribed-angle circle")


@sketch
def aline2(rng: Gen, a: Point, b: Point, c: Point, d: Point, e: Point) -> Circle:
    """x with ∠(xa, xb) = ∠(dc, de)."""
    return _inscribed_circle(a, b, _dirangle(d, e) - _dirangle(d, c))


@sketch
def eqangle3(rng: Gen, a: Point, b: Point, d: Point, e: Point, f: Point) -> Circle:
    """x with ∠(xa, xb) = ∠(de, df)."""
    return _inscribed_circle(a, b, _dirangle(d, f) - _dirangle(d, e))


@sketch
def s_angle(rng: Gen, a: Point, b: Point, y: str) -> Ray:
    """The ray from b at angle y (degrees, counter-clockwise) from ray ba, so ∠abx = |y|."""
    return Ray(b, rotate(_unit(a - b), angle_radians(y)))


@sketch
def aconst(rng: Gen, a: Point, b: Point, c: Point, r: str) -> Ray:
    """The ray from c at angle r (counter-clockwise) from the direction a→b."""
    return Ray(c, rotate(_unit(b - a), angle_radians(r)))


def _ratio(token: str) -> float:
    value = float(parse_value(token))
    if value <= 0:
        raise DegenerateError(f"ratio {token} is not positive")
    return value


@sketch
def rconst(rng: Gen, a: Point, b: Point, c: Point, r: str) -> Circle:
    """x with |ab| / |cx| = r: centre c, radius |ab| / r."""
    return Circle(c, norm(b - a) / _ratio(r))


def _apollonius(a: Point, b: Point, r: float) -> Locus:
    """Points x with |xa| / |xb| = r: the perpendicular bisector for r = 1, else the circle
    on the diameter joining the internal and external division points of ab in ratio r."""
    if abs(r - 1) < 1e-9:
        return bline(None, a, b)  # type: ignore[arg-type]
    p = (a + r * b) / (1 + r)
    q = (a - r * b) / (1 - r)
    return Circle((p + q) / 2, norm(q - p) / 2)


@sketch
def rconst2(rng: Gen, a: Point, b: Point, r: str) -> Locus:
    return _apollonius(a, b, _ratio(r))


@sketch
def lconst(rng: Gen, a: Point, v: str) -> Circle:
    return Circle(a, _ratio(v))


@sketch
def l2const(rng: Gen, a: Point, v: str) -> Circle:
    """x with |xa|² = v: centre a, radius √v."""
    return Circle(a, math.sqrt(_ratio(v)))


@sketch
def r2const(rng: Gen, a: Point, b: Point, c: Point, r: str) -> Circle:
    """x with (|ab| / |cx|)² = r: centre c, radius |ab| / √r."""
    return Circle(c, norm(b - a) / math.sqrt(_ratio(r)))


@sketch
def eqratio(rng: Gen, a: Point, b: Point, c: Point, d: Point, e: Point, f: Point, g: Point) -> Circle:
    """x with |ab|/|cd| = |ef|/|gx|: centre g, radius |ef|·|cd|/|ab|."""
    return Circle(g, norm(f - e) * norm(d - c) / max(norm(b - a), 1e-12))


@sketch
def eqratio6(rng: Gen, a: Point, c: Point, e: Point, f: Point, g: Point, h: Point) -> Locus:
    """x with |ax|/|cx| = |ef|/|gh|."""
    return _apollonius(a, c, norm(f - e) / max(norm(h - g), 1e-12))


@sketch
def eqangle2(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    """x with ∠(ab, ax) = ∠(cx, cb): for a random θ, x is where the line through a at
    dir(ab) + θ meets the line through c at dir(cb) − θ."""
    for _ in range(100):
        t = rng.uniform(-1.2, 1.2)
        if abs(t) < 0.15:
            continue
        la = Line(a, rotate(_unit(b - a), t))
        lc = Line(c, rotate(_unit(b - c), -t))
        try:
            return (intersect_ll(la, lc),)
        except DegenerateError:
            continue
    raise DegenerateError("eqangle2: no crossing found")


# --- points determined by their inputs -----------------------------------------------------


@sketch
def midp(rng: Gen, a: Point, b: Point) -> tuple[Point, ...]:
    return ((a + b) / 2,)


@sketch
def pmirror(rng: Gen, a: Point, b: Point) -> tuple[Point, ...]:
    """The mirror of a through b."""
    return (2 * b - a,)


@sketch
def rotatep90(rng: Gen, a: Point, b: Point) -> tuple[Point, ...]:
    """b rotated +90° about a."""
    return (a + rotate(b - a, math.pi / 2),)


@sketch
def rotaten90(rng: Gen, a: Point, b: Point) -> tuple[Point, ...]:
    """b rotated −90° about a."""
    return (a + rotate(b - a, -math.pi / 2),)


@sketch
def reflect(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    """The mirror of a in line bc."""
    return (reflect_in_line(a, Line.through(b, c)),)


@sketch
def shift(rng: Gen, b: Point, c: Point, d: Point) -> tuple[Point, ...]:
    """x = b + c − d, so |xb| = |cd| and |xc| = |bd|."""
    return (b + c - d,)


@sketch
def parallelogram(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    """x = a + c − b completes the parallelogram abcx."""
    return (a + c - b,)


@sketch
def between_bound(rng: Gen, a: Point, b: Point) -> tuple[Point, ...]:
    """A point strictly inside segment ab, a fifth of |ab| or more from either end."""
    return (a + rng.uniform(0.2, 0.8) * (b - a),)


@sketch
def iso_trapezoid2(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    """x = c mirrored in the perpendicular bisector of ab, so |xb| = |ac| and |xa| = |bc|
    (Newclid's ``iso_trapezoid2``)."""
    return (2 * bline(rng, a, b).project(c) - c,)


def _complex(p: Point) -> complex:
    return complex(float(p[0]), float(p[1]))


def _point(z: complex) -> Point:
    return np.array([z.real, z.imag])


@sketch
def simtri(rng: Gen, a: Point, b: Point, c: Point, p: Point, q: Point) -> tuple[Point, ...]:
    """r making pqr directly similar to abc: the spiral similarity a → p, b → q applied to c,
    r = p + (c − a)·(q − p)/(b − a) in complex numbers."""
    za, zb, zp = _complex(a), _complex(b), _complex(p)
    return (_point(zp + (_complex(c) - za) * (_complex(q) - zp) / (zb - za)),)


@sketch
def simtrir(rng: Gen, a: Point, b: Point, c: Point, p: Point, q: Point) -> tuple[Point, ...]:
    """r making pqr similar to abc with the opposite orientation: r = p + conj((c − a)/(b − a))
    ·(q − p)."""
    za, zp = _complex(a), _complex(p)
    return (_point(zp + ((_complex(c) - za) / (_complex(b) - za)).conjugate() * (_complex(q) - zp)),)


@sketch
def contri(rng: Gen, a: Point, b: Point, c: Point, p: Point) -> tuple[Point, ...]:
    """q, r making pqr a copy of abc turned by a random angle about p (same orientation)."""
    t = rng.uniform(0, 2 * math.pi)
    return (p + rotate(b - a, t), p + rotate(c - a, t))


@sketch
def contrir(rng: Gen, a: Point, b: Point, c: Point, p: Point) -> tuple[Point, ...]:
    """q, r making pqr a mirrored copy of abc: the turned copy of :func:`contri` with r
    mirrored in line pq."""
    q, r = contri(rng, a, b, c, p)
    return (q, reflect_in_line(r, Line.through(p, q)))  # type: ignore[arg-type]


@sketch
def lc_other(rng: Gen, a: Point, o: Point, b: Point) -> tuple[Point, ...]:
    """The second point where line ba meets the circle about o through b."""
    return (2 * Line.through(b, a).project(o) - b,)


@sketch
def cc_other(rng: Gen, o: Point, w: Point, a: Point) -> tuple[Point, ...]:
    """The second point where the circles about o and w through a meet: a mirrored in ow."""
    return (reflect_in_line(a, Line.through(o, w)),)


def _incentre(a: Point, b: Point, c: Point) -> Point:
    la, lb, lc = norm(b - c), norm(c - a), norm(a - b)
    return (la * a + lb * b + lc * c) / (la + lb + lc)


def _excentre(a: Point, b: Point, c: Point) -> Point:
    """The excentre opposite a."""
    la, lb, lc = norm(b - c), norm(c - a), norm(a - b)
    return (-la * a + lb * b + lc * c) / (-la + lb + lc)


def _feet(i: Point, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    return tuple(Line.through(p, q).project(i) for p, q in ((b, c), (c, a), (a, b)))


@sketch
def incenter(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    return (_incentre(a, b, c),)


@sketch
def excenter(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    return (_excentre(a, b, c),)


@sketch
def incenter2(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    """Touch points on bc, ca, ab, then the incentre."""
    i = _incentre(a, b, c)
    return (*_feet(i, a, b, c), i)


@sketch
def excenter2(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    """Touch points on lines bc, ca, ab of the excircle opposite a, then its centre."""
    i = _excentre(a, b, c)
    return (*_feet(i, a, b, c), i)


@sketch
def centroid(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    """Midpoints of bc, ca, ab, then the centroid."""
    return ((b + c) / 2, (c + a) / 2, (a + b) / 2, (a + b + c) / 3)


@sketch
def ninepoints(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    """Midpoints of bc, ca, ab, then the nine-point centre (their circumcentre)."""
    x, y, z = (b + c) / 2, (c + a) / 2, (a + b) / 2
    return (x, y, z, Circle.through3(x, y, z).center)


@sketch
def trisect(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    """The points of segment ac on the trisectors of ∠abc, the one nearer a first."""
    theta = math.atan2(cross(a - b, c - b), float(np.dot(a - b, c - b)))
    ac = Line.through(a, c)
    u = a - b
    return tuple(intersect_ll(ac, Line(b, _unit(rotate(u, theta * k / 3)))) for k in (1, 2))


@sketch
def trisegment(rng: Gen, a: Point, b: Point) -> tuple[Point, ...]:
    return (a + (b - a) / 3, a + 2 * (b - a) / 3)


@sketch
def tangent(rng: Gen, a: Point, o: Point, b: Point) -> tuple[Point, ...]:
    """The touch points of the two tangents from a to the circle about o through b: at angle
    ±acos(r/|ao|) from oa, seen from o."""
    r, d = norm(b - o), norm(a - o)
    if d <= r * (1 + 1e-6):
        raise DegenerateError("point is not outside the circle: no tangent")
    phi = math.acos(r / d)
    u = _unit(a - o) * r
    return (o + rotate(u, phi), o + rotate(u, -phi))


def _external_tangents(o: Point, r1: float, w: Point, r2: float) -> list[tuple[Point, Point]]:
    """Touch points of the two external common tangents. A tangent line {p : n·p = k} with
    unit normal n has n·o − k = r1 and n·w − k = r2, so n·(w − o) = r2 − r1; the touch points
    are o − r1·n and w − r2·n."""
    v = w - o
    d = norm(v)
    if abs(r2 - r1) >= d * (1 - 1e-6):
        raise DegenerateError("one circle inside the other: no common tangent")
    base = math.acos((r2 - r1) / d)
    out = []
    for sign in (1.0, -1.0):
        n = rotate(v / d, sign * base)
        out.append((o - r1 * n, w - r2 * n))
    return out


def _internal_tangents(o: Point, r1: float, w: Point, r2: float) -> list[tuple[Point, Point]]:
    """Touch points of the two internal common tangents: with the circles on opposite sides of
    the line {p : n·p = k}, n·o − k = r1 and n·w − k = −r2, so n·(w − o) = −(r1 + r2); the
    touch points are o − r1·n and w + r2·n (both lines pass through the internal centre of
    similitude, as in Newclid's ``sketch_cc_itangent``)."""
    v = w - o
    d = norm(v)
    if r1 + r2 >= d * (1 - 1e-6):
        raise DegenerateError("the circles meet or touch: no internal common tangent")
    base = math.acos(-(r1 + r2) / d)
    out = []
    for sign in (1.0, -1.0):
        n = rotate(v / d, sign * base)
        out.append((o - r1 * n, w + r2 * n))
    return out


@sketch
def cc_itangent(rng: Gen, o: Point, a: Point, w: Point, b: Point) -> tuple[Point, ...]:
    (x, y), (z, i) = _internal_tangents(o, norm(a - o), w, norm(b - w))
    return (x, y, z, i)


@sketch
def cc_tangent0(rng: Gen, o: Point, a: Point, w: Point, b: Point) -> tuple[Point, ...]:
    return _external_tangents(o, norm(a - o), w, norm(b - w))[0]


@sketch
def cc_tangent(rng: Gen, o: Point, a: Point, w: Point, b: Point) -> tuple[Point, ...]:
    (x, y), (z, i) = _external_tangents(o, norm(a - o), w, norm(b - w))
    return (x, y, z, i)


@sketch
def two_lines_one_circle(rng: Gen, a: Point, b: Point, c: Point, o: Point) -> tuple[Point, ...]:
    """The circle inside ∠acb tangent to lines ca, cb and internally to the circle about o
    through a. Its centre is i = c + t·u on the bisector u, radius t·sin(α/2); internal
    tangency |io| = R − r gives t²(1 − s²) + 2t(u·w + R·s) + |w|² − R² = 0 with w = c − o,
    s = sin(α/2). Returns the touch points on ca, cb, the circle, then the centre."""
    u = _bisector_dir(a, c, b)
    s = math.sin(angle_at(a, c, b) / 2)
    big_r = norm(a - o)
    w = c - o
    qa, qb, qc = 1 - s * s, 2 * (float(np.dot(u, w)) + big_r * s), float(np.dot(w, w)) - big_r**2
    disc = qb * qb - 4 * qa * qc
    if disc < 0:
        raise DegenerateError("no circle tangent to both lines and the circle")
    roots = sorted(
        t
        for t in ((-qb - math.sqrt(disc)) / (2 * qa), (-qb + math.sqrt(disc)) / (2 * qa))
        if t > 1e-9 and big_r - t * s > 1e-9
    )
    if not roots:
        raise DegenerateError("no circle tangent to both lines and the circle")
    i = c + roots[0] * u
    z = o + big_r * _unit(i - o)
    return (Line.through(a, c).project(i), Line.through(b, c).project(i), z, i)


@sketch
def e5128(rng: Gen, a: Point, b: Point, c: Point, d: Point) -> tuple[Point, ...]:
    """y is the midpoint of ab; x is the second point where line dy meets the circle about c
    through b (and d). Returns x, y."""
    y = (a + b) / 2
    hits = intersect_lc(Line.through(d, y), Circle(c, norm(b - c)))
    x = max(hits, key=lambda p: norm(p - d))
    if norm(x - d) < 1e-9:
        raise DegenerateError("line dy is tangent to the circle")
    return (x, y)


@sketch
def three_peq(rng: Gen, a: Point, b: Point, c: Point) -> tuple[Point, ...]:
    """z on line bc at random; x on ab and y on ac with z the midpoint of xy, from
    s·(b − a) + t·(c − a) = 2(z − a). Returns x, y, z."""
    z = b + rng.uniform(-0.6, 1.6) * (c - b)
    m = np.column_stack([b - a, c - a])
    if abs(np.linalg.det(m)) < 1e-9:
        raise DegenerateError("a, b, c are collinear")
    s, t = np.linalg.solve(m, 2 * (z - a))
    return (a + s * (b - a), a + t * (c - a), z)


from geoforge.constructions import shapes as _shapes  # noqa: E402,F401  (registers free shapes)
