"""Label placement: candidate boxes around each anchor, scored and chosen greedily.

All coordinates are float64 pixels (origin top-left, y down). A label's candidates are boxes
at increasing distances from its anchor in several directions, each with a soft cost
(distance, direction). Placing a label adds, for each candidate, :data:`HIT` per segment,
circle stroke, point, mark piece or already-placed label it touches (within a clearance), a
smaller cost for things that are merely close, and a prohibitive cost for leaving the frame;
the cheapest candidate wins. Labels go in a deterministic order: fewest collision-free
candidates first, then by request order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from geoforge.render.collide import box_gaps, boxes_hit_circles, disc_gaps, inflate, segment_gaps
from geoforge.render.glyphs import TextExtent, text_extent

#: Clearance kept between a label's ink box and anything else, as a fraction of the font size.
CLEAR = 0.14
#: Things within this fraction of the font size of a label cost :data:`NEAR` each.
NEAR_REACH = 0.3
NEAR = 0.5
#: Gap between the frame and any label, as a fraction of the font size.
EDGE = 0.3
#: Distances tried from a label's anchor (fractions of the font size) and what each costs.
RADII = np.array([0.45, 0.75, 1.1, 1.6, 2.2, 3.0, 4.0])
RADIUS_COST = np.array([0.0, 0.6, 1.4, 3.0, 5.0, 8.0, 12.0])
#: Cost of one collision; larger than any sum of soft costs.
HIT = 1000.0
#: Cost of a point label whose box is nearer another point than its own.
AMBIGUOUS = 4.0
#: Cost of leaving the frame; larger than any number of collisions.
OUTSIDE = 1e6
#: Padding around the ink, in pixels, for hinting and antialiasing.
PAD = 1.0

_ANGLES = np.arange(16) * (2 * math.pi / 16)
_DIRS = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1)


@dataclass(frozen=True)
class Obstacles:
    """What labels must avoid: ``segments`` (S, 4) (lines and mark pieces), ``circles`` (C, 3)
    ``cx, cy, r``, ``points`` (N, 2) drawn as discs of ``point_px``."""

    segments: np.ndarray
    circles: np.ndarray
    points: np.ndarray
    point_px: float

    def hits(
        self, boxes: np.ndarray, grows: tuple[float, ...], own: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each clearance in ``grows`` (px): how many obstacles each box (K, 4), grown by
        it, touches — the count (K,) and the count without the box's own point (``own`` (K,)
        indexes ``points``, -1 for none). Gaps to segments and points are computed once for
        all clearances."""
        gaps = segment_gaps(boxes, self.segments)
        gx, gy = disc_gaps(boxes, self.points)
        rows = np.flatnonzero(own >= 0)
        out = []
        for grow in grows:
            discs = np.hypot(np.maximum(gx - grow, 0.0), np.maximum(gy - grow, 0.0)) <= self.point_px
            total = np.count_nonzero(gaps <= grow, axis=1) + np.count_nonzero(discs, axis=1)
            if len(self.circles):
                total += np.count_nonzero(boxes_hit_circles(inflate(boxes, grow), self.circles), axis=1)
            own_hit = np.zeros(len(boxes), dtype=total.dtype)
            own_hit[rows] = discs[rows, own[rows]]
            out.append((total, total - own_hit))
        return out


@dataclass(frozen=True)
class Request:
    """A label to place: candidate boxes (K, 4) with their soft costs (K,); ``own`` is the
    index of the labelled point in :attr:`Obstacles.points` (-1 for a value label)."""

    text: str
    kind: str
    anchor: np.ndarray
    extent: TextExtent
    boxes: np.ndarray
    cost: np.ndarray
    own: int = -1


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.hypot(*v)), 1e-12)


