"""Writing captions: deterministic text made from verified claims about a Scene.

Values are exact (sympy), as textbooks print them: ``3√2``, ``60°``. Three styles, after the
positive captions of MMGeoLM (Sun et al. 2025) and textbook problem statements:

* ``descriptive``: "In the figure, S1. S2. ..." with one sentence per claim (a wording variant
  drawn per claim);
* ``facts``: the terse forms joined by "; " and ended by ".";
* ``question``: "As shown in the figure, " + the terse forms joined by "; " + ".", then a
  question ("Find the length of AB." or "Find ∠ABC.") whose exact answer is verified.

:func:`geoforge.caption.read.read_caption` is the exact inverse of :func:`caption_text`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geoforge.caption.claims import STYLES, Claim, Target
from geoforge.exact import recognise
from geoforge.facts import Fact
from geoforge.scene import Scene

#: Joins the terse claims of the ``facts`` and ``question`` styles (no wording contains it).
TERSE_JOIN = "; "
#: Opens the first sentence of a descriptive caption, and the set-up of a question.
DESCRIPTIVE_OPENING = "In the figure, "
QUESTION_OPENING = "As shown in the figure, "


@dataclass
class Caption:
    """A caption: ``text``, the ``claims`` it makes (all verified), and for the question style
    the ``question`` and its exact ``answer`` (a claim too, verified)."""

    text: str
    style: str
    claims: list[Claim] = field(default_factory=list)
    question: str = ""
    answer: Claim | None = None

    def facts(self) -> list[Fact]:
        """Every fact the caption claims, the answer's included."""
        claims = self.claims + ([self.answer] if self.answer else [])
        return [f for c in claims for f in c.facts()]

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict of one shape whether or not there is an answer: ``claims`` as
        ``[kind, *args]`` lists, ``answer`` as ``"kind arg ..."`` text (``""`` when none), so
        schema-inferring readers such as Hugging Face ``datasets`` never see a ``null``."""
        return {
            "text": self.text,
            "style": self.style,
            "claims": [c.to_json() for c in self.claims],
            "question": self.question,
            "answer": " ".join(self.answer.to_json()) if self.answer else "",
        }


def exact_claim(target: Target, scene: Scene) -> Claim | None:
    """A ``length``/``angle`` claim with the exact value of ``target`` on ``scene``, or
    ``None`` when the value has no simple closed form (see :func:`geoforge.exact.recognise`)
    or, for lengths, the figure has no given length to fix the unit."""
    if target.kind == "length" and not any(
        st.kind == "given" and st.name == "length" for st in scene.program.statements
    ):
        return None
    value = recognise(target.measure(scene))
    if value is None:
        return None
    claim = Claim(target.kind, (*target.points, str(value).replace(" ", "")))
    return claim if claim.holds(scene) else None


def caption_text(
    claims: list[Claim] | tuple[Claim, ...],
    style: str,
    rng: np.random.Generator | None = None,
    question: str = "",
    variants: list[int] | tuple[int, ...] | None = None,
) -> str:
    """The words of a caption of ``style`` for ``claims`` (not checked here), with an optional
    ``question`` after a question-style set-up. The descriptive style words claim ``i`` with
    ``variants[i]`` when given, else with a variant drawn from ``rng`` (``rng.integers(8)`` per
    claim). Raises ValueError for an unknown style, or when the descriptive style gets neither
    ``variants`` nor ``rng``."""
    if style == "facts":
        return TERSE_JOIN.join(c.text(style) for c in claims) + "."
    if style == "descriptive":
        if variants is None:
            if rng is None:
                raise ValueError("a descriptive caption needs `variants` or an `rng`")
            variants = [int(rng.integers(8)) for _ in claims]
        sentences = [c.text(style, v) for c, v in zip(claims, variants)]
        sentences = [DESCRIPTIVE_OPENING + sentences[0], *sentences[1:]] if sentences else []
        return " ".join(x[0].upper() + x[1:] + "." for x in sentences)
    if style == "question":
        setup = QUESTION_OPENING + TERSE_JOIN.join(c.text("facts") for c in claims) + "."
        return (setup + " " + question).strip()
    raise ValueError(f"unknown caption style {style!r}: expected one of {', '.join(STYLES)}")


def make_caption(
    scene: Scene, claims: list[Claim], style: str, rng: np.random.Generator, targets: list[Target] = ()
) -> tuple[Caption, list[Claim]]:
    """Write a caption of ``style`` from the ``claims`` that hold on ``scene``.

    Returns the caption and the claims dropped because they do not hold (a correct sampler
    drops none; callers count them). The question style asks for the first target with an
    exact value, if any. Deterministic given ``rng``'s state. Raises ValueError for an
    unknown style.
    """
    if style not in STYLES:
        raise ValueError(f"unknown caption style {style!r}: expected one of {', '.join(STYLES)}")
    holding = _holding(scene, claims)
    kept = [c for c, ok in zip(claims, holding) if ok]
    dropped = [c for c in claims if c not in kept]
    answer = None
    question = ""
    if style == "question":
        answer = next((a for t in targets if (a := exact_claim(t, scene)) is not None), None)
        if answer is not None:
            a = answer.args
            question = question_text(Target(answer.kind, a[:-1]))
    text = caption_text(kept, style, rng, question)
    _check_readback(text, kept, question)
    return Caption(text, style, kept, question, answer), dropped


#: The last scene whose claims were checked, and the results by claim: a sample's caption is
#: written in every style from one scene, and the check (residuals of every fact) is the same.
_LAST: list[tuple[Scene, dict[Claim, bool]]] = []


def _holding(scene: Scene, claims: list[Claim]) -> list[bool]:
    """``claim.holds(scene)`` for each claim, remembered for the last scene (the very object:
    the cache keeps it, so its ``id`` cannot be reused)."""
    if not _LAST or _LAST[0][0] is not scene:
        _LAST[:] = [(scene, {})]
    known = _LAST[0][1]
    out = []
    for c in claims:
        if not isinstance(c.args, tuple):  # unhashable: not remembered
            out.append(c.holds(scene))
            continue
        if c not in known:
            known[c] = c.holds(scene)
        out.append(known[c])
    return out


def question_text(target: Target) -> str:
    """The question asking for ``target``: "Find the length of AB." or "Find ∠ABC."."""
    p = target.points
    return f"Find the length of {p[0]}{p[1]}." if target.kind == "length" else f"Find ∠{p[0]}{p[1]}{p[2]}."


def _check_readback(text: str, claims: list[Claim], question: str) -> None:
    """A caption states exactly its claims and question: read the text back with
    :func:`geoforge.caption.read.read_caption` and raise ValueError if it says anything else
    (a wording that hides an argument, or two kinds that share a wording)."""
    from geoforge.caption.read import read_caption

    read = read_caption(text)
    if list(read.claims) != claims or read.question != question:
        raise ValueError(f"caption text does not read back as its claims: {text!r}")
