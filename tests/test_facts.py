"""Residuals of facts on hand-built scenes: zero where a predicate holds exactly, and the known
amount (radians, fraction of the diagram size, or relative ratio) where it is broken."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from geoforge.facts import NEGATION_MARGIN, Fact, holds, parse_fact, residual
from geoforge.realise import _Partial

EXACT = 1e-12


@dataclass
class Pts:
    """The smallest scene a residual needs: named points, a size and a unit."""

    points: dict[str, np.ndarray]
    scale: float = 1.0
    unit: float = 1.0
    extra: dict[str, object] = field(default_factory=dict)


def scene(scale: float = 1.0, unit: float = 1.0, **xy: tuple[float, float]) -> Pts:
    return Pts({k: np.array(v, dtype=np.float64) for k, v in xy.items()}, scale, unit)


def polar(deg: float, r: float = 1.0, at: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    t = math.radians(deg)
    return (at[0] + r * math.cos(t), at[1] + r * math.sin(t))


def res(text: str, s: Pts) -> float:
    return residual(parse_fact(text), s)


# --- angle facts: radians ---------------------------------------------------------------


@pytest.mark.parametrize("tilt", [0.0, 17.0, 133.0])
def test_perp_holds_at_right_angle_and_is_off_by_the_angle_error(tilt: float) -> None:
    exact = scene(a=(0, 0), b=polar(tilt), c=(0.3, 0.2), d=polar(tilt + 90, at=(0.3, 0.2)))
    off = scene(a=(0, 0), b=polar(tilt), c=(0.3, 0.2), d=polar(tilt + 100, at=(0.3, 0.2)))
    assert res("perp a b c d", exact) < EXACT
    assert res("perp a b c d", off) == pytest.approx(math.radians(10), abs=EXACT)


def test_para_holds_for_parallel_lines_either_way_round_and_is_off_by_the_angle() -> None:
    s = scene(a=(0, 0), b=(1, 0.5), c=(3, 1), d=(1, 0))
    assert res("para a b c d", s) < EXACT
    assert res("para a b d c", s) < EXACT
    off = scene(a=(0, 0), b=(1, 0), c=(0, 1), d=polar(190, at=(0, 1)))
    assert res("para a b c d", off) == pytest.approx(math.radians(10), abs=EXACT)
    assert res("perp a b c d", off) == pytest.approx(math.radians(80), abs=EXACT)


def test_eqangle_compares_directed_line_angles_modulo_pi() -> None:
    # ∠(ab, cd) = 30° and ∠(ef, gh) = 30° at another place and orientation.
    s = scene(
        a=(0, 0), b=(1, 0), c=(0, 0), d=polar(30),
        e=(2, 2), f=polar(70, at=(2, 2)), g=(2, 2), h=polar(100, at=(2, 2)),
    )  # fmt: skip
    assert res("eqangle a b c d e f g h", s) < EXACT
    # Reversing one line of a pair does not change a line angle.
    assert res("eqangle b a c d e f h g", s) < EXACT
    # 40° instead of 30°: off by 10°.
    off = scene(
        a=(0, 0), b=(1, 0), c=(0, 0), d=polar(30),
        e=(2, 2), f=polar(70, at=(2, 2)), g=(2, 2), h=polar(110, at=(2, 2)),
    )  # fmt: skip
    assert res("eqangle a b c d e f g h", off) == pytest.approx(math.radians(10), abs=EXACT)


def test_eqangle_with_mirrored_angle_fails_by_twice_the_angle() -> None:
    # ∠(ab, cd) = +30° but ∠(ef, gh) = −30°: directed angles differ by 60°.
    s = scene(a=(0, 0), b=(1, 0), c=(0, 0), d=polar(30), e=(0, 0), f=(1, 0), g=(0, 0), h=polar(-30))
    assert res("eqangle a b c d e f g h", s) == pytest.approx(math.radians(60), abs=EXACT)


def test_angle_value_is_undirected_degrees_and_off_by_the_error_in_radians() -> None:
    s = scene(a=polar(0), b=(0, 0), c=polar(-72))
    assert res("angle a b c 72", s) < EXACT
    assert res("angle c b a 72", s) < EXACT
    assert res("angle a b c 82", s) == pytest.approx(math.radians(10), abs=EXACT)


def test_s_angle_rotates_line_ba_counter_clockwise_about_b_by_degrees() -> None:
    # AlphaGeometry: x lies on the line through b at directed angle y from line ba.
    s = scene(a=(3, 1), b=(1, 1), x=polar(40, r=2, at=(1, 1)))
    assert res("s_angle a b x 40", s) < EXACT
    # A line has no orientation: 40° and 40° − 180° are the same line.
    assert res("s_angle a b x -140", s) < EXACT
    # The clockwise angle is a different line: off by 80°.
    assert res("s_angle a b x -40", s) == pytest.approx(math.radians(80), abs=EXACT)
    # Newclid's aconst a b b x r is the same fact; r with `pi` is radians.
    assert res("aconst a b b x 2pi/9", s) < EXACT
    assert res("aconst a b b x 40", s) < EXACT
    assert res("aconst a b b x 50", s) == pytest.approx(math.radians(10), abs=EXACT)


# --- length facts: fraction of the diagram size --------------------------------------------


def test_coll_is_the_distance_off_the_line_over_the_scale() -> None:
    assert res("coll a b c", scene(a=(0, 0), b=(2, 0), c=(0.7, 0))) < EXACT
    assert res("coll a b c", scene(scale=2.0, a=(0, 0), b=(2, 0), c=(1, 0.1))) == pytest.approx(
        0.05, abs=EXACT
    )


def test_cong_is_the_length_difference_over_the_scale() -> None:
    s = scene(scale=4.0, a=(0, 0), b=(1, 0), c=(2, 2), d=polar(57, r=1.12, at=(2, 2)))
    assert res("cong a b c d", s) == pytest.approx(0.12 / 4, abs=EXACT)
    t = scene(scale=4.0, a=(0, 0), b=(1, 0), c=(2, 2), d=polar(57, r=1.0, at=(2, 2)))
    assert res("cong a b c d", t) < EXACT


def test_midp_and_circle_hold_exactly_and_measure_the_displacement() -> None:
    s = scene(scale=2.0, a=(0, 0), b=(2, 0), m=(1, 0), n=(1, 0.3))
    assert res("midp m a b", s) < EXACT
    assert res("midp n a b", s) == pytest.approx(0.15, abs=EXACT)
    c = scene(scale=2.0, o=(0, 0), a=polar(10), b=polar(100), c=polar(250), d=polar(250, r=1.2))
    assert res("circle o a b c", c) < EXACT
    assert res("circle o a b d", c) == pytest.approx(0.1, abs=EXACT)


def test_cyclic_holds_for_concyclic_points_and_measures_radial_error() -> None:
    # a, b, c are the widest triple, so the circle is fitted through them; e is 0.1 outside.
    s = scene(
        scale=2.0, a=polar(90, at=(1, 1)), b=polar(210, at=(1, 1)), c=polar(330, at=(1, 1)),
        d=polar(20, at=(1, 1)), e=polar(20, r=1.1, at=(1, 1)),
    )  # fmt: skip
    assert res("cyclic a b c d", s) < EXACT
    assert res("cyclic a b c e", s) == pytest.approx(0.05, abs=1e-9)


def test_cyclic_with_collinear_points_is_infinite() -> None:
    s = scene(a=(0, 0), b=(1, 0), c=(2, 0), d=(3.5, 0))
    assert res("cyclic a b c d", s) == math.inf
    assert not holds(parse_fact("cyclic a b c d"), s)


def test_contri_is_the_largest_side_difference_over_the_scale() -> None:
    s = scene(
        scale=2.0, a=(0, 0), b=(3, 0), c=(0, 4),
        x=(5, 5), y=(5, 8), z=(1, 5), w=(1.2, 5),
    )  # fmt: skip
    assert res("contri a b c x y z", s) < EXACT
    # |zx| is 4 but |wx| is 3.8 and |yw| = sqrt(9 + 3.8²): the worst gap is |wx| vs |ca|.
    worst = max(abs(4 - 3.8), abs(5 - math.hypot(3, 3.8)))
    assert res("contri a b c x y w", s) == pytest.approx(worst / 2, abs=EXACT)


# --- ratio facts: relative difference ---------------------------------------------------


def test_eqratio_off_by_twelve_percent_gives_the_relative_gap() -> None:
    s = scene(
        a=(0, 0), b=(1, 0), c=(0, 1), d=(0, 4), e=(5, 5), f=(5, 7), g=(1, 1), h=(7, 1),
        k=(1 + 6 * 1.12, 1),
    )  # fmt: skip
    assert res("eqratio a b c d e f g h", s) < EXACT
    # |ab|/|cd| = 1/3 against |ef|/|gk| = 2/6.72: gap (1/3 − 2/6.72) / (1/3) = 0.12/1.12.
    assert res("eqratio a b c d e f g k", s) == pytest.approx(0.12 / 1.12, abs=EXACT)


def test_length_uses_the_scene_unit_and_is_relative() -> None:
    s = scene(unit=2.0, a=(0, 0), b=(1.5, 0))
    assert res("length a b 3", s) < EXACT
    assert res("length a b 3*sqrt(2)", scene(unit=1.0, a=(0, 0), b=(3, 3))) < EXACT
    off = scene(unit=1.0, a=(0, 0), b=(1.12, 0))
    assert res("length a b 1", off) == pytest.approx(0.12 / 1.12, abs=EXACT)


def test_rconst_and_lconst_measure_ratio_and_distance() -> None:
    s = scene(scale=2.0, a=(0, 0), b=(1, 0), c=(3, 0), d=(3, 2), e=(3, 2.24))
    assert res("rconst a b c d 1/2", s) < EXACT
    # |ab|/|ce| = 1/2.24 against 1/2: gap (1/2 − 1/2.24) / (1/2).
    assert res("rconst a b c e 1/2", s) == pytest.approx(1 - 2 / 2.24, abs=EXACT)
    assert res("lconst c d 2", s) < EXACT
    assert res("lconst c e 2", s) == pytest.approx(0.12, abs=EXACT)


def test_simtri_holds_for_a_scaled_rotated_copy_and_not_a_distorted_one() -> None:
    s = scene(
        a=(0, 0), b=(3, 0), c=(0, 4),
        x=(1, 1), y=(1, 7), z=(-7, 1), w=(-6, 1),
    )  # fmt: skip
    assert res("simtri a b c x y z", s) < EXACT
    # Sides 3, 5, 4 against 6, 10, 8 are in ratio 1/2; against xyw: 6, sqrt(85), 7.
    r = [3 / 6, 5 / math.hypot(7, 6), 4 / 7]
    want = max(abs(r[0] - q) / max(r[0], q) for q in r[1:])
    assert res("simtri a b c x y w", s) == pytest.approx(want, abs=EXACT)


# --- negations and undefined facts ------------------------------------------------------


def test_negated_facts_are_zero_when_clear_and_the_shortfall_otherwise() -> None:
    s = scene(a=(0, 0), b=(1, 0), c=(2, 0), d=(1, 1))
    assert res("ncoll a b d", s) == 0.0
    assert res("ncoll a b c", s) == pytest.approx(NEGATION_MARGIN, abs=EXACT)
    assert res("diff a b", s) == 0.0
    assert res("diff a a", s) == pytest.approx(NEGATION_MARGIN, abs=EXACT)
    assert res("npara a b b d", s) == 0.0
    assert res("npara a b b c", s) == pytest.approx(NEGATION_MARGIN, abs=EXACT)
    assert res("nperp a b b c", s) == 0.0
    assert res("nperp a b b d", s) == pytest.approx(NEGATION_MARGIN, abs=EXACT)


def test_angle_facts_on_a_zero_length_segment_are_infinite() -> None:
    s = scene(a=(0, 0), b=(1, 0), c=(1, 0))
    assert res("perp a b b c", s) == math.inf
    assert res("para b c a b", s) == math.inf
    assert res("eqangle a b b c a b a c", s) == math.inf


# --- shapes -------------------------------------------------------------------------------


def _quad(*corners: tuple[float, float]) -> Pts:
    return scene(**dict(zip("abcd", corners)))


SQUARE = _quad((0, 0), (1, 0), (1, 1), (0, 1))
RHOMBUS = _quad((0, 0), (1, 0), polar(60, at=(1, 0)), polar(60))
RECTANGLE = _quad((0, 0), (2, 0), (2, 1), (0, 1))


@pytest.mark.parametrize("kind", ["square", "rhombus", "rectangle", "parallelogram"])
def test_a_square_is_every_kind_of_parallelogram(kind: str) -> None:
    assert res(f"shape {kind} a b c d", SQUARE) < EXACT


def test_rhombus_is_not_a_square_or_rectangle_by_its_angle_error() -> None:
    assert res("shape rhombus a b c d", RHOMBUS) < EXACT
    assert res("shape parallelogram a b c d", RHOMBUS) < EXACT
    # The corner angle is 120°, so the perpendicularity check is off by 30°.
    assert res("shape rectangle a b c d", RHOMBUS) == pytest.approx(math.pi / 6, abs=EXACT)
    assert res("shape square a b c d", RHOMBUS) == pytest.approx(math.pi / 6, abs=EXACT)


def test_rectangle_is_not_a_square_or_rhombus_by_its_side_difference() -> None:
    assert res("shape rectangle a b c d", RECTANGLE) < EXACT
    # Sides 2 and 1 on a scene of scale 1.
    assert res("shape rhombus a b c d", RECTANGLE) == pytest.approx(1.0, abs=EXACT)
    assert res("shape square a b c d", RECTANGLE) == pytest.approx(1.0, abs=EXACT)


def test_vertex_order_matters_for_shape() -> None:
    # abdc is the square's crossed (bow-tie) order: not a parallelogram.
    assert res("shape square a b d c", SQUARE) > 0.5


def test_residual_accepts_the_realisers_partial_scene() -> None:
    part = _Partial({"a": np.array([0.0, 0.0]), "b": np.array([3.0, 4.0]), "c": np.array([3.0, 0.0])})
    assert part.scale == pytest.approx(5.0)
    assert residual(Fact("perp", ("a", "c", "c", "b")), part) < EXACT
    assert residual(Fact("cong", ("a", "c", "c", "b")), part) == pytest.approx(1 / 5, abs=EXACT)
