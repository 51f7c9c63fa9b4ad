"""Image negatives: judged on the figure a model is shown.

An image negative is kept only if (DESIGN.md, "Verification rules"):

1. its program realises near the positive, with legible labels and every mark true;
2. it is complete: every label, mark, given and stroke of the positive that still holds on it
   is drawn (the engine restores the ones a plugin dropped, :func:`restore`), and it keeps the
   positive's framing (a candidate that needs more room is rejected: a re-framed figure moves
   every stroke and differs from its positive everywhere);
3. a claim that the positive caption's *text* states is clearly false on it
   (:func:`geoforge.verify.measure.violation`); a length value counts only where the figure
   prints a length, in the units its own printed lengths set;
4. it is not the positive up to similarity (:func:`similarity_gap`) unless a printed value
   differs, which makes it a ``value`` negative;
5. its render differs visibly from the positive's, yet keeps at least half of the positive's
   ink in place (:func:`ink_kept`): a change that swings most of the figure is not one detail.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass

import numpy as np

from geoforge.caption import CaptionReadError, Claim, read_caption
from geoforge.errors import GeoforgeError
from geoforge.facts import Fact, residual
from geoforge.geometry import angle_at, norm
from geoforge.perturb import Accepted, ImageCandidate, Positive
from geoforge.program import Program, Statement
from geoforge.render.layout import Layout
from geoforge.scene import Scene, SceneCircle, drawing
from geoforge.verify.measure import DEFAULT_MARGINS, Margins, how_false_of, violation

#: A restored mark or given must hold to this (radians, or relative for lengths).
HOLD_TOL = 1e-6
#: A pixel is ink when its grey level is below this (of 255).
INK_LEVEL = 128


#: Two grey levels (of 255) differ visibly when they differ by more than this.
VISIBLE_LEVELS = 64


@dataclass(frozen=True)
class Verdict:
    """The judgement on one candidate: ``ok``, the rejection ``reason`` (``""`` if ok) and the
    :class:`Accepted` negative when ok."""

    ok: bool
    reason: str = ""
    accepted: Accepted | None = None


class Distinct:
    """The image negatives kept for one positive, as a model sees them: a new one that is not
    visibly different from a kept one (fewer than ``margin`` of the pixels differ by more than
    :data:`VISIBLE_LEVELS`, the rule that judges a negative against its positive) is a
    duplicate, whatever its program: two plugins can move the same point to nearly the same
    place, or one plugin can propose one figure twice in other float digits.

    Exact and cheap: each kept render is stored with the bounding box of the pixels where it
    differs from the positive's (``reference``, (H, W) uint8) by more than half of
    :data:`VISIBLE_LEVELS`. Outside both boxes two renders are each within that half of the
    positive's, so within :data:`VISIBLE_LEVELS` of each other (triangle inequality): only the
    box around both is compared."""

    def __init__(self, reference: np.ndarray, margin: float) -> None:
        self.reference = reference
        self.margin = margin
        self.kept: list[tuple[np.ndarray, tuple[int, int, int, int] | None]] = []

    def _box(self, grey: np.ndarray) -> tuple[int, int, int, int] | None:
        """Rows and columns ``(r0, r1, c0, c1)`` (ends excluded) around the pixels where
        ``grey`` differs from the positive by more than half of :data:`VISIBLE_LEVELS`."""
        changed = changes(grey, self.reference) > VISIBLE_LEVELS // 2  # the verifier's, remembered
        rows = np.flatnonzero(changed.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(changed.any(axis=0))
        return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1

    def seen(self, grey: np.ndarray) -> bool:
        """True if ``grey`` ((H, W) uint8, the positive's size) is not visibly different from a
        kept render; else it is kept and False is returned."""
        box = self._box(grey)
        for other, kept_box in self.kept:
            boxes = [b for b in (box, kept_box) if b is not None]
            visible = 0
            if boxes:
                r0, c0 = min(b[0] for b in boxes), min(b[2] for b in boxes)
                r1, c1 = max(b[1] for b in boxes), max(b[3] for b in boxes)
                part = absolute_difference(grey[r0:r1, c0:c1], other[r0:r1, c0:c1])
                visible = np.count_nonzero(part > VISIBLE_LEVELS)
            if visible < self.margin * grey.size:
                return True
        self.kept.append((grey, box))
        return False


@dataclass(frozen=True)
class Reference:
    """What every image negative of one positive is compared with, computed once: the claims
    its caption text states (``None`` if the text is not in the caption language), its grey
    render (H, W) uint8 and its :class:`~geoforge.render.Layout` (whose view and labels a
    negative keeps)."""

    stated: tuple[Claim, ...] | None
    grey: np.ndarray
    plan: Layout


_LAST: list[tuple[tuple[int, int, int], Reference]] = []


def reference(positive: Positive, positive_png: bytes, size: int, plan: Layout | None = None) -> Reference:
    """The :class:`Reference` of ``positive`` (cached for the last positive seen, since its
    negatives are verified one after another); ``plan`` is the layout ``positive_png`` was
    drawn from when the caller has it, else the positive is laid out again."""
    from geoforge.render import layout

    key = (id(positive), hash(positive_png), size)
    if _LAST and _LAST[0][0] == key:
        return _LAST[0][1]
    try:
        stated: tuple[Claim, ...] | None = read_caption(positive.caption.text).claims
    except CaptionReadError:
        stated = None
    ref = Reference(stated, _grey(positive_png), plan if plan is not None else layout(positive.scene, size))
    _LAST[:] = [(key, ref)]
    return ref


def _grey(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.uint8)


def absolute_difference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|x - y|`` elementwise for two grey images of one shape, in their dtype: for uint8
    images without the wrap-around of ``x - y`` and without widening to a signed type (about
    nine times faster on 448-px figures than ``np.abs`` of int16 copies)."""
    return np.maximum(x, y) - np.minimum(x, y)


#: The last pair of whole images :func:`changes` compared, and their difference.
_CHANGES: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []


def changes(grey: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """:func:`absolute_difference` of two grey images of one shape, remembered for the last
    pair (the same array objects): the verifier's pixel difference and :class:`Distinct` both
    compare a kept negative's render with its positive's. The arrays must not be changed in
    place afterwards; renders never are."""
    if _CHANGES and _CHANGES[0][0] is grey and _CHANGES[0][1] is reference:
        return _CHANGES[0][2]
    found = absolute_difference(grey, reference)
    _CHANGES[:] = [(grey, reference, found)]
    return found


def pixel_difference(a: bytes | np.ndarray, b: bytes | np.ndarray) -> float:
    """Fraction of pixels whose grey level differs by more than 64 (of 255) between two PNGs
    (or grey arrays) of the same size; 1.0 if the sizes differ."""
    x = _grey(a) if isinstance(a, bytes) else a
    y = _grey(b) if isinstance(b, bytes) else b
    if x.shape != y.shape:
        return 1.0
    return np.count_nonzero(changes(x, y) > VISIBLE_LEVELS) / x.size


def ink_kept(positive: np.ndarray, negative: np.ndarray) -> float:
    """The share of the positive's ink pixels (grey < :data:`INK_LEVEL`) that are ink in the
    negative too, for two (H, W) grey images of the same size; 1.0 for a blank positive. A
    negative that keeps less than half its positive's ink differs everywhere, not in one
    detail."""
    ink = positive < INK_LEVEL
    total = np.count_nonzero(ink)
    return 1.0 if total == 0 else np.count_nonzero(ink & (negative < INK_LEVEL)) / total


def similarity_gap(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """How far figure ``b`` is from figure ``a`` up to similarity: the largest distance between
    corresponding points after the best similarity map of ``b`` onto ``a`` (rotation, uniform
    scale, translation, reflections included; least squares, Umeyama 1991 without the
    determinant correction), as a share of ``a``'s size. Over the points both have; ``inf``
    when fewer than three or ``b``'s points coincide."""
    names = sorted(set(a) & set(b))
    if len(names) < 3:
        return math.inf
    x = np.array([a[n] for n in names], dtype=np.float64)
    y = np.array([b[n] for n in names], dtype=np.float64)
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    spread = float((yc**2).sum())
    size = float(np.hypot(*(x.max(axis=0) - x.min(axis=0))))
    if spread < 1e-18 or size < 1e-12:
        return math.inf
    u, s, vt = np.linalg.svd(yc.T @ xc)
    aligned = s.sum() / spread * yc @ (u @ vt)
    return float(np.linalg.norm(aligned - xc, axis=1).max()) / size


def _mark_holds(st: Statement, p: dict[str, np.ndarray], tol: float = HOLD_TOL) -> bool:
    a = st.points
    if st.name == "right":
        return abs(angle_at(p[a[0]], p[a[1]], p[a[2]]) - math.pi / 2) <= tol
    if st.name == "equal":
        lengths = [norm(p[a[i]] - p[a[i + 1]]) for i in range(0, len(a) - 1, 2)]
        return all(abs(x - lengths[0]) <= tol * max(x, lengths[0]) for x in lengths)
    if st.name == "equalangle":
        angles = [angle_at(p[a[i]], p[a[i + 1]], p[a[i + 2]]) for i in range(0, len(a) - 2, 3)]
        return all(abs(x - angles[0]) <= tol for x in angles)
    return True


def holds_on(st: Statement, scene: Scene) -> bool:
    """True if a ``mark`` or ``given`` statement is true of ``scene`` (a given in the scene's
    units) and names only points it has; ``draw`` statements always hold."""
    if any(n not in scene.points for n in st.points):
        return False
    if st.kind == "given":
        return residual(Fact(st.name, st.args), scene) <= HOLD_TOL
    return st.kind != "mark" or _mark_holds(st, scene.points)


def false_marks(scene: Scene) -> list[str]:
    """The ``mark right``/``mark equal``/``mark equalangle`` statements of ``scene``'s program
    that do not hold on it. A render shows marks as facts, so a negative must not carry a
    false one."""
    p = scene.points
    marks = [st for st in scene.program.statements if st.kind == "mark" and all(n in p for n in st.points)]
    return [st.text() for st in marks if not _mark_holds(st, p)]


def _missing_strokes(
    positive: Scene,
    drawn: tuple[tuple[tuple[str, ...], ...], tuple[SceneCircle, ...]],
    points: dict[str, np.ndarray],
) -> list[Statement]:
    """``draw`` statements for the positive's lines and circles that a figure whose ``drawn``
    lines and circles (:func:`geoforge.scene.drawing` of its program) no longer shows though
    their ends are still in the figure: a line is drawn between the outermost of its points
    that remain (a deleted end shortens it to the next point); a circle about a named centre
    goes through the point on it whose distance from the centre changed least."""
    lines, circles = drawn
    out = []
    for g in positive.lines:
        kept = [n for n in g if n in points]
        if len(kept) < 2:
            continue
        a, b = kept[0], kept[-1]
        if not any(a in h and b in h for h in lines):
            out.append(Statement("draw", "segment", (a, b)))
    for c in positive.circles:
        on = [n for n in c.on if n in points and n != c.center_name]
        if c.center_name is not None and c.center_name in points and on:
            o = c.center_name
            if any(d.center_name == o for d in circles):
                continue
            best = min(on, key=lambda n: abs(norm(points[n] - points[o]) - c.radius))
            out.append(Statement("draw", "circle", (o, best)))
        elif c.center_name is None and len(on) >= 3 and not any(set(on[:3]) <= set(d.on) for d in circles):
            out.append(Statement("draw", "circumcircle", tuple(on[:3])))
    return out


def restore(positive: Scene, scene: Scene) -> tuple[Scene, int]:
    """``scene`` (a realised negative; its ``lines`` and ``circles`` are ignored, so it may be
    realised with ``draw=False``) with every ``mark``, ``given`` and ``draw`` statement of the
    positive that still holds on it, and every stroke of the positive whose ends it still
    has (see :func:`_missing_strokes`), drawn by :func:`geoforge.scene.drawing`; returns the
    new scene and how many statements were added. A negative that drops a true mark is a
    shortcut, not a hard negative (DESIGN.md, rule 5)."""
    have = {st.text() for st in scene.program.statements}
    added = [st for st in positive.program.statements if st.text() not in have and holds_on(st, scene)]
    program = scene.program
    if added:
        program = dataclasses.replace(program, statements=program.statements + tuple(added))
    drawn = drawing(program, scene.points)
    strokes = [s for s in _missing_strokes(positive, drawn, scene.points) if s.text() not in have]
    if strokes:
        program = dataclasses.replace(program, statements=program.statements + tuple(strokes))
    if program is not scene.program:
        program = program.replace()
    if strokes:
        drawn = drawing(program, scene.points)
    lines, circles = drawn
    redrawn = dataclasses.replace(scene, program=program, lines=lines, circles=circles)
    return redrawn, len(added) + len(strokes)


def _printed(scene: Scene) -> set[str]:
    return {st.text() for st in scene.program.statements if st.kind == "given"}


def _realise_near(candidate: ImageCandidate, positive: Positive) -> Scene:
    from geoforge.realise import realise

    return realise(
        candidate.program, seed=positive.scene.seed, max_tries=3, reference=positive.scene.points, draw=False
    )


def verify_image(
    positive: Positive,
    candidate: ImageCandidate,
    positive_png: bytes,
    plugin: str,
    margins: Margins = DEFAULT_MARGINS,
    size: int = 448,
    plan: Layout | None = None,
    *,
    encode: bool = True,
) -> Verdict:
    """Apply the image-negative rules (module docstring) to ``candidate``, cheapest checks
    first; never raises for a bad candidate. The accepted negative carries the restored
    program, how it is false and its render (``grey``), and with ``encode`` its PNG bytes
    (``png``; ``None`` without: a caller that stores the renders another way saves the
    encoding). ``plan``: the positive's layout, when known (:func:`reference`); the negative is
    drawn in its view, with its labels kept where their points have not moved and their places
    are still free."""
    from geoforge.render import layout
    from geoforge.render.draw import encode_png, raster
    from geoforge.render.layout import fits

    if not isinstance(candidate, ImageCandidate) or not isinstance(candidate.program, Program):
        return Verdict(False, "malformed candidate")
    if candidate.program.same_canonical(positive.program):
        return Verdict(False, "same program as the positive")
    ref = reference(positive, positive_png, size, plan)
    if ref.stated is None:
        return Verdict(False, "positive caption not readable")
    try:
        # Restore in the positive's units (the negative is realised next to it), then judge in
        # the units the negative itself prints: the model reads scale from the printed lengths.
        near = dataclasses.replace(_realise_near(candidate, positive), fixed_unit=positive.scene.unit)
        scene, restored = restore(positive.scene, near)
        scene = dataclasses.replace(scene, fixed_unit=None)
    except GeoforgeError:
        return Verdict(False, "does not realise")
    if false_marks(scene):
        return Verdict(False, "a mark does not hold")
    visible = any(st.kind == "given" and st.name == "length" for st in scene.program.statements)
    violated = [(c, v) for c in ref.stated if (v := violation(c, scene, margins, visible)) >= 1.0]
    if not violated:
        return Verdict(False, "positive caption not false by the margin")
    # A false angle or length value is a drawn change here; ``value`` is kept for a figure
    # that differs from its positive only in a printed number.
    how = how_false_of(violated, scene).replace("value", "geometry")
    if set(scene.points) == set(positive.scene.points) and (
        similarity_gap(positive.scene.points, scene.points) < margins.similarity
    ):
        if _printed(scene) == _printed(positive.scene):
            return Verdict(False, "the positive up to similarity")
        how = "value"
    if not fits(scene, size, ref.plan.view):
        return Verdict(False, "needs a new framing")
    drawn = layout(scene, size, view=ref.plan.view, refit=False, keep=ref.plan.labels)
    if drawn.clashes:
        return Verdict(False, "labels not legible")
    grey = raster(drawn)
    diff = pixel_difference(grey, ref.grey)
    if diff < margins.pixel_diff:
        return Verdict(False, "not visibly different")
    if ink_kept(ref.grey, grey) < margins.ink_kept:
        return Verdict(False, "moves most of the figure")
    png = encode_png(grey) if encode else None
    final = dataclasses.replace(candidate, program=scene.program)
    accepted = Accepted(plugin, final, violated, png, diff, how=how, restored=restored, grey=grey)
    return Verdict(True, accepted=accepted)
