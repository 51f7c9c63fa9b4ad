"""Captions: every claim a caption makes holds on its figure, question answers are exact and
verified, and claim kinds accept true figures and reject wrong ones."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import sympy

from geoforge.caption import STYLES, Claim, Target, exact_claim, make_caption
from geoforge.errors import GeoforgeError
from geoforge.program import parse_program
from geoforge.realise import realise
from geoforge.sampler import load_recipe, sample_spec
from geoforge.scene import Scene

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "corpora" / "smoke.toml"
#: An equilateral triangle of side 4 with the foot D of the altitude from A.
EQUILATERAL = "A = free A; B = lconst B A 4; C = s_angle B A C 60, lconst C A 4; D = foot D A B C"


def _is_exact(value: str) -> bool:
    """True if ``value`` parses as a sympy number with no floating-point part."""
    expr = sympy.sympify(value)
    return expr.is_number and not expr.atoms(sympy.Float) and "." not in value


@pytest.fixture(scope="module")
def captioned() -> list[tuple[Scene, list[Claim], dict]]:
    """~200 smoke-recipe figures: (scene, sampled claims, {style: (caption, dropped)})."""
    recipe = load_recipe(SMOKE)
    out = []
    for index in range(300):
        rng = np.random.default_rng(np.random.SeedSequence([11, index]))
        spec = sample_spec(recipe, rng)
        try:
            scene = realise(spec.program, seed=index, max_tries=6)
        except GeoforgeError:
            continue
        captions = {s: make_caption(scene, spec.claims, s, rng, spec.targets) for s in STYLES}
        out.append((scene, spec.claims, captions))
        if len(out) == 200:
            break
    assert len(out) == 200
    return out


def test_every_claim_of_every_caption_holds_and_none_is_dropped(captioned) -> None:
    checked = 0
    for scene, claims, captions in captioned:
        for style, (caption, dropped) in captions.items():
            assert dropped == [], (style, scene.program.text(), dropped)
            assert caption.claims == claims
            for claim in caption.claims:
                assert claim.holds(scene), (claim, scene.program.text())
                checked += 1
    assert checked >= 3 * 200


def test_question_answers_hold_and_are_exact_sympy_values(captioned) -> None:
    answered = 0
    for scene, _, captions in captioned:
        caption, _ = captions["question"]
        if caption.answer is None:
            assert caption.question == ""
            continue
        answered += 1
        assert caption.answer.kind in ("length", "angle")
        assert caption.answer.holds(scene), (caption.answer, scene.program.text())
        assert _is_exact(caption.answer.args[-1]), caption.answer
        assert caption.text.endswith(caption.question)
        assert caption.question.startswith("Find ")
    assert answered >= 40


def test_caption_texts_print_no_decimal_numbers(captioned) -> None:
    for _, _, captions in captioned:
        for caption, _ in captions.values():
            assert not re.search(r"\d\.\d", caption.text), caption.text


def test_facts_caption_contains_every_claims_terse_text(captioned) -> None:
    for _, claims, captions in captioned:
        caption, _ = captions["facts"]
        for claim in claims:
            assert claim.text("facts") in caption.text


def test_captions_are_deterministic_given_the_generator_state(captioned) -> None:
    scene, claims, _ = captioned[0]
    for style in STYLES:
        a, _ = make_caption(scene, claims, style, np.random.default_rng(5))
        b, _ = make_caption(scene, claims, style, np.random.default_rng(5))
        assert a.text == b.text


@pytest.fixture(scope="module")
def equilateral() -> Scene:
    return realise(parse_program(EQUILATERAL + "; given length A B 4"), seed=3)


def _moved(scene: Scene, name: str, by: np.ndarray) -> Scene:
    points = dict(scene.points)
    points[name] = points[name] + by
    return dataclasses.replace(scene, points=points)


def test_true_altitude_claim_holds(equilateral: Scene) -> None:
    assert Claim("altitude", ("A", "D", "B", "C")).holds(equilateral)


def test_altitude_claim_fails_when_foot_slides_along_base(equilateral: Scene) -> None:
    p = equilateral.points
    moved = _moved(equilateral, "D", 0.1 * (p["C"] - p["B"]))
    claim = Claim("altitude", ("A", "D", "B", "C"))
    assert not claim.holds(moved)
    # D is still on BC, so only the right angle breaks.
    assert Claim("on_segment", ("D", "B", "C")).holds(moved)


def test_altitude_from_wrong_vertex_does_not_hold(equilateral: Scene) -> None:
    assert not Claim("altitude", ("B", "D", "A", "C")).holds(equilateral)


def test_exact_claim_gives_two_root_three_for_equilateral_altitude(equilateral: Scene) -> None:
    claim = exact_claim(Target("length", ("A", "D")), equilateral)
    assert claim == Claim("length", ("A", "D", "2*sqrt(3)"))
    assert claim.holds(equilateral)
    assert claim.text("facts") == "AD = 2√3"


def test_exact_claim_gives_right_angle_at_foot(equilateral: Scene) -> None:
    assert exact_claim(Target("angle", ("A", "D", "B")), equilateral) == Claim("angle", ("A", "D", "B", "90"))


def test_exact_length_scales_with_given_unit() -> None:
    scene = realise(parse_program(EQUILATERAL + "; given length A B 8"), seed=3)
    assert exact_claim(Target("length", ("A", "D")), scene) == Claim("length", ("A", "D", "4*sqrt(3)"))


def test_exact_length_claim_needs_a_given_length() -> None:
    scene = realise(parse_program(EQUILATERAL), seed=3)
    # The diagram length is 2√3 in diagram units, but nothing fixes the unit.
    assert abs(Target("length", ("A", "D")).measure(scene) - 2 * np.sqrt(3)) < 1e-9
    assert exact_claim(Target("length", ("A", "D")), scene) is None
    # An angle needs no unit.
    assert exact_claim(Target("angle", ("B", "A", "C")), scene) == Claim("angle", ("B", "A", "C", "60"))


def test_wrong_length_claim_does_not_hold(equilateral: Scene) -> None:
    assert Claim("length", ("A", "D", "2*sqrt(3)")).holds(equilateral)
    assert not Claim("length", ("A", "D", "3")).holds(equilateral)


def test_make_caption_drops_false_claims_and_reports_them(equilateral: Scene) -> None:
    good = Claim("altitude", ("A", "D", "B", "C"))
    bad = Claim("midpoint", ("A", "B", "C"))
    caption, dropped = make_caption(equilateral, [good, bad], "facts", np.random.default_rng(0))
    assert dropped == [bad]
    assert caption.claims == [good]
    assert caption.text == "AD ⊥ BC at D."


def test_question_caption_asks_for_exact_altitude(equilateral: Scene) -> None:
    claims = [Claim("altitude", ("A", "D", "B", "C")), Claim("length", ("A", "B", "4"))]
    caption, dropped = make_caption(
        equilateral, claims, "question", np.random.default_rng(0), [Target("length", ("A", "D"))]
    )
    assert dropped == []
    assert caption.text == "As shown in the figure, AD ⊥ BC at D; AB = 4. Find the length of AD."
    assert caption.answer == Claim("length", ("A", "D", "2*sqrt(3)"))


def test_unknown_caption_style_is_refused(equilateral: Scene) -> None:
    with pytest.raises(ValueError, match="unknown caption style 'poem'"):
        make_caption(equilateral, [], "poem", np.random.default_rng(0))


def test_caption_json_has_one_shape_with_or_without_answer(equilateral: Scene) -> None:
    # Regression: ``answer`` was ``None`` without an answer and a list with one, so Hugging Face
    # ``datasets`` typed it ``null`` from the first samples and failed on the first answer.
    claims = [Claim("altitude", ("A", "D", "B", "C"))]
    rng = np.random.default_rng(0)
    plain, _ = make_caption(equilateral, claims, "facts", rng)
    asked, _ = make_caption(equilateral, claims, "question", rng, [Target("length", ("A", "D"))])
    assert plain.to_json()["answer"] == ""
    assert asked.to_json()["answer"] == "length A D 2*sqrt(3)"
    assert {k: type(v) for k, v in plain.to_json().items()} == {
        k: type(v) for k, v in asked.to_json().items()
    }


def test_a_claims_points_are_its_facts_point_names_without_literals() -> None:
    from geoforge.caption import Claim

    assert Claim("length", ("A", "B", "3")).points == {"A", "B"}
    assert Claim("angle", ("A", "B", "C", "40")).points == {"A", "B", "C"}
    assert Claim("altitude", ("A", "D", "B", "C")).points == {"A", "B", "C", "D"}
