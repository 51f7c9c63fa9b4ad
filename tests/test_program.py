"""Diagram programs: text and JSON round trips, the canonical hash, DSL variants, and one-line
errors that name the clause."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from geoforge.constructions import REGISTRY, Construction
from geoforge.errors import ProgramError, RealiseError
from geoforge.facts import PREDICATES
from geoforge.problems import read_problems
from geoforge.program import Program, parse_program
from geoforge.realise import realise

AG = Path(__file__).parents[1] / "corpora" / "alphageometry"


def corpus(name: str) -> list[tuple[str, str]]:
    return [(p.name, p.text) for p in read_problems(AG / name)]


def assert_round_trips(program: Program) -> None:
    """text → IR → text, IR → JSON (dict and text) → IR give equal programs and one hash."""
    again = parse_program(program.text())
    assert again == program
    assert again.text() == program.text()
    from_dict = Program.from_json(program.to_json())
    from_text = Program.from_json(json.dumps(program.to_json()))
    assert from_dict == program
    assert from_text == program
    hashes = {p.canonical_hash() for p in (program, again, from_dict, from_text)}
    assert hashes == {program.canonical_hash()}
    # The canonical text is itself a valid program with the same canonical form.
    assert parse_program(program.canonical()).canonical() == program.canonical()


# --- corpora ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jgex_ag_231.txt", "examples.txt"])
def test_every_alphageometry_problem_round_trips_with_the_same_hash(name: str) -> None:
    problems = corpus(name)
    assert len(problems) == {"jgex_ag_231.txt": 231, "examples.txt": 4}[name]
    for title, text in problems:
        program = parse_program(text, source=title)
        assert program.goals, title
        assert_round_trips(program)


def test_the_231_different_jgex_problems_have_231_different_hashes() -> None:
    programs = [parse_program(text) for _, text in corpus("jgex_ag_231.txt")]
    hashes = [p.canonical_hash() for p in programs]
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in hashes)
    assert len(set(hashes)) == 231


# --- generated programs ------------------------------------------------------------------

LITERALS = {
    "s_angle": st.sampled_from(["40", "-75", "120", "pi/3"]),
    "aconst": st.sampled_from(["2pi/5", "pi/3", "45", "-30"]),
    "rconst": st.sampled_from(["3/2", "1/2", "2"]),
    "rconst2": st.sampled_from(["3/2", "1/3"]),
    "lconst": st.sampled_from(["1.3", "sqrt(2)", "3*sqrt(2)/2"]),
    "l2const": st.sampled_from(["2", "9/4"]),
    "r2const": st.sampled_from(["4", "1/2"]),
}
FREE = sorted(n for n, c in REGISTRY.items() if not c.inputs and not c.literals)
BUILT = sorted(n for n, c in REGISTRY.items() if c.inputs)
SINGLE = sorted(n for n in BUILT if len(REGISTRY[n].outputs) == 1)
#: Point names, including ones that look like literals or keywords (`pi`, `draw`, `given`).
POOL = (
    [chr(c) for c in range(ord("a"), ord("z") + 1)]
    + [f"{c}{d}" for c in "ABPxy" for d in "0123"]
    + ["a'", "b''", "p_1", "Q_r", "pi", "draw", "mark", "given", "shape", "pt9"]
)
GOALS = ["coll", "perp", "para", "cong", "cyclic", "eqangle", "midp", "eqratio"]


def _call(draw, c: Construction, inputs: list[str], outputs: list[str]) -> str:
    it, out = iter(inputs), iter(outputs)
    args = [
        draw(LITERALS[c.name]) if p in c.literals else next(out) if p in c.outputs else next(it)
        for p in c.params
    ]
    return " ".join((c.name, *args))


@st.composite
def programs(draw) -> str:
    """A random valid program text: a free shape, then clauses of random constructions over
    earlier points (some with two calls, some pinned, some after `|`), statements and goals."""
    fresh = iter(draw(st.permutations(POOL)))
    clauses: list[str] = []
    defined: list[str] = []
    shape = REGISTRY[draw(st.sampled_from(FREE))]
    pts = [next(fresh) for _ in shape.outputs]
    clauses.append(f"{' '.join(pts)} = {_call(draw, shape, [], pts)}")
    defined += pts
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from([n for n in BUILT if len(REGISTRY[n].inputs) <= len(defined)]))
        c = REGISTRY[name]
        outs = [next(fresh) for _ in c.outputs]
        calls = [_call(draw, c, draw(st.permutations(defined))[: len(c.inputs)], outs)]
        if len(outs) == 1 and draw(st.booleans()):
            other = REGISTRY[
                draw(st.sampled_from([n for n in SINGLE if len(REGISTRY[n].inputs) <= len(defined)]))
            ]
            calls.append(_call(draw, other, draw(st.permutations(defined))[: len(other.inputs)], outs))
        lhs = " ".join(outs)
        if draw(st.integers(0, 5)) == 0:
            xy = st.floats(-10, 10, allow_nan=False, width=64)
            lhs = " ".join(f"{p}@{draw(xy)!r}_{draw(xy)!r}" for p in outs)
        clauses.append(f"{lhs} = {', '.join(calls)}")
        defined += outs
    statements = []
    pick = st.sampled_from(defined)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["draw segment", "draw circle", "mark right", "mark equal",
                                     "given length", "given angle", "draw polygon"]))  # fmt: skip
        n = {"draw segment": 2, "draw circle": 2, "mark right": 3, "mark equal": 4,
             "given length": 2, "given angle": 3, "draw polygon": 4}[kind]  # fmt: skip
        value = {"given length": ["3*sqrt(2)"], "given angle": ["60"]}.get(kind, [])
        statements.append(" ".join([kind, *(draw(pick) for _ in range(n)), *value]))
    split = draw(st.integers(1, len(clauses)))
    main = "; ".join(clauses[:split])
    rest = "; ".join(clauses[split:] + statements)
    text = f"{main} | {rest}" if split < len(clauses) else "; ".join([main, *statements])
    goals = []
    for _ in range(draw(st.integers(0, 2))):
        g = draw(st.sampled_from(GOALS))
        arity = abs(PREDICATES[g].arity)
        goals.append(" ".join([g, *(draw(pick) for _ in range(arity))]))
    return text + (" ? " + "; ".join(goals) if goals else "")


def _rename(program: Program, mapping: dict[str, str]) -> Program:
    """The program with points renamed, literals kept, through its JSON form."""
    data = program.to_json()
    for clause in data["clauses"]:
        clause["points"] = [mapping[p] for p in clause["points"]]
        clause["pinned"] = {mapping[p]: xy for p, xy in clause["pinned"].items()}
        for call in clause["calls"]:
            c = REGISTRY[call["name"]]
            call["args"] = [a if p in c.literals else mapping[a] for p, a in zip(c.params, call["args"])]
    for s in data["statements"]:
        n = len(s["args"]) - (s["kind"] == "given")
        s["args"] = [mapping[a] for a in s["args"][:n]] + s["args"][n:]
    for g in data["goals"]:
        spec = PREDICATES[g["name"]]
        n = len(g["args"])
        g["args"] = [a if spec.is_literal(i, n) else mapping[a] for i, a in enumerate(g["args"])]
    return Program.from_json(data)


GENERATED = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@GENERATED
@given(text=programs())
def test_generated_programs_round_trip_through_text_and_json(text: str) -> None:
    program = parse_program(text)
    assert parse_program(text) == program
    assert_round_trips(program)


@GENERATED
@given(text=programs(), data=st.data())
def test_canonical_hash_ignores_point_names(text: str, data) -> None:
    program = parse_program(text)
    names = data.draw(st.permutations(POOL))[: len(program.points)]
    renamed = _rename(program, dict(zip(program.points, names)))
    assert renamed.points == tuple(names)
    assert renamed.canonical_hash() == program.canonical_hash()


@GENERATED
@given(first=programs(), second=programs(), data=st.data())
def test_same_canonical_is_equal_canonical_hashes(first: str, second: str, data) -> None:
    a, b = parse_program(first), parse_program(second)
    names = data.draw(st.permutations(POOL))[: len(a.points)]
    renamed = _rename(a, dict(zip(a.points, names)))
    assert a.same_canonical(renamed) and renamed.same_canonical(a)
    for x, y in ((a, b), (b, a), (a, a.replace(goals=()))):
        assert x.same_canonical(y) == (x.canonical_hash() == y.canonical_hash())


@GENERATED
@given(text=programs())
def test_canonical_hash_ignores_call_order_inside_a_clause(text: str) -> None:
    program = parse_program(text)
    assume(any(len(set(c.calls)) > 1 for c in program.clauses))
    data = program.to_json()
    for clause in data["clauses"]:
        clause["calls"].reverse()
    swapped = Program.from_json(data)
    assert swapped != program
    assert swapped.canonical_hash() == program.canonical_hash()


def _twins(c: Construction) -> list[str]:
    """Other constructions with the same parameter layout."""
    layout = [(p in c.outputs, p in c.literals) for p in c.params]
    return sorted(
        n
        for n, o in REGISTRY.items()
        if n != c.name and [(p in o.outputs, p in o.literals) for p in o.params] == layout
    )


@GENERATED
@given(text=programs(), data=st.data())
def test_canonical_hash_changes_when_a_construction_changes(text: str, data) -> None:
    program = parse_program(text)
    spots = [
        (i, j)
        for i, clause in enumerate(program.clauses)
        for j, call in enumerate(clause.calls)
        if _twins(REGISTRY[call.name])
    ]
    assume(spots)
    i, j = data.draw(st.sampled_from(spots))
    json_ = program.to_json()
    call = json_["clauses"][i]["calls"][j]
    call["name"] = data.draw(st.sampled_from(_twins(REGISTRY[call["name"]])))
    changed = Program.from_json(json_)
    assert changed.canonical_hash() != program.canonical_hash()


def test_canonical_hash_examples() -> None:
    a = parse_program("a b c = triangle a b c; h = on_tline h b a c, on_tline h c a b ? perp a h b c")
    b = parse_program("p q r = triangle p q r; k = on_tline k r p q, on_tline k q p r ? perp p k q r")
    c = parse_program("a b c = triangle a b c; h = on_tline h b a c, on_pline h c a b ? perp a h b c")
    assert a.canonical_hash() == b.canonical_hash()
    assert a.canonical_hash() != c.canonical_hash()
    assert a.canonical() == (
        "p0 p1 p2 = triangle p0 p1 p2; p3 = on_tline p3 p1 p0 p2, on_tline p3 p2 p0 p1 ? perp p0 p3 p1 p2"
    )


def test_canonical_form_keeps_a_literal_named_like_a_point() -> None:
    """Regression: the literal `pi` was renamed with a point called `pi`, so renaming that
    point changed the hash and the canonical text did not parse."""
    named_pi = parse_program("a b c = triangle a b c; pi = midpoint pi a b; x = aconst a b c x pi")
    named_m = parse_program("a b c = triangle a b c; m = midpoint m a b; x = aconst a b c x pi")
    assert named_pi.canonical() == named_m.canonical()
    assert named_pi.canonical().endswith("p4 = aconst p0 p1 p2 p4 pi")
    assert parse_program(named_pi.canonical()) == parse_program(named_m.canonical())


# --- variants ----------------------------------------------------------------------------


def test_short_form_without_output_names_equals_the_full_form() -> None:
    short = parse_program("a b c = triangle a b c; h = on_tline b a c")
    full = parse_program("a b c = triangle a b c; h = on_tline h b a c")
    assert short == full
    assert short.clauses[1].calls[0].args == ("h", "b", "a", "c")
    assert short.text() == "a b c = triangle a b c; h = on_tline h b a c"


def test_free_shape_without_arguments_names_the_clause_points() -> None:
    assert parse_program("a b c = triangle") == parse_program("a b c = triangle a b c")
    incircle = parse_program("a b c = triangle a b c; d1 d2 d3 d = incenter2 a b c")
    assert incircle.clauses[1].calls[0].args == ("d1", "d2", "d3", "d", "a", "b", "c")


def test_pinned_coordinates_round_trip_and_realise_where_pinned() -> None:
    program = parse_program("x@4.96_-0.13 = free x; y@-1e-05_2.5 = free y; z = midpoint z x y")
    assert program.clauses[0].pinned == (("x", 4.96, -0.13),)
    assert program.text().startswith("x@4.96_-0.13 = free x; y@-1e-05_2.5 = free y;")
    assert_round_trips(program)
    scene = realise(program, seed=3)
    assert scene.points["x"].tolist() == [4.96, -0.13]
    assert scene.points["y"].tolist() == [-1e-05, 2.5]
    assert np.allclose(scene.points["z"], [(4.96 - 1e-05) / 2, (2.5 - 0.13) / 2], atol=1e-15)


def test_pinned_closeness_scales_with_a_small_pinned_figure() -> None:
    """Points 0.0035 apart are 25% of a pinned figure of size 0.014: not coincident."""
    scene = realise(parse_program("a@0_0 b@0.01_0 c@0_0.01 = triangle a b c; d@0.003_0.002 = free d"), seed=1)
    assert scene.tries == 1
    assert scene.points["d"].tolist() == [0.003, 0.002]


def test_a_clause_of_pinned_points_fails_once_with_the_distance() -> None:
    program = parse_program("a@0_0 b@1_0 c@0_1 = triangle a b c; d@0.005_0.0001 = free d")
    with pytest.raises(RealiseError) as info:
        realise(program, seed=0)
    assert str(info.value) == (
        "cannot realise clause 2 `d@0.005_0.0001 = free d` after 1 tries: point `d` nearly coincides "
        "with `a` (0.005 apart, under 2% of the figure size 1.41)"
    )


def test_newclid_auxiliary_clauses_after_the_bar_are_marked_aux() -> None:
    text = "a b c = triangle a b c; d = midpoint d a b | e = midpoint e a c; f = foot f a b c ? para d e b c"
    program = parse_program(text)
    assert [c.aux for c in program.clauses] == [False, False, True, True]
    assert program.text() == text
    assert_round_trips(program)
    plain = parse_program(text.replace(" |", ";"))
    assert plain.canonical_hash() != program.canonical_hash()


def test_draw_mark_and_given_statements_parse_and_round_trip() -> None:
    text = (
        "a b c = triangle a b c; h = foot h a b c; draw segment a h; draw circumcircle a b c; "
        "draw polygon a b c; mark right a h b; mark equal a b a c; mark angle b a c; "
        "given length a b 3*sqrt(2); given angle b a c 60"
    )
    program = parse_program(text)
    assert [(s.kind, s.name) for s in program.statements] == [
        ("draw", "segment"), ("draw", "circumcircle"), ("draw", "polygon"), ("mark", "right"),
        ("mark", "equal"), ("mark", "angle"), ("given", "length"), ("given", "angle"),
    ]  # fmt: skip
    assert program.statements[-2].points == ("a", "b")
    assert program.statements[-2].args == ("a", "b", "3*sqrt(2)")
    assert program.text() == text
    assert_round_trips(program)


def test_several_goals_after_the_question_mark() -> None:
    program = parse_program(
        "a b c = triangle a b c; h = orthocenter h a b c ? perp a h b c; perp b h c a;coll a a h"
    )
    assert [g.text() for g in program.goals] == ["perp a h b c", "perp b h c a", "coll a a h"]
    assert program.text().endswith("? perp a h b c; perp b h c a; coll a a h")
    assert_round_trips(program)


# --- errors ------------------------------------------------------------------------------


def _error(text: str, source: str = "") -> str:
    with pytest.raises(ProgramError) as info:
        parse_program(text, source=source)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_construction_suggests_the_close_match() -> None:
    message = _error("a b c = triangle a b c; d = foo t d a b", source="p.txt:2")
    assert message == (
        "p.txt:2:29: clause 2 `d = foo t d a b`: unknown construction `foo` (did you mean `foot`?)"
    )


def test_wrong_arity_shows_the_expected_forms() -> None:
    message = _error("a b c = triangle a b c; x = foot x a b")
    assert message.startswith("column 29: clause 2 `x = foot x a b`: ")
    assert "`foot` takes 4 arguments, got 3" in message
    assert "expected `x = foot x a b c` or `x = foot a b c`" in message


def test_undefined_point_is_named() -> None:
    message = _error("a b c = triangle a b c; x = foot x a b q")
    assert message == "column 40: clause 2 `x = foot x a b q`: undefined point `q`"


def test_revalidating_an_edited_program_still_finds_an_undefined_input() -> None:
    program = parse_program("a b c = triangle a b c; m = midpoint m a b; x = foot x m b c")
    swapped = program.replace  # a validated program's calls are in full form: the fast path
    with pytest.raises(ProgramError, match="undefined point `m`"):
        swapped(clauses=(program.clauses[0], program.clauses[2], program.clauses[1]))
    assert swapped() == program


def test_duplicate_point_is_named_with_its_clause() -> None:
    message = _error("a b c = triangle a b c; m = midpoint m a b; m = midpoint m b c")
    assert message == "column 45: clause 3 `m = midpoint m b c`: point `m` is already defined"


def test_malformed_clause_without_equals() -> None:
    message = _error("a b c triangle")
    assert message.startswith("column 1: clause 1 `a b c triangle`: malformed clause")
    assert "expected `points = construction args`" in message


def test_bad_literal_names_the_clause() -> None:
    """Regression: a bad literal's error named neither the clause index nor the source."""
    message = _error("a b = segment a b; x = s_angle a b x 4o", source="p.txt:5")
    assert message.startswith("p.txt:5:38: clause 2 `x = s_angle a b x 4o`: bad value `4o`")
    given_ = _error("a b c = triangle a b c; given length a b 3**", source="p.txt:7")
    assert given_.startswith("p.txt:7:42: clause 2 `given length a b 3**`: bad value `3**`")
    goal = _error("a b c = triangle a b c ? angle a b c 6o", source="p.txt:9")
    assert goal.startswith("p.txt:9:38: goal `angle a b c 6o`: bad value `6o`")


