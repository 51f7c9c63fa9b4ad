"""The renderer: label placement that collides with nothing, marks from the program, and
byte-stable PNG/SVG output. Geometry is checked here with independent scalar code."""

from __future__ import annotations

import dataclasses
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from geoforge.problems import read_problems
from geoforge.program import parse_program
from geoforge.realise import realise
from geoforge.render import Layout, layout, render, save
from geoforge.render.draw import paint
from geoforge.render.layout import fits
from geoforge.render.place import point_requests
from geoforge.scene import Scene

JGEX = Path(__file__).resolve().parents[1] / "corpora" / "alphageometry" / "jgex_ag_231.txt"
MARKED = {
    "foot_and_givens": "b c = segment b c; a = s_angle c b a 60; h = foot h a b c; "
    "draw segment a b; mark right a h b; given length b c 6; given angle a b c 60",
    "ticks_and_arcs": "a b c = triangle a b c; m = midpoint m b c; n = midpoint n a c; "
    "mark equal b m m c; mark equal a n n c; mark equalangle a b n n b c; "
    "mark equalangle b c n n c a; given length a b 3*sqrt(2)",
    "square": "a b c d = isquare a b c d; o = midpoint o a c; mark equal a b b c c d d a; "
    "mark angle d a c; given angle d a c 45",
}


def _jgex(index: int) -> str:
    return read_problems(JGEX)[index].text


CASES = [pytest.param(lambda i=i: _jgex(i), id=f"jgex{i}") for i in (0, 4, 25)] + [
    pytest.param(lambda t=t: t, id=name) for name, t in MARKED.items()
]


@pytest.fixture(params=CASES)
def scene(request: pytest.FixtureRequest) -> Scene:
    return realise(parse_program(request.param()), seed=0)


def segment_meets_box(p: np.ndarray, q: np.ndarray, box: np.ndarray) -> bool:
    """Scalar Liang–Barsky: does segment pq meet the closed box?"""
    t0, t1 = 0.0, 1.0
    for axis in (0, 1):
        lo, hi, start, step = box[axis], box[axis + 2], p[axis], q[axis] - p[axis]
        if step == 0:
            if not lo <= start <= hi:
                return False
            continue
        a, b = sorted(((lo - start) / step, (hi - start) / step))
        t0, t1 = max(t0, a), min(t1, b)
    return t0 <= t1


def box_distance(xy: np.ndarray, box: np.ndarray) -> tuple[float, float]:
    """Nearest and farthest distance from a point to a box."""
    dx = max(box[0] - xy[0], 0.0, xy[0] - box[2])
    dy = max(box[1] - xy[1], 0.0, xy[1] - box[3])
    fx = max(abs(xy[0] - box[0]), abs(xy[0] - box[2]))
    fy = max(abs(xy[1] - box[1]), abs(xy[1] - box[3]))
    return math.hypot(dx, dy), math.hypot(fx, fy)


def grown(box: np.ndarray, by: float) -> np.ndarray:
    return box + np.array([-by, -by, by, by])


def test_labels_collide_with_nothing(scene: Scene) -> None:
    plan = layout(scene)
    assert plan.clashes == 0
    assert len(plan.boxes) == len(scene.points) + sum(st.kind == "given" for st in scene.program.statements)
    assert_free(plan)


def assert_free(plan: Layout) -> None:
    """No label touches another, a stroke, a circle or a point, or leaves the frame."""
    boxes = plan.boxes
    assert boxes.min() >= 0 and boxes.max() <= plan.size
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]
    for box in boxes:
        inked = grown(box, plan.stroke_px / 2)
        for s in plan.segments:
            assert not segment_meets_box(s[:2], s[2:], inked)
        for cx, cy, r in plan.circles:
            near, far = box_distance(np.array([cx, cy]), inked)
            assert not near <= r <= far
        for xy in plan.points.values():
            assert box_distance(xy, box)[0] > plan.point_px


def test_points_circles_and_labels_stay_in_frame(scene: Scene) -> None:
    plan = layout(scene, size=320)
    xy = np.array(list(plan.points.values()))
    assert xy.min() > 0 and xy.max() < 320
    assert plan.boxes.min() >= 0 and plan.boxes.max() <= 320
    for cx, cy, r in plan.circles:
        assert min(cx, cy) - r >= 0 and max(cx, cy) + r <= 320


