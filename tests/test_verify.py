"""The built-in perturbations, the verifier that judges every negative, and the program
surgery perturbations use (geoforge.edit)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from plugin_helpers import (  # noqa: F401  (_no_env_plugins is an autouse fixture)
    BUILT_INS,
    GEOFORGE,
    IMAGE_BUILT_INS,
    MARKED,
    _no_env_plugins,
    claim,
    host_with,
    make_positive,
    png_of,
    run_perturbation,
    scene_with,
    write_plugin,
)

from geoforge.caption import CLAIM_KINDS, Claim
from geoforge.caption.claims import VALUE_KINDS
from geoforge.edit import delete_points, drop_givens, drop_marks, pin, replace_clause, set_given
from geoforge.errors import ProgramError
from geoforge.perturb import CaptionCandidate, ImageCandidate, PoolEntry, Positive
from geoforge.plugins import PluginHost, PluginSpec
from geoforge.program import parse_program
from geoforge.realise import realise
from geoforge.scene import Scene
from geoforge.verify import (
    claim_arity,
    claim_key,
    claim_problem,
    false_marks,
    negative_text,
    verify_caption,
    verify_image,
    violation,
)

# The `geoforge_positive` fixture. geoforge.testing itself is imported late (below): pytest warns
# when a module it loads as a plugin was imported before it.
pytest_plugins = ["geoforge.testing"]


# --- the built-in perturbations on the fixture -------------------------------------------------


def with_pool(positive: Positive) -> Positive:
    """``positive`` with two other samples to retrieve from."""
    others = [
        make_positive(
            "A = free A; B = lconst B A 3; C = s_angle B A C 60, lconst C A 3; draw polygon A B C",
            ["isosceles A B C", "angle B A C 60"],
            seed=1,
        ),
        make_positive(
            "A = free A; B = lconst B A 2; C = s_angle B A C 70, lconst C A 2; D = on_pline D C A B; "
            "draw segment A B; draw segment C D",
            ["parallel A B C D", "equal A B A C"],
            seed=2,
        ),
    ]
    pool = tuple(
        PoolEntry(f"other{i}", o.caption.text, tuple(o.caption.claims)) for i, o in enumerate(others)
    )
    return dataclasses.replace(positive, pool=pool)


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_each_built_in_yields_a_verified_negative_on_the_fixture(name, geoforge_positive):
    host = PluginHost(PluginSpec(env=False))
    report = run_perturbation(host.perturbations[name], with_pool(geoforge_positive))
    assert report.accepted, report.rejections
    for accepted in report.accepted:
        assert accepted.plugin == name
        assert accepted.violated and all(v >= 1.0 for _, v in accepted.violated)
        if isinstance(accepted.candidate, CaptionCandidate):
            assert accepted.text
            for c, v in accepted.violated:
                assert violation(c, geoforge_positive.scene) == pytest.approx(v)


def realise_negative(candidate: ImageCandidate, positive: Positive) -> Scene:
    """The negative as the verifier sees it: realised next to the positive, in its units."""
    scene = realise(candidate.program, seed=positive.scene.seed, max_tries=3, reference=positive.scene.points)
    return dataclasses.replace(scene, fixed_unit=positive.scene.unit)


@pytest.mark.parametrize("name", IMAGE_BUILT_INS)
def test_every_accepted_image_negative_breaks_a_positive_claim_when_realised_again(name, geoforge_positive):
    host = PluginHost(PluginSpec(env=False))
    report = run_perturbation(host.perturbations[name], geoforge_positive)
    assert report.accepted
    for accepted in report.accepted:
        assert isinstance(accepted.candidate, ImageCandidate)
        scene = realise_negative(accepted.candidate, geoforge_positive)
        worst = max(violation(c, scene) for c in geoforge_positive.caption.claims)
        assert worst >= 1.0, accepted.candidate.change
        assert accepted.pixel_diff >= 0.002 and accepted.png is not None
        assert accepted.png.startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["move_vertex", "alter_relation"])
def test_image_negatives_carry_no_mark_that_is_false_on_them(name):
    # Regression: every move_vertex/alter_relation negative of this figure kept a right-angle
    # square on an angle it had moved off 90° (e.g. `mark right A D B` at 95.4°).
    positive = make_positive(MARKED, ["right A B C", "altitude A D B C"])
    host = PluginHost(PluginSpec(env=False))
    report = run_perturbation(host.perturbations[name], positive)
    assert len(report.accepted) >= 3
    for accepted in report.accepted:
        assert isinstance(accepted.candidate, ImageCandidate)
        assert false_marks(realise_negative(accepted.candidate, positive)) == []


def test_alter_relation_changes_a_clause_most_of_the_figure_is_built_on_last():
    # B carries C, M, F and H (5 of 6 points with B itself); F, the foot, carries F alone.
    positive = make_positive(
        "A = free A; B = lconst B A 3; C = s_angle B A C 70, lconst C A 4; M = midpoint M B C; "
        "F = foot F A B C; H = on_tline H M B C, lconst H M 1",
        ["midpoint M B C", "altitude A F B C"],
    )
    host = PluginHost(PluginSpec(env=False))
    proposals = list(host.perturbations["alter_relation"].propose(positive, np.random.default_rng(0)))
    changed = [c.clause for c in proposals]  # 1-based clause numbers
    heavy = [i for i, n in enumerate(changed) if n == 2]
    light = [i for i, n in enumerate(changed) if n == 5]
    assert heavy and light and max(light) < min(heavy), changed


def test_alter_relation_names_the_radius_factor_its_negative_draws():
    program = "O = free O; A = lconst A O 3; B = on_circle B O A; draw circle O A"
    positive = make_positive(program, ["on_circle B O"])
    host = PluginHost(PluginSpec(env=False))
    proposals = list(host.perturbations["alter_relation"].propose(positive, np.random.default_rng(0)))
    off = [c for c in proposals if "off circle" in c.change]
    assert off
    for c in off:
        scene = realise(c.program, seed=positive.scene.seed)
        ratio = np.linalg.norm(scene.points["B"] - scene.points["O"]) / 3
        factor = c.change.rsplit("radius × ", 1)[1]
        num, den = (int(x) for x in factor.split("/"))
        assert ratio == pytest.approx(num / den), c.change


def test_move_vertex_moves_a_point_whose_claims_all_name_a_point_built_on_it_last():
    # A carries B, C and D, B carries C and D, and both claims on each name one of them: those
    # points follow, so the claims hold. C and D each have a claim naming none of theirs.
    positive = make_positive(MARKED, ["right A B C", "altitude A D B C"])
    host = PluginHost(PluginSpec(env=False))
    proposals = host.perturbations["move_vertex"].propose(positive, np.random.default_rng(0))
    moved = [c.change.split()[1] for c in proposals]
    direct = [i for i, p in enumerate(moved) if p in "CD"]
    last = [i for i, p in enumerate(moved) if p in "AB"]
    assert direct and last and max(direct) < min(last), moved


def test_verifier_rejects_an_image_negative_with_a_false_mark():
    positive = make_positive(MARKED, ["right A B C", "altitude A D B C"])
    p = positive.scene.points
    normal = np.array([-(p["C"] - p["B"])[1], (p["C"] - p["B"])[0]])
    moved = p["D"] + 0.06 * positive.scene.scale * normal / np.linalg.norm(normal)
    program = pin(positive.program, 3, {"D": tuple(moved)})  # keeps `mark right A D B`
    verdict = verify_image(positive, ImageCandidate(program, 4, "D off BC", ()), png_of(positive), "test")
    assert (verdict.ok, verdict.reason) == (False, "a mark does not hold")
    fixed = drop_marks(program, {"D"})
    verdict = verify_image(positive, ImageCandidate(fixed, 4, "D off BC", ()), png_of(positive), "test")
    assert verdict.ok, verdict.reason
    assert dict((c.kind, v) for c, v in verdict.accepted.violated)["altitude"] == pytest.approx(2.0, rel=0.01)


# --- verify ------------------------------------------------------------------------------------


def test_claim_key_identifies_rotations_and_reversals_of_a_square_only():
    keys = {claim_key(claim(f"square {' '.join(s)}")) for s in ("ABCD", "BCDA", "DCBA", "CDAB", "ADCB")}
    assert len(keys) == 1
    assert claim_key(claim("square A C B D")) not in keys
    assert claim_key(claim("parallel A B C D")) == claim_key(claim("parallel D C B A"))
    assert claim_key(claim("parallel A B C D")) != claim_key(claim("parallel A C B D"))
    assert claim_key(claim("length A B 3")) == claim_key(claim("length B A 3"))
    assert claim_key(claim("angle A B C 30")) == claim_key(claim("angle C B A 30"))
    assert claim_key(claim("angle A B C 30")) != claim_key(claim("angle B A C 30"))


def tilted_right_angle(degrees: float) -> Scene:
    t = math.radians(90 + degrees)
    return scene_with({"A": (0.0, 0.0), "B": (2.0, 0.0), "C": (2 * math.cos(t), 2 * math.sin(t))})


@pytest.mark.parametrize(("tilt", "expected"), [(10.0, 1.25), (-10.0, 1.25), (5.0, 0.625), (0.0, 0.0)])
def test_violation_of_a_right_angle_is_its_tilt_in_units_of_8_degrees(tilt, expected):
    v = violation(claim("right A B C"), tilted_right_angle(tilt))
    assert v == pytest.approx(expected, abs=1e-9)
    assert (v >= 1.0) == (abs(tilt) >= 8)


@pytest.mark.parametrize(
    ("gap", "clearly_false"), [(0.125, True), (0.13, True), (0.115, False), (0.05, False)]
)
def test_violation_of_equal_lengths_uses_the_12_percent_margin(gap, clearly_false):
    long = 1 / (1 - gap)  # |AB| - |CD| is `gap` of the longer one
    scene = scene_with({"A": (0, 0), "B": (1, 0), "C": (0, 1), "D": (long, 1)})
    v = violation(claim("equal A B C D"), scene)
    assert v == pytest.approx(gap / 0.12)
    assert (v >= 1.0) == clearly_false


def test_violation_of_a_length_value_and_of_a_missing_point():
    scene = scene_with({"A": (0, 0), "B": (3.45, 0)})  # no given length: one unit per unit
    assert violation(claim("length A B 3"), scene) == pytest.approx(0.45 / 3.45 / 0.12)
    assert violation(claim("length A B 3"), scene_with({"A": (0, 0), "B": (3.3, 0)})) < 1.0
    assert violation(claim("perpendicular A B A Z"), scene) == math.inf


def test_claim_problem_accepts_every_claim_kind_at_its_arity_and_rejects_malformed_ones():
    for kind in CLAIM_KINDS:
        args = tuple("ABCDEFGH"[: claim_arity(kind)])
        if kind in VALUE_KINDS:
            args = (*args[:-1], "3")
        assert claim_problem(Claim(kind, args)) is None, kind
    assert claim_arity("on_circle") == 2 and claim_arity("angle") == 4
    assert "not a Claim" in claim_problem("AB ∥ CD")
    assert "unknown claim kind" in claim_problem(Claim("skew", ("A", "B", "C", "D")))
    assert "takes 4 arguments, got 5" in claim_problem(Claim("perpendicular", tuple("ABCDE")))
    assert "bad value" in claim_problem(Claim("angle", ("A", "B", "C", "x")))
    assert "non-empty strings" in claim_problem(Claim("length", ("A", "B", 3)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "claims",
    [
        ("AB ∥ AC",),
        (Claim("length", ("A", "B", "zz")),),
        (Claim("perpendicular", ("A", "B", "A", "C", "D")),),
        None,
    ],
)
def test_verify_caption_rejects_malformed_claims_without_raising(claims, geoforge_positive):
    # Regression: strings raised AttributeError and bad values ProgramError out of the verifier.
    candidate = CaptionCandidate(claims, "garbage", ())  # type: ignore[arg-type]
    verdict = verify_caption(geoforge_positive, candidate, "test")
    assert (verdict.ok, verdict.reason) == (False, "malformed claims")


def test_verify_image_rejects_a_candidate_without_a_program(geoforge_positive):
    candidate = ImageCandidate("A = free A", 1, "garbage", ())  # type: ignore[arg-type]
    verdict = verify_image(geoforge_positive, candidate, png_of(geoforge_positive), "test")
    assert (verdict.ok, verdict.reason) == (False, "malformed candidate")


def test_verify_caption_rejects_paraphrases_and_claims_not_false_by_the_margin(geoforge_positive):
    def reason(*changed: Claim) -> str:
        claims = (*geoforge_positive.caption.claims[: 4 - len(changed)], *changed)
        candidate = CaptionCandidate(claims, "", ())
        return verify_caption(geoforge_positive, candidate, "t").reason

    assert reason(claim("right A C B"), *geoforge_positive.caption.claims[1:]) == "paraphrase of the positive"
    assert reason(claim("perpendicular A D D C")) == "no stated claim false by the margin"  # true
    # Regression: reported as "all claims hold on the positive", though AB = 3 and CD = 3.2
    # differ, by 6.25% (under the 12% margin).
    assert reason(claim("equal A B C D")) == "no stated claim false by the margin"
    assert reason(claim("equal A B D B")) == ""  # 3 against 1.8: 40%, accepted


FIXTURE_PROGRAM = (
    "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
    "given length A B 3; given length A C 4; draw polygon A B C"
)
FIXTURE_CLAIMS = ["right A B C", "length A B 3", "length A C 4", "altitude A D B C"]


@pytest.mark.parametrize("seed", range(4))
def test_caption_negatives_keep_the_positive_wording_of_the_claims_they_share(seed):
    # Regression: a descriptive negative drew fresh sentence variants for every claim, so
    # "The length of AB is 3." in the positive became "AB = 3." in its negative.
    from geoforge.testing import make_positive as make

    positive = make(FIXTURE_PROGRAM, FIXTURE_CLAIMS, seed=seed, style="descriptive")
    assert negative_text(positive, positive.caption.claims) == positive.caption.text
    report = run_perturbation(PluginHost(PluginSpec(env=False)).perturbations["caption_rules"], positive)
    assert len(report.accepted) > 10
    before = positive.caption.text.removeprefix("In the figure, ").split(". ")
    for accepted in report.accepted:
        after = accepted.text.removeprefix("In the figure, ").split(". ")
        assert len(after) == len(before) == len(accepted.candidate.claims)
        for old, new, a, b in zip(positive.caption.claims, accepted.candidate.claims, before, after):
            assert (a == b) == (old == new), (a, b)


def test_question_style_caption_negatives_keep_the_question():
    from geoforge.caption import Caption, caption_text
    from geoforge.testing import make_positive as make

    positive = make(FIXTURE_PROGRAM, FIXTURE_CLAIMS, style="question")
    claims = positive.caption.claims
    question = "Find the length of BC."
    text = caption_text(claims, "question", np.random.default_rng(0), question)
    positive = dataclasses.replace(positive, caption=Caption(text, "question", claims, question))
    changed = (*claims[:3], claim("altitude A D B A"))
    assert negative_text(positive, changed) == (
        "As shown in the figure, right △ABC, right angle at A; AB = 3; AC = 4; AD ⊥ BA at D. "
        "Find the length of BC."
    )


# --- edit --------------------------------------------------------------------------------------

PROGRAM = (
    "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
    "E = midpoint E A D; given length A B 3; given length A C 4; given angle B A C 90; "
    "draw polygon A B C; draw segment A D; mark right A D B"
)


def test_delete_points_removes_dependents_and_their_statements():
    program = parse_program(PROGRAM)
    smaller = delete_points(program, {"D"})
    assert smaller.points == ("A", "B", "C")
    assert [s.text() for s in smaller.statements] == [
        "given length A B 3",
        "given length A C 4",
        "given angle B A C 90",
        "draw polygon A B C",
    ]
    assert delete_points(program, {"C"}).text() == "A = free A; B = lconst B A 3; given length A B 3"


def test_replace_clause_validates_the_replacement():
    program = parse_program(PROGRAM)
    new = replace_clause(program, 4, "E = midpoint E A B")
    assert new.clauses[4].text() == "E = midpoint E A B" and new.clauses[:4] == program.clauses[:4]
    assert new.statements == program.statements
    for bad, message in [
        ("F = midpoint F A B", "builds F, not E"),  # regression: used to drop E silently
        ("E = midpoint E A B; F = midpoint F A C", "must be one clause"),  # regression: kept the last
        ("E = midpoint E A Z", "undefined point `Z`"),
        ("E = nonsense E A B", "unknown construction `nonsense`"),
        ("E = ", "clause 5 `E =`: empty construction"),
        ("E@1_x = free E", "clause 5 `E@1_x = free E`: bad point name `E@1_x`"),
        ("E = midpoint E A B ? perp A B C D", "must be one clause"),
    ]:
        with pytest.raises(ProgramError, match=message):
            replace_clause(program, 4, bad)


def test_pin_fixes_a_point_and_its_dependents_follow():
    program = pin(parse_program(PROGRAM), 3, {"D": (1.0, 2.0)})
    assert program.clauses[3].pinned == (("D", 1.0, 2.0),)
    assert program.clauses[3].text() == "D@1.0_2.0 = free D"
    scene = realise(program, seed=0)
    np.testing.assert_allclose(scene.points["D"], [1.0, 2.0])
    np.testing.assert_allclose(scene.points["E"], (scene.points["A"] + scene.points["D"]) / 2, atol=1e-12)


def test_drop_givens_drops_givens_on_moved_points_and_their_dependents():
    program = parse_program(PROGRAM)
    givens = lambda p: [s.text() for s in p.statements if s.kind == "given"]  # noqa: E731
    assert givens(drop_givens(program, {"C"})) == ["given length A B 3"]
    assert givens(drop_givens(program, {"A"})) == []
    assert drop_givens(program, {"E"}) == program


def test_drop_marks_drops_only_marks_on_the_points():
    program = parse_program(PROGRAM)
    assert [s.text() for s in drop_marks(program, {"D"}).statements if s.kind == "mark"] == []
    assert drop_marks(program, {"C"}) == program


def test_set_given_sets_the_value_in_either_order():
    program = parse_program(PROGRAM)
    texts = lambda p: [s.text() for s in p.statements if s.kind == "given"]  # noqa: E731
    assert texts(set_given(program, "length", ("C", "A"), "5"))[1] == "given length A C 5"
    assert texts(set_given(program, "angle", ("C", "A", "B"), "80"))[2] == "given angle B A C 80"
    assert set_given(program, "length", ("C", "B"), "5") == program


CIRCLED = "O = free O; A = lconst A O 2; B = lconst B O 3; draw circle O A; draw segment O B"


def test_stroke_share_is_the_length_of_the_lines_and_circles_that_move() -> None:
    from geoforge.scene import stroke_share

    scene = make_positive(MARKED, ["right A B C"]).scene
    p = scene.points

    def length(a: str, b: str) -> float:
        return float(np.linalg.norm(p[a] - p[b]))

    assert sorted(map(sorted, scene.lines)) == [["A", "B"], ["A", "C"], ["A", "D"], ["B", "C", "D"]]
    total = length("A", "B") + length("B", "C") + length("C", "A") + length("A", "D")  # 3, 5, 4, 2.4
    assert stroke_share(scene, {"D"}) == pytest.approx((5 + 2.4) / total)
    assert stroke_share(scene, frozenset()) == 0.0 and stroke_share(scene, set(p)) == pytest.approx(1.0)
    circled = make_positive(CIRCLED, [])
    assert stroke_share(circled.scene, {"A"}) == pytest.approx(4 * math.pi / (4 * math.pi + 3))
    assert stroke_share(circled.scene, {"B"}) == pytest.approx(3 / (4 * math.pi + 3))
    for name in ("D", "B", "C"):  # D ends two lines, C lies inside line B C D
        broken = dataclasses.replace(scene, points={**p, name: np.array([math.nan, 0.0])})
        with pytest.raises(ValueError, match="non-finite coordinates"):
            stroke_share(broken, {name})  # it used to say 0.0 (nothing moves), or skip C


def test_move_vertex_tries_a_step_too_short_to_break_a_claim_after_the_rest_of_its_group(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import geoforge_perturb.move_vertex as move_vertex

    def directions(positive, point, draws, n=3):  # type: ignore[no-untyped-def]
        # D's probe takes a claim 0.6 margins off: 0.06 of the figure is short (0.72), 0.10 is not (1.2)
        return [(np.array([1.0, 0.0]), 0.6 if point == "D" else 5.0)]

    monkeypatch.setattr(move_vertex, "_directions", directions)
    positive = make_positive(MARKED, ["right A B C", "altitude A D B C"])
    changes = [c.change for c in move_vertex.MoveVertex().propose(positive, np.random.default_rng(0))]
    short = changes.index("move D by 0.06 of the figure")
    direct = [i for i, change in enumerate(changes) if change.split()[1] in "CD"]
    later = [i for i, change in enumerate(changes) if change.split()[1] in "AB"]
    assert short == max(direct) < min(later), changes
    assert changes.index("move D by 0.10 of the figure") < short


def test_alter_relation_changes_a_value_the_caption_does_not_state_after_the_relations() -> None:
    alter = PluginHost(PluginSpec(env=False)).perturbations["alter_relation"]

    def changes(claims: list[str]) -> list[str]:
        return [c.change for c in alter.propose(make_positive(MARKED, claims), np.random.default_rng(0))]

    unstated = changes(["altitude A D B C"])  # no value on C: its new angle or length hardly shows
    foot = [i for i, c in enumerate(unstated) if c.startswith("foot")]
    value = [i for i, c in enumerate(unstated) if c.startswith(("angle", "length"))]
    assert foot and value and max(foot) < min(value), unstated
    stated = changes(["altitude A D B C", "angle B A C 90"])  # a stated angle at A, which C's clause sets
    foot = [i for i, c in enumerate(stated) if c.startswith("foot")]
    value = [i for i, c in enumerate(stated) if c.startswith(("angle", "length"))]
    assert min(value) < max(foot), stated