def test_unknown_goal_predicate_suggests_the_close_match() -> None:
    message = _error("a b c = triangle a b c ? prep a b a c")
    assert "`prep a b a c`" in message
    assert "unknown predicate `prep` (did you mean `perp`?)" in message


# --- programs that cannot be realised ------------------------------------------------------


def test_parallel_lines_cannot_meet() -> None:
    program = parse_program(
        "a b = segment a b; c = free c; d = on_pline d c a b, on_line d a b", source="p.txt:4"
    )
    with pytest.raises(RealiseError) as info:
        realise(program, seed=5)
    e = info.value
    assert e.clause == 3
    assert str(e) == (
        "p.txt:4: cannot realise clause 3 `d = on_pline d c a b, on_line d a b` after 100 tries: "
        "near-parallel lines (angle 0.000°)"
    )


def test_a_point_built_twice_fails_after_half_the_attempts() -> None:
    """Both midpoints of ab are one point whatever a and b are: no restart can separate them, so
    the realiser stops after half of max_tries attempts instead of all of them."""
    program = parse_program("a b = segment a b; m = midpoint m a b; n = midpoint n a b")
    with pytest.raises(RealiseError) as info:
        realise(program, seed=0, max_tries=50)
    assert info.value.tries == 25
    assert info.value.clause == 3
    assert "point `n` nearly coincides with `m` (0 apart" in str(info.value)