def test_point_labels_sit_next_to_their_point(scene: Scene) -> None:
    plan = layout(scene)
    for label in plan.labels:
        if label.kind == "point":
            near = box_distance(plan.points[label.text], label.box)[0]
            assert 0 < near <= 4.5 * plan.font_px


def test_png_is_square_grayscale_and_byte_stable(scene: Scene) -> None:
    first = render(scene, size=300)
    image = Image.open(io.BytesIO(first))
    assert image.size == (300, 300) and image.mode == "L"
    pixels = np.asarray(image)
    assert pixels.max() == 255 and pixels.min() == 0
    other = realise(parse_program("a b c = triangle a b c; o = circle o a b c"), seed=3)
    render(other, size=300)
    assert render(scene, size=300) == first


def test_svg_is_xml_and_byte_stable(scene: Scene) -> None:
    svg = render(scene, fmt="svg")
    assert svg.startswith(b"<?xml")
    assert b"<dc:date>" not in svg
    assert render(scene, fmt="svg") == svg


def test_label_ink_stays_inside_its_box(scene: Scene) -> None:
    plan = layout(scene)
    empty = dataclasses.replace(
        plan, segments=np.zeros((0, 4)), circles=np.zeros((0, 3)), marks=(), points={}
    )
    pixels = np.asarray(Image.open(io.BytesIO(paint(empty, "png"))))
    ys, xs = np.nonzero(pixels < 255)
    centres = np.stack([xs + 0.5, ys + 0.5], axis=1)
    assert len(centres) > 0
    outside = [min(box_distance(c, b)[0] for b in plan.boxes) for c in centres]
    assert max(outside) <= 0.75


def test_label_on_a_line_moves_off_it() -> None:
    program = parse_program("a b = segment a b; m = on_line m a b")
    xy = {"a": (0, 0), "b": (3, 0), "m": (1, 0)}
    points = {k: np.array(v, dtype=np.float64) for k, v in xy.items()}
    scene = Scene(program, points, seed=0, lines=(("a", "m", "b"),))
    plan = layout(scene)
    m = plan.points["m"]
    at = np.array([plan.points[n] for n in "abm"])
    natural = point_requests(["a", "b", "m"], at, at.mean(axis=0), plan.font_px)[2]
    first = natural.boxes[int(np.argmin(natural.cost))]
    line = plan.segments[0]
    assert segment_meets_box(line[:2], line[2:], first)
    box = next(lb.box for lb in plan.labels if lb.text == "m")
    assert not segment_meets_box(line[:2], line[2:], box)
    assert box[3] < m[1] or box[1] > m[1]
    assert box_distance(m, box)[0] < plan.font_px


def _marks(text: str, **kw: bool) -> Layout:
    return layout(realise(parse_program(text), seed=0), **kw)


def test_foot_gets_an_automatic_right_angle_square() -> None:
    plan = _marks("a b c = triangle a b c; h = foot h a b c")
    (mark,) = plan.marks
    assert mark.kind == "right" and mark.at[:2] == ("a", "h")
    corner, h = mark.paths[0], plan.points["h"]
    u, w = corner[0] - h, corner[2] - h
    assert abs(u @ w) < 1e-6 * (u @ u)
    assert np.allclose(corner[1], h + u + w)
    assert np.hypot(*u) == pytest.approx(0.55 * plan.font_px)
    assert _marks("a b c = triangle a b c; h = foot h a b c", auto_marks=False).marks == ()


def test_marked_right_angle_is_not_drawn_twice() -> None:
    plan = _marks("a b c = triangle a b c; h = foot h a b c; mark right a h b")
    assert [m.kind for m in plan.marks] == ["right"]


