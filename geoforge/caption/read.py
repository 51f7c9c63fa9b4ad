"""Reading captions: the exact inverse of :func:`geoforge.caption.write.caption_text`.

Verification judges what a model is shown (DESIGN.md, "Judge what the model sees"), so the
claims of a caption are read back from its *text*, never taken from structured data that the
text may not state. Each wording of :data:`geoforge.caption.claims.CLAIM_KINDS` becomes a regular
expression; a caption is split into its statements (sentences for ``descriptive``, "; "-joined
terse forms for ``facts`` and ``question``) and each statement must match the wordings of
exactly one claim. Text → claims → text is exact (a property test checks it on thousands of
generated captions).

Point names are an upper-case letter with optional digits and primes (``A``, ``B1``, ``C'``);
values are the textbook forms of :func:`geoforge.exact.format_literal` (``3√2``, ``√3/2``,
``75/2``), read back into the sympy text the claims store (``3*sqrt(2)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import sympy

from geoforge.caption.claims import CLAIM_KINDS, Claim, Target
from geoforge.caption.write import DESCRIPTIVE_OPENING, QUESTION_OPENING, TERSE_JOIN, caption_text
from geoforge.errors import GeoforgeError

#: A point name as captions print it.
NAME = r"[A-Z][0-9]*'*"
#: A value as :func:`geoforge.exact.format_literal` prints it.
VALUE = r"-?[0-9√/.]+"
#: A ratio as :func:`geoforge.caption.claims.ratio_text` prints it.
RATIO = r"[1-9][0-9]* : [1-9][0-9]*"
_QUESTIONS = (
    (re.compile(rf"Find the length of ({NAME})({NAME})\."), "length"),
    (re.compile(rf"Find ∠({NAME})({NAME})({NAME})\."), "angle"),
)


class CaptionReadError(GeoforgeError):
    """A caption text that is not in geoforge's caption language: the message quotes the
    statement that could not be read, or that reads as more than one claim."""


@dataclass(frozen=True)
class ReadCaption:
    """What a caption text states: its ``style``, its ``claims`` in order, the descriptive
    wording ``variants`` (one per claim; 0 for the terse styles), the ``question`` sentence
    (``""`` if none) and the ``target`` it asks for (``None`` if none)."""

    style: str
    claims: tuple[Claim, ...]
    variants: tuple[int, ...]
    question: str = ""
    target: Target | None = None

    def text(self) -> str:
        """The caption text these claims, variants and question are written as."""
        return caption_text(self.claims, self.style, question=self.question, variants=self.variants)


@dataclass(frozen=True)
class _Wording:
    """One wording of a claim kind; ``needle`` is its longest literal text, which every
    statement it matches contains (a substring test skips most wordings before the regex)."""

    kind: str
    variant: int
    pattern: re.Pattern[str]
    arity: int
    needle: str


def _compile(template: str, capitalise: bool) -> tuple[re.Pattern[str], int, str]:
    """A template (``"{0}{1} ⊥ {2}{3} at {1}"``) as a full-match regex with one group per
    argument (repeats become back-references) and ``v`` for the value, its arity and its
    longest literal text."""
    if capitalise and template[:1].isalpha():
        template = template[0].upper() + template[1:]
    out, seen = [], set()
    literals = re.findall(r"([^{]*)(\{[^}]*\})?", template)
    for literal, field in literals:
        out.append(re.escape(literal))
        if not field:
            continue
        name = field[1:-1]
        if name == "v":
            out.append(rf"(?P<v>{VALUE})")
        elif name == "r":
            out.append(rf"(?P<r>{RATIO})")
        elif name in seen:
            out.append(f"(?P=a{name})")
        else:
            seen.add(name)
            out.append(f"(?P<a{name}>{NAME})")
    return re.compile("".join(out)), len(seen), max((lit for lit, _ in literals), key=len)


@lru_cache(maxsize=4)
def _wordings(style: str, capitalise: bool) -> tuple[_Wording, ...]:
    out = []
    for kind, spec in CLAIM_KINDS.items():
        templates = spec.descriptive if style == "descriptive" else (spec.terse,)
        for variant, template in enumerate(templates):
            out.append(_Wording(kind, variant, *_compile(template, capitalise)))
    return tuple(out)


def _value(display: str) -> str:
    """``3√2`` → ``3*sqrt(2)``: the sympy text of a printed value."""
    from geoforge.exact import parse_value

    text = re.sub(r"√([0-9]+)", r"sqrt(\1)", display)
    text = re.sub(r"([0-9])sqrt", r"\1*sqrt", text)
    return str(parse_value(text)).replace(" ", "")


def read_statement(statement: str, style: str, capitalised: bool = False) -> tuple[Claim, int]:
    """The one claim a statement states, and its wording variant. ``capitalised`` says the
    statement's first letter was upper-cased (a later sentence of a descriptive caption).
    Raises CaptionReadError if no wording, or wordings of two different claims, match."""
    found: dict[Claim, int] = {}
    for w in _wordings(style, capitalised):
        if w.needle not in statement:
            continue
        m = w.pattern.fullmatch(statement)
        if m is None:
            continue
        args = [m.group(f"a{i}") for i in range(w.arity)]
        if "v" in m.groupdict():
            try:
                args.append(_value(m.group("v")))
            except GeoforgeError:
                continue
        if "r" in m.groupdict():
            p, q = (int(n) for n in m.group("r").split(" : "))
            if sympy.gcd(p, q) != 1:
                continue  # the writer prints ratios in lowest terms
            args.append(str(sympy.Rational(p, q)))
        found.setdefault(Claim(w.kind, tuple(args)), w.variant)
    if not found:
        raise CaptionReadError(f"cannot read the statement `{statement}`")
    if len(found) > 1:
        kinds = ", ".join(sorted(c.kind for c in found))
        raise CaptionReadError(f"the statement `{statement}` reads as several claims ({kinds})")
    ((claim, variant),) = found.items()
    return claim, variant


def _question(text: str) -> tuple[str, str, Target | None]:
    """Split a question-style text into its set-up and its question."""
    for pattern, kind in _QUESTIONS:
        m = re.search(rf" ({pattern.pattern})$", text)
        if m is not None:
            return text[: m.start()], m.group(1), Target(kind, tuple(m.groups()[1:]))
    return text, "", None


@lru_cache(maxsize=16384)
def read_caption(text: str) -> ReadCaption:
    """Read a caption text back into its claims (see the module docstring).

    The style is told by the opening: "In the figure, " (descriptive), "As shown in the
    figure, " (question), anything else (facts). Whitespace runs count as one space
    (:func:`normalise`). Raises CaptionReadError naming the statement that is not in the
    caption language. Cached: the verifier reads the same positive caption once per candidate.
    """
    if not isinstance(text, str):
        raise CaptionReadError(f"a caption is text, got {type(text).__name__}")
    text = normalise(text)
    if text.startswith(DESCRIPTIVE_OPENING):
        if not text.endswith("."):
            raise CaptionReadError("a descriptive caption ends with `.`")
        sentences = re.split(r"\. (?=\S)", text[len(DESCRIPTIVE_OPENING) : -1])
        read = [read_statement(s, "descriptive", i > 0) for i, s in enumerate(sentences)]
        return ReadCaption("descriptive", tuple(c for c, _ in read), tuple(v for _, v in read))
    style, question, target = "facts", "", None
    body = text
    if text.startswith(QUESTION_OPENING):
        style = "question"
        body, question, target = _question(text[len(QUESTION_OPENING) :])
    if not body.endswith("."):
        raise CaptionReadError(f"a {style} caption's statements end with `.`")
    body = body[:-1]
    statements = body.split(TERSE_JOIN) if body else []
    claims = tuple(read_statement(s, "facts")[0] for s in statements)
    return ReadCaption(style, claims, (0,) * len(claims), question, target)


def normalise(text: str) -> str:
    """A caption text for comparison: whitespace runs collapsed to one space, ends stripped."""
    return " ".join(text.split())
