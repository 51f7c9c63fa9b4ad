"""The caption reader is the exact inverse of the caption writer: text → claims → text is
exact, for every style, wording and claim kind; unreadable or ambiguous text is refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from geoforge.caption import (
    CLAIM_KINDS,
    STYLES,
    CaptionReadError,
    Claim,
    Target,
    caption_text,
    question_text,
    read_caption,
)
from geoforge.errors import GeoforgeError
from geoforge.realise import realise
from geoforge.sampler import load_recipe, sample_spec

ROOT = Path(__file__).resolve().parents[1]
NAMES = [*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "A1", "B1", "P2", "X10"]


def _arity(kind: str) -> int:
    """The number of point arguments of a claim kind (its value, if any, comes after)."""
    spec = CLAIM_KINDS[kind]
    used = [int(m) for t in (*spec.descriptive, spec.terse) for m in re.findall(r"\{(\d+)\}", t)]
    return max(used) + 1


@st.composite
def values(draw: st.DrawFn, kind: str) -> str:
    """A value as the sampler and the caption rules store it: sympy text."""
    if kind == "angle":
        v = draw(st.one_of(st.integers(1, 179), st.fractions(1, 179, max_denominator=4)))
        return str(sympy.nsimplify(v)).replace(" ", "")
    q = sympy.Rational(draw(st.integers(1, 60)), draw(st.integers(1, 12)))
    n = draw(st.sampled_from([1, 2, 3, 5, 6, 7, 10, 13]))
    return str(q * sympy.sqrt(n)).replace(" ", "")


@st.composite
def claims(draw: st.DrawFn) -> Claim:
    kind = draw(st.sampled_from(sorted(CLAIM_KINDS)))
    args = [draw(st.sampled_from(NAMES)) for _ in range(_arity(kind))]
    if kind in ("length", "angle"):
        args.append(draw(values(kind)))
    if kind == "ratio":
        args.append(str(sympy.Rational(draw(st.integers(1, 12)), draw(st.integers(1, 12)))))
    return Claim(kind, tuple(args))


@st.composite
def captions(draw: st.DrawFn) -> tuple[str, list[Claim], list[int], str]:
    style = draw(st.sampled_from(STYLES))
    cs = draw(st.lists(claims(), min_size=1, max_size=7))
    variants = [draw(st.integers(0, 7)) for _ in cs]
    question = ""
    if style == "question" and draw(st.booleans()):
        points = tuple(draw(st.sampled_from(NAMES)) for _ in range(3))
        question = question_text(Target(draw(st.sampled_from(["length", "angle"])), points))
    return style, cs, variants, question


@settings(max_examples=5000, deadline=None)
@given(captions())
def test_text_to_claims_to_text_is_exact_for_random_captions(caption) -> None:
    style, cs, variants, question = caption
    text = caption_text(cs, style, question=question, variants=variants)
    read = read_caption(text)
    assert read.style == style
    assert list(read.claims) == cs
    assert read.question == question
    assert read.text() == text


def test_every_sampled_caption_reads_back_as_its_stored_claims() -> None:
    """600 captions of the paper's families, all three styles: the claims read from the text
    are the claims the sampler recorded, and writing them again gives the same bytes."""
    recipe = load_recipe(ROOT / "corpora" / "mmgeo-4k.toml")
    from geoforge.caption import make_caption

    checked = 0
    for index in range(330):
        rng = np.random.default_rng(np.random.SeedSequence([23, index]))
        spec = sample_spec(recipe, rng)
        try:
            scene = realise(spec.program, seed=index, max_tries=6)
        except GeoforgeError:
            continue
        for style in STYLES:
            caption, _ = make_caption(scene, spec.claims, style, rng, spec.targets)
            read = read_caption(caption.text)
            assert list(read.claims) == caption.claims
            assert read.question == caption.question
            assert read.text() == caption.text
            checked += 1
    assert checked >= 600


def test_every_wording_states_every_argument_of_its_claim() -> None:
    """No hidden arguments: a relabel of any argument changes the text, in every wording."""
    for kind, spec in CLAIM_KINDS.items():
        n = _arity(kind)
        for template in (*spec.descriptive, spec.terse):
            used = {int(m) for m in re.findall(r"\{(\d+)\}", template)}
            assert used == set(range(n)), (kind, template)


@pytest.mark.parametrize(
    "text",
    [
        "AB = CD; the moon is full.",
        "In the figure, AB ∥ CD. Something else.",
        "As shown in the figure, AB ⊥ CD at E; AB = 3√. Find ∠ABC.",
        "",
    ],
)
def test_text_outside_the_caption_language_is_refused_with_the_statement(text: str) -> None:
    with pytest.raises(CaptionReadError):
        read_caption(text)


def test_question_style_keeps_its_question_and_target() -> None:
    text = caption_text(
        [Claim("altitude", ("A", "D", "B", "C")), Claim("length", ("A", "B", "3*sqrt(2)"))],
        "question",
        question="Find the length of AD.",
    )
    assert text == "As shown in the figure, AD ⊥ BC at D; AB = 3√2. Find the length of AD."
    read = read_caption(text)
    assert read.target == Target("length", ("A", "D"))
    assert read.claims[1].args == ("A", "B", "3*sqrt(2)")


def test_bisector_and_median_state_their_hidden_parts_in_the_terse_style() -> None:
    bisector = Claim("bisector", ("A", "D", "B", "C")).text("facts")
    median = Claim("median", ("A", "M", "B", "C")).text("facts")
    assert bisector == "∠BAD = ∠DAC, D ∈ BC"
    assert median == "median AM, M midpoint of BC"
    assert Claim("on_circle", ("C", "O")).text("facts") == "C on ⊙O"