def test_successive_equal_marks_get_one_then_two_ticks_across_the_middle() -> None:
    plan = _marks(
        "a b c = triangle a b c; m = midpoint m b c; n = midpoint n a c; "
        "mark equal b m m c; mark equal a n n c"
    )
    assert [(m.at, len(m.paths)) for m in plan.marks] == [
        (("b", "m"), 1),
        (("m", "c"), 1),
        (("a", "n"), 2),
        (("n", "c"), 2),
    ]
    for mark in plan.marks:
        p, q = (plan.points[n] for n in mark.at)
        along = (q - p) / np.hypot(*(q - p))
        for tick in mark.paths:
            assert abs((tick[1] - tick[0]) @ along) < 1e-9
            assert np.hypot(*((tick[0] + tick[1]) / 2 - (p + q) / 2)) < 0.5 * plan.font_px


def test_successive_equalangle_marks_get_one_then_two_arcs() -> None:
    plan = _marks(
        "a b c = triangle a b c; m = midpoint m b c; mark equalangle b a m m a c; mark equalangle a b m a c m"
    )
    assert [len(m.paths) for m in plan.marks] == [1, 1, 2, 2]
    for mark in plan.marks:
        vertex = plan.points[mark.at[1]]
        radii = [np.hypot(*(arc - vertex).T) for arc in mark.paths]
        assert all(np.ptp(r) < 1e-9 for r in radii)


def test_given_values_are_labelled_in_textbook_form_inside_the_angle() -> None:
    plan = _marks(MARKED["foot_and_givens"])
    values = {lb.text: lb for lb in plan.labels if lb.kind != "point"}
    assert set(values) == {"6", "60°"}
    a, b, c = (plan.points[n] for n in "abc")
    mid = (values["60°"].box[:2] + values["60°"].box[2:]) / 2 - b

    def cross(u: np.ndarray, v: np.ndarray) -> float:
        return float(u[0] * v[1] - u[1] * v[0])

    assert cross(a - b, mid) * cross(a - b, c - b) > 0
    assert cross(c - b, mid) * cross(c - b, a - b) > 0
    assert [lb.text for lb in _marks(MARKED["ticks_and_arcs"]).labels][-1] == "3√2"


def test_layout_is_deterministic() -> None:
    scene = realise(parse_program(MARKED["ticks_and_arcs"]), seed=2)
    one, two = layout(scene), layout(scene)
    assert np.array_equal(one.boxes, two.boxes)
    assert np.array_equal(one.segments, two.segments)


def test_a_kept_view_stays_with_its_clashes_only_when_refit_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    scene = realise(parse_program(MARKED["ticks_and_arcs"]), seed=2)
    plan = layout(scene)
    view = (plan.scale * 0.9, plan.centre + 0.1)
    module = sys.modules["geoforge.render.layout"]
    placed = module.place

    def clashing(*args: object) -> list[tuple[np.ndarray, bool]]:  # no label ever finds a free place
        return [(box, True) for box, _ in placed(*args)]

    monkeypatch.setattr(module, "place", clashing)
    kept = layout(scene, view=view, refit=False)
    assert kept.scale == view[0] and np.array_equal(kept.centre, view[1])
    assert kept.clashes == len(kept.labels)
    refitted = layout(scene, view=view)
    assert refitted.scale != view[0]
    with pytest.raises(ValueError, match="refit=False needs a view"):
        layout(scene, refit=False)
    with pytest.raises(ValueError, match="refit=False needs a view"):
        layout(scene, view=(plan.scale * 4, plan.centre), refit=False)


def test_a_negative_keeps_its_positives_labels_where_they_are_still_free(scene: Scene) -> None:
    plan = layout(scene)
    again = layout(scene, view=plan.view, keep=plan.labels)
    assert [lb.box.tolist() for lb in again.labels] == [lb.box.tolist() for lb in plan.labels]
    # A kept place that a stroke now crosses is given up, and the label placed afresh.
    x0, y0, x1, y1 = plan.segments[0]
    mid = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    i, first = next((i, lb) for i, lb in enumerate(plan.labels) if lb.kind == "point")
    half = (first.box[2:] - first.box[:2]) / 2
    on_stroke = np.concatenate([mid - half, mid + half])
    keep = tuple(dataclasses.replace(lb, box=on_stroke) if j == i else lb for j, lb in enumerate(plan.labels))
    moved = layout(scene, view=plan.view, keep=keep)
    assert moved.clashes == 0 and not np.array_equal(moved.labels[i].box, on_stroke)
    assert_free(moved)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(MARKED)), st.integers(0, 9), st.floats(-0.4, 0.4), st.floats(-0.4, 0.4))