def test_realising_near_a_reference_resumes_after_shared_clauses_with_the_same_result() -> None:
    """Negatives of one positive share its first clauses; the second realisation resumes after
    them (geoforge.realise._Prefixes) and must equal a realisation from scratch, floats and
    attempts included."""
    import geoforge.realise as realise_module

    text = "a b c = triangle a b c; d = on_line d b c; e = on_circle e a b; f = midpoint f d e"
    positive = realise(parse_program(text), seed=3)
    changed = [
        text,
        text.replace("f = midpoint f d e", "f = on_line f d e"),
        text.replace("e = on_circle e a b", "e = on_line e a c"),
    ]
    resumed = [realise(parse_program(t), seed=3, max_tries=3, reference=positive.points) for t in changed]
    realise_module._PREFIXES.__init__()  # forget the shared clauses
    fresh = []
    for t in changed:
        fresh.append(realise(parse_program(t), seed=3, max_tries=3, reference=positive.points))
        realise_module._PREFIXES.__init__()
    for a, b in zip(resumed, fresh):
        assert a.tries == b.tries
        assert {n: p.tolist() for n, p in a.points.items()} == {n: p.tolist() for n, p in b.points.items()}


def test_circle_and_line_that_never_meet() -> None:
    # The circle about a through the midpoint of ab has radius |ab|/2; the perpendicular to
    # ab at b is |ab| away from a.
    program = parse_program("a b = segment a b; m = midpoint m a b; d = on_circle d a m, on_tline d b a b")
    with pytest.raises(RealiseError) as info:
        realise(program, seed=0, max_tries=7)
    assert str(info.value) == (
        "cannot realise clause 3 `d = on_circle d a m, on_tline d b a b` after 7 tries: line misses circle"
    )


