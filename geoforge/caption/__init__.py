"""Captions: claims (what a caption states), the writer (claims → text) and the reader (text →
claims, its exact inverse). See :mod:`geoforge.caption.claims`, :mod:`geoforge.caption.write`
and :mod:`geoforge.caption.read`."""

from geoforge.caption.claims import CLAIM_KINDS, CLAIM_TOL, STYLES, Claim, ClaimKind, Target
from geoforge.caption.read import CaptionReadError, ReadCaption, read_caption
from geoforge.caption.write import Caption, caption_text, exact_claim, make_caption, question_text

__all__ = [
    "CLAIM_KINDS",
    "CLAIM_TOL",
    "STYLES",
    "Caption",
    "CaptionReadError",
    "Claim",
    "ClaimKind",
    "ReadCaption",
    "Target",
    "caption_text",
    "exact_claim",
    "make_caption",
    "question_text",
    "read_caption",
]
