"""Vectorised intersection tests between axis-aligned boxes and the things a diagram draws.

Boxes are float64 arrays of shape (K, 4) holding ``x0, y0, x1, y1`` in pixels (``x0 <= x1``,
``y0 <= y1``). Every function returns a (K, M) bool array: entry ``[k, m]`` says whether box
``k`` touches obstacle ``m``. Touching at the boundary counts as intersecting.
"""

from __future__ import annotations

import numpy as np


def inflate(boxes: np.ndarray, by: float) -> np.ndarray:
    """Boxes (K, 4) grown by ``by`` pixels on every side."""
    return boxes + np.array([-by, -by, by, by])


def boxes_hit_segments(boxes: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Boxes (K, 4) against segments (M, 4) ``x0, y0, x1, y1``: (K, M) bool.

    Separating axes: a segment misses a box iff their bounding boxes are apart or all four
    corners lie strictly on one side of the segment's line, i.e. the distance along the
    line's normal from the box centre exceeds the box's half-extent along that normal.
    """
    s0, s1 = segments[None, :, :2], segments[None, :, 2:]
    lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
    apart = ((np.minimum(s0, s1) > hi) | (np.maximum(s0, s1) < lo)).any(axis=2)
    d = s1 - s0
    normal = np.stack([-d[..., 1], d[..., 0]], axis=-1)
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    reach = (np.abs(normal) * half).sum(axis=2)
    return ~apart & (np.abs(((centre - s0) * normal).sum(axis=2)) <= reach)


def segment_gaps(boxes: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """For boxes (K, 4) and segments (M, 4): (K, M) float, the smallest ``g`` such that the box
    grown by ``g`` pixels on every side touches the segment (negative when they overlap).

    ``segment_gaps(b, s) <= g`` equals ``boxes_hit_segments(inflate(b, g), s)``: growing a box
    shrinks its gaps along x and y by ``g`` and widens its extent along the segment's normal
    ``n`` by ``g·(|nx| + |ny|)``, so one evaluation answers every clearance. Computed on (K, M)
    arrays per coordinate (no (K, M, 2) temporaries), with the same operations in the same
    order as :func:`boxes_hit_segments`, so the same floats.
    """
    bx0, by0, bx1, by1 = (boxes[:, i : i + 1] for i in range(4))
    sx0, sy0, sx1, sy1 = segments.T
    gap_x = np.maximum(np.minimum(sx0, sx1) - bx1, bx0 - np.maximum(sx0, sx1))
    gap_y = np.maximum(np.minimum(sy0, sy1) - by1, by0 - np.maximum(sy0, sy1))
    nx, ny = -(sy1 - sy0), sx1 - sx0
    ax, ay = np.abs(nx), np.abs(ny)
    reach = ax * ((bx1 - bx0) / 2) + ay * ((by1 - by0) / 2)
    offset = np.abs(((bx0 + bx1) / 2 - sx0) * nx + ((by0 + by1) / 2 - sy0) * ny) - reach
    norm1 = ax + ay
    with np.errstate(divide="ignore", invalid="ignore"):
        slack = np.where(norm1 > 0, offset / np.where(norm1 > 0, norm1, 1.0), -np.inf)
    return np.maximum(np.maximum(gap_x, gap_y), slack)


def _near(boxes: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Smallest distance (K, M) from each centre (M, 2) to each box (K, 4)."""
    cx, cy = centers[:, 0], centers[:, 1]
    gx = np.maximum(np.maximum(boxes[:, 0:1] - cx, cx - boxes[:, 2:3]), 0.0)
    gy = np.maximum(np.maximum(boxes[:, 1:2] - cy, cy - boxes[:, 3:4]), 0.0)
    return np.hypot(gx, gy)


def boxes_hit_circles(boxes: np.ndarray, circles: np.ndarray) -> np.ndarray:
    """Boxes (K, 4) against circle strokes (M, 3) ``cx, cy, r``: (K, M) bool.

    The stroke meets a box iff the radius lies between the nearest and the farthest distance
    from the centre to the box; a box wholly inside the disc does not touch the stroke.
    """
    cx, cy, r = circles.T
    reach_x = np.maximum(np.abs(cx - boxes[:, 0:1]), np.abs(cx - boxes[:, 2:3]))
    reach_y = np.maximum(np.abs(cy - boxes[:, 1:2]), np.abs(cy - boxes[:, 3:4]))
    return (_near(boxes, circles[:, :2]) <= r) & (r <= np.hypot(reach_x, reach_y))


def boxes_hit_discs(boxes: np.ndarray, centers: np.ndarray, radius: float) -> np.ndarray:
    """Boxes (K, 4) against filled discs of ``radius`` px at centres (M, 2): (K, M) bool."""
    return _near(boxes, centers) <= radius


def disc_gaps(boxes: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For boxes (K, 4) and centres (M, 2): the signed gaps (K, M) along x and along y from each
    box to each centre (negative inside the box's extent on that axis).

    The box grown by ``g`` pixels on every side meets the disc of radius ``r`` at a centre iff
    ``hypot(max(gx - g, 0), max(gy - g, 0)) <= r`` (:func:`boxes_hit_discs` of
    ``inflate(boxes, g)``, but one evaluation serves every clearance)."""
    cx, cy = centers[:, 0], centers[:, 1]
    gx = np.maximum(boxes[:, 0:1] - cx, cx - boxes[:, 2:3])
    gy = np.maximum(boxes[:, 1:2] - cy, cy - boxes[:, 3:4])
    return gx, gy


def box_gaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For boxes (K, 4) and boxes (M, 4): (K, M) float, the smallest ``g`` such that the first
    box grown by ``g`` pixels on every side touches the second (negative when they overlap):
    ``box_gaps(a, b) <= g`` is :func:`boxes_hit_boxes` of ``inflate(a, g)`` and ``b``."""
    a0, a1, a2, a3 = (boxes[:, i : i + 1] for i in range(4))
    b0, b1, b2, b3 = others.T
    return np.maximum(np.maximum(a0 - b2, b0 - a2), np.maximum(a1 - b3, b1 - a3))


def boxes_hit_boxes(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Boxes (K, 4) against boxes (M, 4): (K, M) bool."""
    a, b = boxes[:, None, :], others[None, :, :]
    return (
        (a[..., 0] <= b[..., 2])
        & (b[..., 0] <= a[..., 2])
        & (a[..., 1] <= b[..., 3])
        & (b[..., 1] <= a[..., 3])
    )


def segment_distance(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Distance (K, M) in pixels from points (K, 2) to segments (M, 4)."""
    p = segments[None, :, :2]
    d = segments[None, :, 2:] - p
    q = points[:, None, :]
    length2 = np.maximum((d * d).sum(axis=2), 1e-12)
    t = np.clip(((q - p) * d).sum(axis=2) / length2, 0.0, 1.0)
    gap = q - (p + t[..., None] * d)
    return np.hypot(gap[..., 0], gap[..., 1])
