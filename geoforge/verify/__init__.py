"""Verification of hard negatives: the engine's judgement, never skipped.

Verification judges what a model sees (DESIGN.md, "Verification rules"): a caption by the
claims its *text* states, read back by :mod:`geoforge.caption.read`; an image by the points it
draws. :mod:`~geoforge.verify.measure` says how clearly a claim is false, in margin units;
:mod:`~geoforge.verify.image` and :mod:`~geoforge.verify.caption` apply the rules for image and
caption negatives.
"""

from geoforge.verify.caption import negative_text, verify_caption
from geoforge.verify.image import (
    Reference,
    Verdict,
    false_marks,
    holds_on,
    ink_kept,
    pixel_difference,
    restore,
    similarity_gap,
    verify_image,
)
from geoforge.verify.measure import (
    DEFAULT_MARGINS,
    HOW,
    Margins,
    claim_arity,
    claim_key,
    claim_problem,
    how_false,
    how_false_of,
    violation,
)

__all__ = [
    "DEFAULT_MARGINS",
    "HOW",
    "Margins",
    "Reference",
    "Verdict",
    "claim_arity",
    "claim_key",
    "claim_problem",
    "false_marks",
    "holds_on",
    "how_false",
    "how_false_of",
    "ink_kept",
    "negative_text",
    "pixel_difference",
    "restore",
    "similarity_gap",
    "verify_caption",
    "verify_image",
    "violation",
]