def test_a_point_that_is_a_placed_one_by_an_earlier_random_choice_still_realises() -> None:
    """JGEX E051-7: the bisector of ∠CBD is that of ∠CBA when D falls on ray BA, so G is E in
    those samples only; the realiser restarts instead of giving up at the first coincidence."""
    program = parse_program(
        "a b c = triangle a b c; d = on_line d a b; e = angle_bisector e c b a, on_line e a c; "
        "f = on_pline f e a b, on_line f b c; g = angle_bisector g c b d, on_line g e f"
    )
    scene = realise(program, seed=0, max_tries=100)
    assert scene.tries > 1  # the first attempt put D on ray BA
    assert (
        min(float(np.linalg.norm(scene.points["g"] - scene.points[p])) for p in "abcdef") > 0.02 * scene.scale
    )


@given(
    whole=st.integers(0, 10**6),
    sign=st.sampled_from(["", "-"]),
    digits=st.text("0123456789", min_size=1, max_size=6),
    den=st.integers(1, 10**4),
)
@settings(max_examples=80, deadline=None)
def test_rational_literals_parse_as_sympify_reads_them(whole: int, sign: str, digits: str, den: int) -> None:
    import sympy

    from geoforge.exact import _RATIONAL, _parse

    for token in (f"{sign}{whole}", f"{sign}{whole}.{digits}", f"{sign}{whole}/{den}"):
        assert _RATIONAL.match(token), token  # the fast path is taken
        reference = sympy.sympify(token, rational=True)  # what the general path reads
        assert sympy.srepr(_parse(token)) == sympy.srepr(reference), token


