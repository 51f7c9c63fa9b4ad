"""Caption negatives: judged on the claims their text states.

A caption negative is kept only if (DESIGN.md, "Verification rules") its text reads in the
caption language (:func:`geoforge.caption.read_caption`), differs from the positive's text and
is not a paraphrase of it (the same claims up to the symmetries of each kind), keeps the
positive's question, and states at least one claim that is clearly false on the positive
figure. A length value counts only where the positive figure prints a length: with none
printed, the figure shows no scale, and "OA = 7" is as true of it as "OA = 5". Its structured
claims count for nothing beyond the words they are written as.
"""

from __future__ import annotations

import zlib

from geoforge.caption import CaptionReadError, Claim, caption_text, read_caption
from geoforge.caption.read import normalise
from geoforge.perturb import Accepted, CaptionCandidate, Positive
from geoforge.verify.image import Verdict
from geoforge.verify.measure import (
    DEFAULT_MARGINS,
    Margins,
    claim_key,
    claim_problem,
    how_false_of,
    violation,
)


def negative_text(positive: Positive, claims: tuple[Claim, ...] | list[Claim]) -> str:
    """The words of a caption negative: the positive's style and question and, so that the two
    differ only where the claims do, the positive's wording (descriptive variant) of every
    claim they share. A new claim's variant is a hash of the positive's text and the claim
    (:func:`_variant`), so the words depend on nothing else: no other plugin, and no order of
    proposals, changes them."""
    caption = positive.caption
    question = caption.question if caption.style == "question" else ""
    if caption.style != "descriptive":
        return caption_text(list(claims), caption.style, question=question)
    try:
        read = read_caption(caption.text)
        wording = dict(zip(read.claims, read.variants))
    except CaptionReadError:
        wording = {}
    variants = [wording[c] if c in wording else _variant(caption.text, c) for c in claims]
    return caption_text(list(claims), caption.style, variants=variants)


def _variant(text: str, claim: Claim) -> int:
    """A wording variant (0–7, taken modulo the kind's variants) for ``claim`` in a negative of
    the caption ``text``: CRC-32 of both, stable across processes and runs."""
    return zlib.crc32(f"{text}\n{' '.join(claim.to_json())}".encode()) % 8


def verify_caption(
    positive: Positive,
    candidate: CaptionCandidate,
    plugin: str,
    margins: Margins = DEFAULT_MARGINS,
) -> Verdict:
    """Apply the caption-negative rules (module docstring) to ``candidate``, whose text is
    ``candidate.text`` or, if None, its claims written by :func:`negative_text`. Never raises
    for a bad candidate. The accepted negative carries its text and how it is false."""
    if not isinstance(candidate, CaptionCandidate):
        return Verdict(False, "malformed candidate")
    if candidate.text is None:
        if not isinstance(candidate.claims, tuple | list) or any(claim_problem(c) for c in candidate.claims):
            return Verdict(False, "malformed claims")
        text = negative_text(positive, candidate.claims)
    elif isinstance(candidate.text, str):
        text = candidate.text
    else:
        return Verdict(False, "malformed candidate")
    try:
        read = read_caption(text)
        said = read_caption(positive.caption.text)
    except CaptionReadError:
        return Verdict(False, "caption text not readable")
    if not read.claims:
        return Verdict(False, "empty caption")
    if any(claim_problem(c) for c in read.claims):
        return Verdict(False, "malformed claims")
    if normalise(text) == normalise(positive.caption.text):
        return Verdict(False, "same text as the positive")
    if said.question and read.question != said.question:
        return Verdict(False, "drops the question")
    if {claim_key(c) for c in read.claims} == {claim_key(c) for c in said.claims}:
        return Verdict(False, "paraphrase of the positive")
    scene = positive.scene
    visible = any(st.kind == "given" and st.name == "length" for st in scene.program.statements)
    violated = [(c, v) for c in read.claims if (v := violation(c, scene, margins, visible)) >= 1.0]
    if not violated:
        return Verdict(False, "no stated claim false by the margin")
    how = how_false_of(violated, positive.scene)
    return Verdict(True, accepted=Accepted(plugin, candidate, violated, text=text, how=how))