def test_labels_kept_from_a_positive_are_free_and_only_where_their_point_stayed(
    name: str, which: int, dx: float, dy: float
) -> None:
    scene = realise(parse_program(MARKED[name]), seed=0)
    plan = layout(scene)
    moved_name = scene.names[which % len(scene.names)]
    shift = np.array([dx, dy]) * scene.scale
    points = {**scene.points, moved_name: scene.points[moved_name] + shift}
    negative = dataclasses.replace(scene, points=points)
    if not fits(negative, plan.size, plan.view):
        return
    drawn = layout(negative, view=plan.view, refit=False, keep=plan.labels)
    if drawn.clashes == 0:
        assert_free(drawn)
    before = {lb.text: lb.box for lb in plan.labels if lb.kind == "point"}
    after = {lb.text: lb.box for lb in drawn.labels if lb.kind == "point"}
    if np.hypot(*shift) * plan.scale > 1.0:
        assert not np.array_equal(after[moved_name], before[moved_name])
    for lb in drawn.labels:
        if lb.kind == "point":
            assert 0 < box_distance(drawn.points[lb.text], lb.box)[0] <= 4.5 * drawn.font_px


def test_raster_paints_the_pixels_matplotlib_draws_for_the_figure() -> None:
    from geoforge.render.draw import _canvas, raster

    for seed in range(4):  # the first render paints the background, later ones copy it
        plan = layout(realise(parse_program(MARKED["ticks_and_arcs"]), seed=seed), size=300)
        ours = raster(plan)
        figure = _canvas(plan).canvas
        figure.draw()
        assert np.array_equal(ours, np.asarray(figure.buffer_rgba())[:, :, 0])
        assert (ours < 128).sum() > 500  # ink was drawn


def test_save_writes_png_and_svg(tmp_path: Path) -> None:
    scene = realise(parse_program("a b c = triangle a b c"), seed=0)
    written = save(scene, tmp_path / "tri.png", size=200, svg=True)
    assert written == [tmp_path / "tri.png", tmp_path / "tri.svg"]
    assert Image.open(written[0]).size == (200, 200)
    assert written[1].read_bytes().startswith(b"<?xml")
    # a path ending in .svg gets SVG alone: it used to get PNG bytes under the SVG name
    assert save(scene, tmp_path / "only.svg", size=200) == [tmp_path / "only.svg"]
    assert (tmp_path / "only.svg").read_bytes() == written[1].read_bytes()


def test_bad_size_and_format_are_refused() -> None:
    scene = realise(parse_program("a b c = triangle a b c"), seed=0)
    with pytest.raises(ValueError, match="too small"):
        layout(scene, size=32)
    with pytest.raises(ValueError, match="'png' or 'svg'"):
        render(scene, fmt="jpg")


def test_layout_does_not_import_matplotlib() -> None:
    code = (
        "import sys; from geoforge.program import parse_program; "
        "from geoforge.realise import realise; from geoforge.render import layout; "
        "layout(realise(parse_program('a b c = triangle a b c; mark angle a b c'), seed=0)); "
        "assert 'matplotlib' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _random_boxes(rng: np.random.Generator) -> np.ndarray:
    """40 boxes (40, 4) of 1 to 40 px a side on a 448-px image."""
    corner = rng.uniform(0, 400, (40, 2))
    return np.hstack([corner, corner + rng.uniform(1, 40, (40, 2))])


@given(seed=st.integers(0, 2**32 - 1), grow=st.floats(0, 12))
@settings(max_examples=60, deadline=None)
def test_segment_gaps_answer_every_clearance_like_the_direct_test(seed: int, grow: float) -> None:
    from geoforge.render.collide import boxes_hit_segments, inflate, segment_gaps

    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng)
    segments = rng.uniform(0, 448, (25, 4))
    segments[0, 2:] = segments[0, :2]  # a zero-length segment
    segments[1, 3] = segments[1, 1]  # a horizontal one
    expected = boxes_hit_segments(inflate(boxes, grow), segments)
    assert np.array_equal(segment_gaps(boxes, segments) <= grow, expected)


