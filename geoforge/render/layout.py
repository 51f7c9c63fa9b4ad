"""Pixel-space layout of a Scene: the fitted view, what to draw, and where each label goes.

Pure numpy. Pixels have their origin at the top-left corner with y down. The view is fitted
so that points and circles keep a margin wide enough for a label on the outer side of any
point; labels are then placed by :mod:`geoforge.render.place`. If a label still collides or
leaves the frame, the margin grows and the layout is redone (at most :data:`ATTEMPTS` times).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from geoforge.render.glyphs import text_extent
from geoforge.render.marks import Mark, marks
from geoforge.render.place import (
    EDGE,
    PAD,
    RADII,
    Obstacles,
    Request,
    angle_request,
    length_request,
    place,
    point_requests,
)
from geoforge.scene import Scene

#: Label font size as a fraction of the image size.
FONT_SCALE = 1 / 28
#: Stroke width and point radius as fractions of the font size.
STROKE = 0.085
POINT = 0.17
#: Smallest image size, in pixels, that leaves room for labels.
MIN_SIZE = 64
#: Share of the room inside the label margin that a fitted figure fills: the rest lets a hard
#: negative that moves a point outwards keep its positive's framing (:func:`layout`'s ``view``).
FILL = 0.9
#: Layout attempts; each one after the first widens the margin by one font size.
ATTEMPTS = 3


@dataclass(frozen=True)
class Label:
    """A text label: ``kind`` is ``point``, ``length`` or ``angle``; ``anchor`` (2,) the point,
    segment midpoint or vertex it belongs to; ``box`` (4,) its ink box ``x0, y0, x1, y1``;
    ``origin`` (2,) where the text starts on its baseline; ``clash`` is True when no place free
    of collisions was found. All float64 pixels."""

    text: str
    kind: str
    anchor: np.ndarray
    box: np.ndarray
    origin: np.ndarray
    clash: bool


@dataclass(frozen=True)
class Layout:
    """Everything to draw, in float64 pixels (origin top-left, y down) on a ``size``² image.

    ``points`` maps names to (2,) positions; ``segments`` (S, 4) holds ``x0, y0, x1, y1`` for
    each drawn line; ``circles`` (C, 3) holds ``cx, cy, r``; ``marks`` the glyphs; ``labels``
    one per point in name order, then one per ``given``. ``font_px``, ``stroke_px`` and
    ``point_px`` are the font size, line width and point radius; ``scale`` is pixels per
    diagram unit and ``centre`` (2,) the diagram point at the image centre: together they are
    the *view*, which a hard negative reuses to keep its positive's framing.
    """

    size: int
    scale: float
    font_px: float
    stroke_px: float
    point_px: float
    points: dict[str, np.ndarray]
    segments: np.ndarray
    circles: np.ndarray
    marks: tuple[Mark, ...]
    labels: tuple[Label, ...]
    centre: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2))

    @property
    def view(self) -> tuple[float, np.ndarray]:
        """``(scale, centre)``: pixels per diagram unit and the diagram point at the centre."""
        return self.scale, self.centre

    @property
    def boxes(self) -> np.ndarray:
        """All label boxes, float64 (L, 4)."""
        return np.array([lb.box for lb in self.labels], dtype=np.float64).reshape(-1, 4)

    @property
    def clashes(self) -> int:
        """Number of labels that could not be placed free of collisions inside the frame."""
        return sum(lb.clash for lb in self.labels)

    @property
    def mark_segments(self) -> np.ndarray:
        """Every straight piece of every mark glyph, float64 (M, 4)."""
        parts = [np.hstack([p[:-1], p[1:]]) for m in self.marks for p in m.paths]
        return np.vstack(parts) if parts else np.zeros((0, 4))


def _givens(scene: Scene) -> list[tuple[str, tuple[str, ...], str]]:
    """``(kind, points, text)`` for each ``given`` statement, the value in textbook form."""
    found = [st for st in scene.program.statements if st.kind == "given"]
    if not found:
        return []
    from geoforge.exact import format_value, parse_value

    return [
        (st.name, st.points, format_value(parse_value(st.args[-1]), "°" * (st.name == "angle")))
        for st in found
    ]


def _fit(scene: Scene, size: int, margin: float) -> tuple[float, np.ndarray]:
    """Pixels per unit and the diagram point shown at the image centre, so that points and
    circles fill ``size`` less ``margin`` on each side."""
    xy = scene.coords
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    for c in scene.circles:
        lo = np.minimum(lo, c.center - c.radius)
        hi = np.maximum(hi, c.center + c.radius)
    span = float((hi - lo).max())
    room = max(size - 2 * margin, size / 4) * FILL
    return (room / span if span > 0 else 1.0), (lo + hi) / 2


def _attempt(
    scene: Scene,
    size: int,
    font: float,
    margin: float,
    givens: list[tuple[str, tuple[str, ...], str]],
    auto_marks: bool,
    view: tuple[float, np.ndarray] | None = None,
    keep: tuple[Label, ...] = (),
) -> Layout:
    scale, mid = view if view is not None else _fit(scene, size, margin)

    def to_px(xy: np.ndarray) -> np.ndarray:
        return size / 2 + (xy - mid) * np.array([scale, -scale])

    names = scene.names
    xy = to_px(scene.coords)
    px = dict(zip(names, xy))
    segments = np.array([np.hstack([px[g[0]], px[g[-1]]]) for g in scene.lines]).reshape(-1, 4)
    circles = np.array(
        [[*to_px(c.center), c.radius * scale] for c in scene.circles], dtype=np.float64
    ).reshape(-1, 3)
    glyphs = marks(scene, px, font, auto_marks)
    point_px = POINT * font
    layout = Layout(
        size, scale, font, STROKE * font, point_px, px, segments, circles, glyphs, (), np.asarray(mid)
    )
    obstacles = Obstacles(np.vstack([segments, layout.mark_segments]), circles, xy, point_px)
    centre = xy.mean(axis=0)
    # The labels: each point, then each given's value beside its segment or inside its angle.
    asked = [("point", name, xy[i], i) for i, name in enumerate(names)]
    for kind, pts, text in givens:
        anchor = (px[pts[0]] + px[pts[1]]) / 2 if kind == "length" else px[pts[1]]
        asked.append((kind, text, anchor, -1))

    def build(indices: list[int]) -> list[Request]:
        """The requests of the labels at ``indices`` with all their candidates, in that order."""
        points = [i for i in indices if i < len(names)]
        made = dict(zip(points, point_requests(list(names), xy, centre, font, points)))
        for i in indices:
            if i not in made:
                kind, pts, text = givens[i - len(names)]
                if kind == "length":
                    made[i] = length_request(text, px[pts[0]], px[pts[1]], font)
                else:
                    made[i] = angle_request(text, *(px[p] for p in pts), font)
        return [made[i] for i in indices]

    # A label with a kept box is named only; place() builds its candidates if the box is taken.
    kept = _kept_boxes(asked, keep) or [None] * len(asked)
    built = dict(zip(fresh := [i for i, box in enumerate(kept) if box is None], build(fresh)))
    requests = [
        built[i]
        if i in built
        else Request(text, kind, anchor, text_extent(text, font), _NO_BOXES, _NO_COST, own)
        for i, (kind, text, anchor, own) in enumerate(asked)
    ]
    chosen = place(requests, obstacles, size, font, kept, build)
    labels = tuple(
        Label(
            r.text,
            r.kind,
            r.anchor,
            box,
            np.array([box[0] + PAD - r.extent.x0, box[3] - PAD + r.extent.y0]),
            clash,
        )
        for r, (box, clash) in zip(requests, chosen)
    )
    return dataclasses.replace(layout, labels=labels)


#: A kept label's anchor may have moved this far (px) and the label still stays where it was.
KEEP_TOL = 0.5


#: The candidates of a request with a kept box, until :func:`~geoforge.render.place.place` needs them.
_NO_BOXES = np.zeros((0, 4))
_NO_COST = np.zeros(0)


def _kept_boxes(
    asked: list[tuple[str, str, np.ndarray, int]], keep: tuple[Label, ...]
) -> list[np.ndarray | None]:
    """For each label ``(kind, text, anchor, own)`` of ``asked``, the box of the label in
    ``keep`` with its kind and text whose anchor is within :data:`KEEP_TOL` px of it (``None``
    when there is none); ``[]`` without ``keep``."""
    if not keep:
        return []
    found = {}
    for lb in keep:
        found.setdefault((lb.kind, lb.text), []).append(lb)
    out: list[np.ndarray | None] = []
    for kind, text, anchor, _ in asked:
        same = found.get((kind, text), ())
        near = [lb.box for lb in same if np.hypot(*(lb.anchor - anchor)) <= KEEP_TOL]
        out.append(near[0] if near else None)
    return out


def fits(scene: Scene, size: int, view: tuple[float, np.ndarray]) -> bool:
    """True if ``scene`` drawn on a ``size``² image with ``view`` (another layout's
    :attr:`Layout.view`) keeps every point one font size from the frame and every circle inside
    it: the test :func:`layout` applies before it places labels with that view. Pure numpy,
    microseconds; raises nothing for finite coordinates."""
    scale, mid = view
    font = size * FONT_SCALE
    xy = size / 2 + (scene.coords - mid) * np.array([scale, -scale])
    if xy.size and (xy.min() < font or xy.max() > size - font):
        return False
    edge = STROKE * font
    for c in scene.circles:
        centre = size / 2 + (c.center - mid) * np.array([scale, -scale])
        r = c.radius * scale
        if np.any(centre - r < edge) or np.any(centre + r > size - edge):
            return False
    return True


def _margin(scene: Scene, font: float) -> float:
    """The first attempt's margin in pixels: room for the widest point label beside a point."""
    extents = [text_extent(n, font) for n in scene.names]
    widest = max(max(e.x1 - e.x0, e.y1 - e.y0) for e in extents)
    return (EDGE + RADII[0]) * font + widest + 2 * PAD


