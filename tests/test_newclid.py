"""Newclid's dialect: one test per syntax feature, on problems we wrote in Newclid's dialect,
each realised with its goals checked; and AlphaGeometry's JGEX set written in Newclid's order."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from geoforge.dialect import NEWCLID
from geoforge.errors import ProgramError, UsageError
from geoforge.problems import Problem, check_problem, read_problems
from geoforge.program import parse_program
from geoforge.realise import realise

AG = Path(__file__).parents[1] / "corpora" / "alphageometry"


def check(text: str, attempts: int = 8):  # type: ignore[no-untyped-def]
    """The check result of one Newclid-dialect problem."""
    return check_problem(Problem("t", text, "t.txt", 2), attempts=attempts, dialect=NEWCLID)


def assert_holds(text: str) -> None:
    result = check(text)
    assert result.status == "ok", result.reason
    assert result.residuals and max(result.residuals.values()) <= 1e-9


# --- literals and argument orders ---------------------------------------------------------


def test_degree_suffix_is_degrees_and_round_trips() -> None:
    text = "a b = segment a b; x = s_angle a b x 63o; y = s_angle a b y 153o ? aconst x b b y 90o"
    program = parse_program(text, dialect=NEWCLID)
    assert program.clauses[1].calls[0].args == ("a", "b", "x", "63")
    assert program.goals[0].args == ("x", "b", "b", "y", "90")
    assert program.text() == text
    assert_holds(text)
    scene = realise(program, seed=3)
    p = scene.points
    u, v = p["a"] - p["b"], p["x"] - p["b"]
    assert math.degrees(math.acos(u @ v / math.hypot(*u) / math.hypot(*v))) == pytest.approx(63)


def test_degree_suffix_is_a_bad_value_in_alphageometry_dialect() -> None:
    with pytest.raises(ProgramError, match="bad value `63o`"):
        parse_program("a b = segment a b; x = s_angle a b x 63o")


def test_parallelogram_takes_its_new_point_first() -> None:
    text = "a b c = triangle a b c; d = parallelogram d a b c ? para a b c d; para a d b c; cong a b c d"
    program = parse_program(text, dialect=NEWCLID)
    assert program.clauses[1].calls[0].args == ("a", "b", "c", "d")  # geoforge's (AG's) order
    assert program.text() == text
    assert program.text("alphageometry").startswith("a b c = triangle a b c; d = parallelogram a b c d")
    assert program.canonical_hash() == parse_program(program.text("alphageometry")).canonical_hash()
    assert_holds(text)


def test_square_takes_its_new_points_first() -> None:
    assert_holds("a b = segment a b; c d = square c d a b ? perp a b b c; cong a b b c; para a b c d")


def test_unknown_dialect_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown dialect 'jgex'"):
        parse_program("a = free a", dialect="jgex")


# --- Newclid's constructions ---------------------------------------------------------------


def test_between_puts_c_strictly_inside_ab() -> None:
    assert_holds("c a b = between c a b ? lequation 1/1 a c 1/1 c b -1/1 a b 0/1; obtuse_angle a c b")


def test_between_bound_puts_x_strictly_inside_ab() -> None:
    assert_holds("a b = segment a b; x = between_bound x a b ? obtuse_angle a x b; coll a x b")


def test_acute_triangle_has_its_orthocentre_inside() -> None:
    assert_holds(
        "a b c = acute_triangle a b c; h = orthocenter h a b c ? sameclock a b h a b c; sameclock b c h b c a"
    )


def test_cc_itangent_touches_both_circles_between_them() -> None:
    assert_holds(
        "o a = segment o a; w = mirror w o a; b = midpoint b a w; x y z i = cc_itangent x y z i o a w b "
        "? perp x o x y; perp y w y x; cong w y w b; perp z o z i"
    )


def test_l2const_fixes_the_squared_length() -> None:
    assert_holds("a = free a; b = l2const b a 2 ? l2const b a 2; lconst b a sqrt(2)")


def test_iso_trapezoid2_mirrors_c_in_the_bisector_of_ab() -> None:
    assert_holds("a b c = triangle a b c; x = iso_trapezoid2 x a b c ? cong x b a c; para a b c x")


def test_simtri_and_simtrir_as_constructions_keep_and_flip_orientation() -> None:
    base = "a b c = triangle a b c; p q = segment p q; "
    assert_holds(base + "r = simtri r a b c p q ? simtri a b c p q r; sameclock a b c p q r")
    assert_holds(base + "r = simtrir r a b c p q ? simtrir a b c p q r; simtri a b c p q r")
    flipped = check(base + "r = simtrir r a b c p q ? sameclock a b c p q r")
    assert flipped.status == "goal_failed"


def test_contri_and_contrir_as_constructions_keep_and_flip_orientation() -> None:
    base = "a b c = triangle a b c; p = free p; "
    assert_holds(base + "q r = contri q r a b c p ? contri a b c p q r; sameclock a b c p q r")
    assert_holds(base + "q r = contrir q r a b c p ? contrir a b c p q r; contri a b c p q r")
    assert check(base + "q r = contri q r a b c p ? contrir a b c p q r").status == "goal_failed"


# --- Newclid's goal predicates -------------------------------------------------------------


def test_sameside_and_obtuse_angle_goals() -> None:
    assert_holds("c a b = between c a b; d = between_bound d a b ? sameside c a b d a b; obtuse_angle a d b")
    outside = check("a b = segment a b; c = mirror c a b; d = between_bound d a b ? sameside c a b d a b")
    assert outside.status == "goal_failed"


def test_r2const_goal_is_the_squared_ratio() -> None:
    assert_holds("a b c = triangle a b c; m = midpoint m a b ? r2const a b a m 4; rconst a b a m 2")
    assert check("a b c = triangle a b c; m = midpoint m a b ? r2const a b a m 2").status == "goal_failed"


def test_aequation_sums_directed_angles() -> None:
    """∠(ab, bc) + ∠(ac, ao) = 90° for the circumcentre o (inscribed angle theorem)."""
    assert_holds("a b c = triangle a b c; o = circle o a b c ? aequation 1/1 a b b c 1/1 a c a o 90o")


def test_acompute_reports_the_measured_and_exact_angle() -> None:
    result = check("a b = segment a b; x = s_angle a b x 63o; y = s_angle a b y 153o ? acompute x b b y")
    assert result.status == "ok"
    (answer,) = result.answers.values()
    assert answer.value == pytest.approx(90)
    assert (answer.unit, answer.exact) == ("°", "90")
    assert answer.text() == "90° (exact 90°)"


def test_rcompute_and_lcompute_report_exact_values() -> None:
    result = check("a b = segment a b; m = midpoint m a b; c = lconst c a 3 ? rcompute m a a b; lcompute a c")
    assert {g: a.exact for g, a in result.answers.items()} == {"rcompute m a a b": "1/2", "lcompute a c": "3"}


# --- real problem files ----------------------------------------------------------------------


def test_jgex_in_newclids_argument_order_checks_231_of_231() -> None:
    """corpora/alphageometry/jgex_ag_231_newclid.txt is AlphaGeometry's file written in
    Newclid's dialect; it still matches the conversion, and every goal holds."""
    converted = AG / "jgex_ag_231_newclid.txt"
    problems = read_problems(converted)
    originals = read_problems(AG / "jgex_ag_231.txt")
    assert [p.name for p in problems] == [p.name for p in originals]
    assert [p.text for p in problems] == [parse_program(p.text).text(NEWCLID) for p in originals]
    text = converted.read_text()
    assert "parallelogram g d a e" in text and "d e = square d e a c" in text and "s_angle b a c 60o" in text
    results = [check_problem(p, dialect=NEWCLID) for p in problems]
    assert [r.name for r in results if r.status != "ok"] == []
    assert len(results) == 231