@given(seed=st.integers(0, 2**32 - 1), grow=st.floats(0, 12))
@settings(max_examples=60, deadline=None)
def test_disc_and_box_gaps_answer_every_clearance_like_the_direct_tests(seed: int, grow: float) -> None:
    from geoforge.render.collide import box_gaps, boxes_hit_boxes, boxes_hit_discs, disc_gaps, inflate

    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng)
    centres = rng.uniform(0, 448, (30, 2))
    others = boxes[rng.permutation(40)[:20]] + rng.uniform(-30, 30, (20, 4)).clip(-15, 15)
    others[:, 2:] = np.maximum(others[:, 2:], others[:, :2])
    grown = inflate(boxes, grow)
    gx, gy = disc_gaps(boxes, centres)
    distance = np.hypot(np.maximum(gx - grow, 0.0), np.maximum(gy - grow, 0.0))
    for radius in (0.0, 2.5, 9.0):
        expected = boxes_hit_discs(grown, centres, radius)
        tie = np.abs(distance - radius) < 1e-9
        assert np.array_equal((distance <= radius)[~tie], expected[~tie])
    gaps = box_gaps(boxes, others)
    tie = np.abs(gaps - grow) < 1e-9
    assert np.array_equal((gaps <= grow)[~tie], boxes_hit_boxes(grown, others)[~tie])


def test_point_requests_match_each_points_own_candidates_to_the_bit() -> None:
    from geoforge.render.place import _DIRS, RADII, RADIUS_COST, _candidates, _size_of

    rng = np.random.default_rng(3)
    names = ["A", "B1", "Mq", "x", "W'"]
    at = rng.uniform(40, 400, (5, 2))
    at[3] = at.mean(axis=0) + 1.0  # within one font size of the centre: no preferred direction
    centre, font = at.mean(axis=0), 16.0
    for i, request in enumerate(point_requests(names, at, centre, font)):
        away = at[i] - centre
        out = away / np.hypot(*away) if np.hypot(*away) > font else np.zeros(2)
        extent = request.extent
        boxes, cost = _candidates(
            at[i][None],
            np.zeros(1),
            _DIRS,
            0.6 * (1 - _DIRS @ out) / 2,
            RADII * font,
            RADIUS_COST,
            *_size_of(extent),
        )
        assert request.own == i and request.text == names[i]
        assert boxes.tobytes() == request.boxes.tobytes() and cost.tobytes() == request.cost.tobytes()
    # A subset, in any order, is the same requests, own index included.
    full = point_requests(names, at, centre, font)
    for request, i in zip(point_requests(names, at, centre, font, [3, 0]), (3, 0), strict=True):
        assert request.own == i and request.text == names[i]
        assert request.boxes.tobytes() == full[i].boxes.tobytes()
        assert request.cost.tobytes() == full[i].cost.tobytes()