def fitted_scale(scene: Scene, size: int = 448) -> float:
    """Pixels per diagram unit of :func:`layout`'s first attempt at ``scene`` without a view:
    the largest any of its attempts uses, since each later one widens the margin. Lets a caller
    judge distances in pixels before paying for label placement."""
    return _fit(scene, size, _margin(scene, size * FONT_SCALE))[0]


def layout(
    scene: Scene,
    size: int = 448,
    *,
    auto_marks: bool = True,
    view: tuple[float, np.ndarray] | None = None,
    refit: bool = True,
    keep: tuple[Label, ...] = (),
) -> Layout:
    """Lay out ``scene`` on a ``size`` × ``size`` pixel image; deterministic.

    Lines are drawn from extreme to extreme point of each group in ``scene.lines``; marks come
    from the program's ``mark`` and ``given`` statements and, with ``auto_marks``, from the
    ``perp`` facts of its constructions. Label font size is ``size`` / 28 px. Labels avoid each
    other, segments, circle strokes, points and marks by a clearance, and stay inside the frame;
    a label for which that was impossible has ``clash=True``.

    ``view`` (another layout's :attr:`Layout.view`) keeps that framing when every point keeps
    one font size from the frame, every circle stays inside and every label finds a place
    inside the frame free of collisions; otherwise the view is fitted as usual (compare the
    result's ``view`` to tell). With ``refit=False`` the layout keeps ``view`` whatever its
    label clashes (the verifier judges a hard negative in its positive's framing only, and
    skips the refitted attempts it would reject anyway). ``keep`` (another layout's
    :attr:`Layout.labels`, with ``view``): a label whose anchor has not moved keeps that box
    where it is still free (:func:`geoforge.render.place.place`), so a hard negative's labels
    stay where its positive shows them.
    Raises ValueError if ``size`` < 64, a coordinate is not finite, or ``refit`` is False and
    ``scene`` does not fit ``view`` (:func:`fits`) or no ``view`` is given.
    """
    if size < MIN_SIZE:
        raise ValueError(f"image size {size} px is too small: use at least {MIN_SIZE}")
    if not np.all(np.isfinite(scene.coords)):
        raise ValueError("scene has non-finite coordinates")
    font = size * FONT_SCALE
    givens = _givens(scene)
    fitted = view is not None and fits(scene, size, view)
    if not refit and not fitted:
        raise ValueError("refit=False needs a view that the scene fits")
    if fitted:
        kept = _attempt(scene, size, font, 0.0, givens, auto_marks, view, keep)  # no margin: the view is set
        if kept.clashes == 0 or not refit:
            return kept
    margin = _margin(scene, font)
    best = _attempt(scene, size, font, margin, givens, auto_marks)
    for k in range(1, ATTEMPTS):
        if best.clashes == 0:
            break
        out = _attempt(scene, size, font, margin + k * font, givens, auto_marks)
        if out.clashes < best.clashes:
            best = out
    return best