def _recognise_by_loop(x: float, rel_tol: float, max_den: int, max_radicand: int):  # type: ignore[no-untyped-def]
    """The plain loop over n then q that :func:`geoforge.exact.recognise` vectorises."""
    import math

    import sympy

    if x == 0:
        return sympy.Integer(0)
    for n in (k for k in range(1, max_radicand + 1) if all(k % (d * d) for d in range(2, 23))):
        base = x / math.sqrt(n)
        for q in range(1, max_den + 1):
            p = round(base * q)
            if p != 0 and abs(p / q * math.sqrt(n) - x) <= rel_tol * abs(x):
                return sympy.Rational(p, q) * sympy.sqrt(n)
    return None


@given(
    p=st.integers(-400, 400),
    q=st.integers(1, 14),
    n=st.integers(1, 60),
    noise=st.sampled_from([0.0, 1e-12, 3e-11, 1e-9, 1e-3]),
    max_radicand=st.sampled_from([1, 50, 500]),
)
@settings(max_examples=150, deadline=None)
def test_recognise_finds_what_the_plain_loop_finds(
    p: int, q: int, n: int, noise: float, max_radicand: int
) -> None:
    import math

    from geoforge.exact import recognise

    x = p / q * math.sqrt(n) * (1 + noise)
    for tol in (1e-10, 1e-9):
        assert recognise(x, tol, 12, max_radicand) == _recognise_by_loop(x, tol, 12, max_radicand)
    assert recognise(3.4641016151377544) == 2 * __import__("sympy").sqrt(3)