def test_of_two_kept_boxes_too_close_to_each_other_the_first_stays_and_the_second_moves() -> None:
    from geoforge.render.place import Obstacles, place

    at = np.array([[200.0, 200.0], [250.0, 200.0]])
    requests = point_requests(["A", "B"], at, at.mean(axis=0), 16.0)
    # Each box alone is free and nearest its own point; they are 0.5 px apart (CLEAR: 2.24 px).
    keep = [np.array([207.0, 193.0, 219.0, 207.0]), np.array([219.5, 193.0, 231.5, 207.0])]
    obstacles = Obstacles(np.zeros((0, 4)), np.zeros((0, 3)), at, 3.0)
    alone = [place(requests[i : i + 1], obstacles, 448, 16.0, keep[i : i + 1])[0] for i in range(2)]
    assert [box.tolist() for box, _ in alone] == [k.tolist() for k in keep]
    (first, _), (second, clash) = place(requests, obstacles, 448, 16.0, keep)
    assert first.tolist() == keep[0].tolist() and second.tolist() != keep[1].tolist() and not clash
    assert max(first[0] - second[2], second[0] - first[2], first[1] - second[3], second[1] - first[3]) > 2.24


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 1.0), st.floats(0.0, 12.0), st.booleans())
@example(seed=5, share=1.0, shift=0.0, twin=True)
def test_place_builds_a_kept_labels_candidates_only_when_its_box_is_taken(
    seed: int, share: float, shift: float, twin: bool
) -> None:
    from geoforge.render.place import CLEAR, Obstacles, place

    rng = np.random.default_rng(seed)
    font, size = 16.0, 448
    at = rng.uniform(60, 390, (6, 2))
    names = ["A", "B", "C", "D", "E", "F"]
    full = point_requests(names, at, at.mean(axis=0), font)
    obstacles = Obstacles(rng.uniform(0, size, (4, 4)), np.array([[224.0, 224.0, 120.0]]), at, 3.0)
    first = place(full, obstacles, size, font)
    # Kept boxes: some labels' first boxes, shifted by up to ``shift`` px (then maybe taken).
    keep = [box + rng.uniform(-shift, shift, 4) if rng.uniform() < share else None for box, _ in first]
    if twin and keep[0] is not None:  # two kept boxes on top of each other: one must move
        keep[1] = keep[0] + 1.0
    asked: list[list[int]] = []

    def build(indices: list[int]) -> list:
        asked.append(list(indices))
        return [full[i] for i in indices]

    named = [
        dataclasses.replace(r, boxes=np.zeros((0, 4)), cost=np.zeros(0)) if box is not None else r
        for r, box in zip(full, keep)
    ]
    lazy = place(named, obstacles, size, font, keep, build)
    eager = place(full, obstacles, size, font, keep)
    for (a, clash_a), (b, clash_b) in zip(lazy, eager, strict=True):
        assert a.tobytes() == b.tobytes() and clash_a == clash_b
    rebuilt = asked[0] if asked else []
    assert len(asked) <= 1 and all(keep[i] is not None for i in rebuilt)
    for i in rebuilt:  # rebuilt: the kept box was not free, and was not simply kept
        assert lazy[i][0].tobytes() != np.asarray(keep[i], dtype=np.float64).tobytes() or lazy[i][1]
    # Kept boxes that stay keep clear of each other (scalar gaps, not place()'s own code).
    stayed = [k for k, (box, _) in enumerate(lazy) if keep[k] is not None and np.array_equal(box, keep[k])]
    for i in stayed:
        for j in stayed:
            a, b = keep[i], keep[j]
            if i < j:
                assert max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3]) > CLEAR * font
    if shift == 0.0 and not twin and not any(clash for _, clash in first):
        assert asked == []  # the first placement's own free boxes all stay


@given(seed=st.integers(0, 2**32 - 1), height=st.integers(1, 40), width=st.integers(1, 40))
@settings(max_examples=40, deadline=None)
def test_encode_png_decodes_to_the_same_pixels_with_pillow(seed: int, height: int, width: int) -> None:
    from geoforge.render.draw import encode_png

    grey = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    png = encode_png(grey)
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "L" and im.size == (width, height)
        assert np.array_equal(np.asarray(im), grey)
    assert encode_png(grey.copy()) == png


def test_encode_png_refuses_what_is_not_a_grey_image() -> None:
    from geoforge.render.draw import encode_png

    with pytest.raises(ValueError, match="2-D uint8 array, got 3-D uint8"):
        encode_png(np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="got 2-D float64"):
        encode_png(np.zeros((4, 4)))


@settings(max_examples=60, deadline=None)
@given(
    angle=st.one_of(st.sampled_from([0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0]), st.floats(0, 360)),
    length=st.floats(0.5, 5.0),
)
@example(angle=315.0, length=2 * math.sqrt(2))  # c = (2, -2): every old projection was 0
@example(angle=135.0, length=3 * math.sqrt(2))
def test_a_line_is_drawn_between_its_two_end_points_at_any_slope(angle: float, length: float) -> None:
    # `a` sorts first but lies between b and c: a line at -45° once put every point at one
    # projection, so the names ordered it and only `ac` was drawn
    t = math.radians(angle)
    x, y = round(length * math.cos(t), 9), round(length * math.sin(t), 9)
    (line,) = realise(parse_program(f"b@0_0 c@{x!r}_{y!r} = segment b c; a = midpoint a b c")).lines
    assert {line[0], line[-1]} == {"b", "c"} and line[1] == "a"
