"""Caption lengths in the tokens of CLIP text towers, for ``geoforge generate``'s report.

An open_clip text tower reads :data:`CONTEXT` = 77 tokens: a start token, the first 75 BPE
tokens of the caption and an end token. A longer caption is cut, so two captions that differ
only past the cut reach the model as the same input: a caption negative can become its own
positive. The trainer masks such negatives (``geoforge_train.data``); the report warns about
long captions so that users can see the problem before training.

Counting uses open_clip's BPE tokenizer (``open_clip.tokenizer.SimpleTokenizer``), imported
only when a count is asked for, as open_clip needs torch and the core package must load
without it. Without open_clip, :func:`lower_bound` stands in: it never counts more tokens
than the BPE tokenizer would, so the report then warns only about captions that are surely
too long, and says that the count is a lower bound.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from geoforge.corpus import Record

#: Tokens an open_clip text tower reads, start and end tokens included.
CONTEXT = 77
#: The pieces that CLIP's tokenizer cuts text into before BPE (open_clip/tokenizer.py's
#: ``pat``, without its two special tokens), in Python ``re`` classes: ``[^\W\d_]`` for
#: ``\p{L}`` (it also takes the non-decimal numerals of ``\p{N}``, which only merges pieces),
#: ``\d`` for ``\p{N}``, ``(?:[^\s\w]|_)`` for ``[^\s\p{L}\p{N}]``.
_PIECES = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+")
#: Caption negatives of a sample's ``negatives`` record (rule edits and retrieval).
CAPTION_KINDS = ("caption", "retrieval")


def lower_bound(text: str) -> int:
    """At most the number of BPE tokens (start and end tokens excluded) that open_clip's
    tokenizer makes of ``text``: the number of pieces of CLIP's pre-tokenisation, after the
    same cleaning (HTML entities unescaped twice, whitespace collapsed, lowercased). BPE makes
    at least one token of each piece, and :data:`_PIECES` never cuts more pieces than CLIP's
    pattern. (For text that ``ftfy.fix_text``, the first cleaning step, leaves as it is, such
    as geoforge's captions; ftfy turns curly quotes straight, for one.)"""
    clean = " ".join(html.unescape(html.unescape(text)).split()).lower()
    return len(_PIECES.findall(clean))


def corpus_captions(records: Iterable[Record]) -> Iterator[tuple[str, list[str]]]:
    """Each sample's positive caption and its caption negatives (rule edits and retrieval, in
    that order), from the records of a corpus."""
    for r in records:
        negatives = json.loads(str(r.meta.get("negatives") or "{}"))
        yield r.files["txt"].decode(), [n["text"] for kind in CAPTION_KINDS for n in negatives.get(kind, [])]


@dataclass(frozen=True)
class LongCaptions:
    """Of ``captions`` captions (positives and text negatives), ``longer`` have more than
    ``context`` tokens (start and end included), and ``same_as_positive`` caption negatives
    have the same first ``context`` tokens as their positive. ``exact`` is False when
    open_clip could not be imported: ``longer`` is then a lower bound (:func:`lower_bound`)
    and ``same_as_positive`` is None."""

    captions: int
    longer: int
    same_as_positive: int | None
    exact: bool
    context: int = CONTEXT

    def to_json(self) -> dict[str, object]:
        """The counts as JSON-ready data (for the manifest)."""
        return {
            "context": self.context,
            "captions": self.captions,
            "longer": self.longer,
            "same_as_positive": self.same_as_positive,
            "exact": self.exact,
        }

    def warning(self) -> str | None:
        """The report's one-line warning, or None when no caption is (surely) too long."""
        if not self.longer:
            return None
        if not self.exact:
            return (
                f"at least {self.longer} of {self.captions} captions (positives and text negatives) "
                f"are longer than {self.context} tokens, which open_clip text towers truncate "
                "(estimated without open_clip; install the [train] extra for exact counts)"
            )
        return (
            f"{self.longer} of {self.captions} captions (positives and text negatives) are longer "
            f"than {self.context} tokens, which open_clip text towers truncate; "
            f"{self.same_as_positive} text negatives become identical to their positive "
            "(training masks them)"
        )


def long_captions(samples: Iterable[tuple[str, list[str]]], context: int = CONTEXT) -> LongCaptions:
    """Count the captions of ``samples`` (positive, caption negatives) longer than ``context``
    tokens, and the negatives truncated to their positive, with open_clip's tokenizer when it
    can be imported, else with :func:`lower_bound`."""
    keep = context - 2  # BPE tokens that fit between the start and end tokens
    try:
        from open_clip.tokenizer import SimpleTokenizer
    except ImportError:
        n = longer = 0
        for positive, negatives in samples:
            for text in (positive, *negatives):
                n += 1
                longer += lower_bound(text) > keep
        return LongCaptions(n, longer, None, exact=False, context=context)
    encode = SimpleTokenizer().encode
    n = longer = same = 0
    for positive, negatives in samples:
        pos = encode(positive)
        n += 1 + len(negatives)
        longer += len(pos) > keep
        for text in negatives:
            ids = encode(text)
            longer += len(ids) > keep
            same += ids[:keep] == pos[:keep]
    return LongCaptions(n, longer, same, exact=True, context=context)