def _candidates(
    anchors: np.ndarray,
    anchor_cost: np.ndarray,
    dirs: np.ndarray,
    dir_cost: np.ndarray,
    gaps: np.ndarray,
    gap_cost: np.ndarray,
    width: float,
    height: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``width`` × ``height`` whose nearest side is ``gap`` from an anchor in direction
    ``dir``, over every (anchor, gap, dir): boxes (K, 4) and summed costs (K,)."""
    support = np.abs(dirs[:, 0]) * width / 2 + np.abs(dirs[:, 1]) * height / 2
    reach = gaps[:, None] + support[None, :]
    centres = anchors[:, None, None, :] + reach[None, :, :, None] * dirs[None, None, :, :]
    cost = anchor_cost[:, None, None] + gap_cost[None, :, None] + dir_cost[None, None, :]
    c = centres.reshape(-1, 2)
    half = np.array([width / 2, height / 2])
    return np.hstack([c - half, c + half]), cost.reshape(-1)


def _size_of(extent: TextExtent) -> tuple[float, float]:
    """Width and height of a label box: the ink plus :data:`PAD` on each side."""
    return extent.x1 - extent.x0 + 2 * PAD, extent.y1 - extent.y0 + 2 * PAD


def point_requests(
    names: list[str], at: np.ndarray, centre: np.ndarray, font: float, which: list[int] | None = None
) -> list[Request]:
    """One request per point ``names[i]`` at ``at[i]`` (``at`` (P, 2) float64 px), or per index
    ``i`` of ``which`` (in that order), all built in one batch: boxes at :data:`RADII` from the
    point in 16 directions, where directions pointing away from the figure's ``centre`` (2,)
    cost less (none does for a point within one ``font`` size of it). ``own`` is the point's
    index ``i``. Each request's candidates are, in order and to the bit, those of a
    :func:`_candidates` call for that point alone, whatever the batch."""
    rows = list(range(len(names))) if which is None else list(which)
    if not rows:
        return []
    names, at = [names[i] for i in rows], at[rows]
    extents = [text_extent(n, font) for n in names]
    size = np.array([_size_of(e) for e in extents])  # (P, 2) width, height
    away = at - centre
    length = np.hypot(away[:, 0], away[:, 1])
    out = np.where((length > font)[:, None], away / np.maximum(length, 1e-12)[:, None], np.zeros_like(away))
    dir_cost = 0.6 * (1 - np.array([_DIRS @ o for o in out])) / 2  # (P, 16); matrix-vector as _candidates
    support = np.abs(_DIRS[:, 0]) * size[:, 0:1] / 2 + np.abs(_DIRS[:, 1]) * size[:, 1:2] / 2
    reach = (RADII * font)[None, :, None] + support[:, None, :]  # (P, 7, 16)
    centres = at[:, None, None, :] + reach[..., None] * _DIRS[None, None, :, :]
    cost = 0.0 + RADIUS_COST[None, :, None] + dir_cost[:, None, :]
    half = size / 2
    lo = centres - half[:, None, None, :]
    hi = centres + half[:, None, None, :]
    boxes = np.concatenate([lo, hi], axis=3).reshape(len(names), -1, 4)
    cost = cost.reshape(len(names), -1)
    return [
        Request(n, "point", at[k], extents[k], boxes[k], cost[k], i)
        for k, (i, n) in enumerate(zip(rows, names))
    ]


def length_request(text: str, p: np.ndarray, q: np.ndarray, font: float) -> Request:
    """Candidates beside the middle of segment ``pq``, on either side, sliding along it."""
    extent = text_extent(text, font)
    u = _unit(q - p)
    n = np.array([-u[1], u[0]])
    length = float(np.hypot(*(q - p)))
    shifts = np.array([0.0, 0.12, -0.12, 0.25, -0.25])
    tilt = np.radians([0.0, 25.0, -25.0])
    dirs = np.vstack([s * (np.cos(t) * n + np.sin(t) * u) for s in (1.0, -1.0) for t in tilt])
    boxes, cost = _candidates(
        (p + q) / 2 + shifts[:, None] * length * u,
        np.abs(shifts) * 4,
        dirs,
        np.tile([0.0, 0.3, 0.3], 2),
        RADII[:5] * font * 0.6,
        RADIUS_COST[:5],
        *_size_of(extent),
    )
    return Request(text, "length", (p + q) / 2, extent, boxes, cost)


def angle_request(text: str, a: np.ndarray, b: np.ndarray, c: np.ndarray, font: float) -> Request:
    """Candidates inside the angle ``abc`` (< 180°), beyond its arc, near the bisector."""
    extent = text_extent(text, font)
    ua, uc = _unit(a - b), _unit(c - b)
    bisector = _unit(ua + uc) if np.hypot(*(ua + uc)) > 1e-9 else np.array([-ua[1], ua[0]])
    half = math.acos(float(np.clip(ua @ uc, -1.0, 1.0))) / 2
    turns = np.array([0.0, 0.3, -0.3, 0.6, -0.6]) * half
    dirs = np.stack(
        [
            np.cos(turns) * bisector[0] - np.sin(turns) * bisector[1],
            np.sin(turns) * bisector[0] + np.cos(turns) * bisector[1],
        ],
        axis=1,
    )
    boxes, cost = _candidates(
        b[None],
        np.zeros(1),
        dirs,
        np.abs(turns) / max(half, 1e-9),
        (RADII + 1.0) * font,
        RADIUS_COST,
        *_size_of(extent),
    )
    return Request(text, "angle", b, extent, boxes, cost)


def _static_costs(
    requests: list[Request], obstacles: Obstacles, size: float, font: float
) -> list[np.ndarray]:
    """Cost (K,) of each request's candidates from everything but the other labels, computed
    for all requests in one batch."""
    boxes = np.vstack([r.boxes for r in requests])
    own = np.concatenate([np.full(len(r.boxes), r.own) for r in requests])
    edge = EDGE * font
    outside = (boxes[:, :2] < edge).any(axis=1) | (boxes[:, 2:] > size - edge).any(axis=1)
    (hard, hard_other), (_, near_other) = obstacles.hits(boxes, (CLEAR * font, NEAR_REACH * font), own)
    cost = np.concatenate([r.cost for r in requests])
    cost += HIT * hard + NEAR * (near_other - hard_other) + OUTSIDE * outside
    rows = np.flatnonzero(own >= 0)
    centre = (boxes[rows, :2] + boxes[rows, 2:]) / 2
    px, py = obstacles.points[:, 0], obstacles.points[:, 1]
    d = np.hypot(centre[:, 0:1] - px, centre[:, 1:2] - py)
    mine = d[np.arange(len(rows)), own[rows]]
    cost[rows] += AMBIGUOUS * (d < mine[:, None] - 1e-9).any(axis=1)
    return np.split(cost, np.cumsum([len(r.boxes) for r in requests])[:-1])


def place(
    requests: list[Request],
    obstacles: Obstacles,
    size: float,
    font: float,
    keep: list[np.ndarray | None] | None = None,
    build: Callable[[list[int]], list[Request]] | None = None,
) -> list[tuple[np.ndarray, bool]]:
    """Choose a box for each request: ``(box (4,), clash)`` in request order, where ``clash``
    means the chosen box touches something (no free candidate was left).

    ``keep`` (one (4,) box or ``None`` per request): a place to keep where it is still free
    (touching nothing, inside the frame, nearer its own point than any other, clear of the
    other kept boxes), so a hard negative's labels stay where its positive has them and the
    two images differ in the one detail; the other requests are placed around those boxes.
    ``build(indices)``: the requests at ``indices`` with all their candidates, in that order.
    With it, a request with a kept box need only name its label (text, kind, anchor, extent,
    own): its candidates are built only if that box is not free (most are, in a hard
    negative). The same boxes either way.
    """
    keep = keep or [None] * len(requests)
    asked = [
        Request(r.text, r.kind, r.anchor, r.extent, np.reshape(box, (1, 4)), np.zeros(1), r.own)
        if box is not None
        else r
        for r, box in zip(requests, keep)
    ]
    static = dict(enumerate(_static_costs(asked, obstacles, size, font)))
    # A kept box must touch nothing, stay inside, be nearest its own point (a static cost
    # below AMBIGUOUS) and keep clear of the kept boxes before it that stay (all pairwise gaps
    # at once: box_gaps is elementwise and symmetric).
    chosen: dict[int, tuple[np.ndarray, bool]] = {}
    free = [i for i, box in enumerate(keep) if box is not None and static[i][0] < AMBIGUOUS]
    if free:
        kept = np.array([keep[i] for i in free], dtype=np.float64).reshape(-1, 4)
        close = (box_gaps(kept, kept) <= CLEAR * font).tolist()
        stay: list[int] = []
        for a, row in enumerate(close):
            if not any(row[b] for b in stay):
                stay.append(a)
        chosen = {free[a]: (kept[a], False) for a in stay}
    rest = [i for i in range(len(requests)) if i not in chosen]
    again = [i for i in rest if keep[i] is not None]
    full = dict(enumerate(requests))
    if again:
        full.update(zip(again, build(again) if build is not None else [requests[i] for i in again]))
        static.update(zip(again, _static_costs([full[i] for i in again], obstacles, size, font)))
    placed = np.zeros((len(requests), 4))
    for n, (box, _) in enumerate(chosen.values()):
        placed[n] = box
    counts = {i: int((s < HIT).sum()) for i, s in static.items()}
    for n, i in enumerate(sorted(rest, key=lambda i: (counts[i], i)), start=len(chosen)):
        boxes = full[i].boxes
        total = static[i]
        if n:
            gaps = box_gaps(boxes, placed[:n])
            hard = np.count_nonzero(gaps <= CLEAR * font, axis=1)
            near = np.count_nonzero(gaps <= NEAR_REACH * font, axis=1) - hard
            total = total + HIT * hard + NEAR * near
        k = int(np.argmin(total))
        chosen[i] = (boxes[k], bool(total[k] >= HIT))
        placed[n] = boxes[k]
    return [chosen[i] for i in range(len(requests))]
