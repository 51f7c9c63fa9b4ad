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
    ``n`` by ``g·(|nx| + |ny|)``, so one evaluation answers every clearance.
    """
    s0, s1 = segments[None, :, :2], segments[None, :, 2:]
    lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
    axis_gap = np.maximum(np.minimum(s0, s1) - hi, lo - np.maximum(s0, s1)).max(axis=2)
    d = s1 - s0
    normal = np.stack([-d[..., 1], d[..., 0]], axis=-1)
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    reach = (np.abs(normal) * half).sum(axis=2)
    norm1 = np.abs(normal).sum(axis=2)
    offset = np.abs(((centre - s0) * normal).sum(axis=2)) - reach
    with np.errstate(divide="ignore", invalid="ignore"):
        slack = np.where(norm1 > 0, offset / np.where(norm1 > 0, norm1, 1.0), -np.inf)
    return np.maximum(axis_gap, slack)


def _near(boxes: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Smallest distance (K, M) from each centre (M, 2) to each box (K, 4)."""
    c = centers[None, :, :]
    gap = np.maximum(np.maximum(boxes[:, None, :2] - c, c - boxes[:, None, 2:]), 0.0)
    return np.hypot(gap[..., 0], gap[..., 1])


def boxes_hit_circles(boxes: np.ndarray, circles: np.ndarray) -> np.ndarray:
    """Boxes (K, 4) against circle strokes (M, 3) ``cx, cy, r``: (K, M) bool.

    The stroke meets a box iff the radius lies between the nearest and the farthest distance
    from the centre to the box; a box wholly inside the disc does not touch the stroke.
    """
    c = circles[None, :, :2]
    reach = np.maximum(np.abs(c - boxes[:, None, :2]), np.abs(c - boxes[:, None, 2:]))
    r = circles[None, :, 2]
    return (_near(boxes, circles[:, :2]) <= r) & (r <= np.hypot(reach[..., 0], reach[..., 1]))


def boxes_hit_discs(boxes: np.ndarray, centers: np.ndarray, radius: float) -> np.ndarray:
    """Boxes (K, 4) against filled discs of ``radius`` px at centres (M, 2): (K, M) bool."""
    return _near(boxes, centers) <= radius


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
