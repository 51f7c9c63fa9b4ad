"""The audit's reader of caption text (see scripts/audit_negatives.py): statement forms typed
out by hand from geoforge's caption language as a reader sees it, not generated from geoforge's
templates, and no geoforge import.

:func:`read_caption` splits a caption into its statements (descriptive: "In the figure, S1.
S2."; facts: "S1; S2."; question: "As shown in the figure, S1; S2." and an optional "Find the
length of AB." / "Find ∠ABC.") and reads each as a :class:`Statement`: a kind and the points in
each role of its form, plus a printed value for lengths and angles. A statement that matches no
form, or forms of two meanings, raises :class:`ReadError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NAME = r"[A-Z][0-9]*'*"
_VALUE = r"-?[0-9√][0-9√/.]*"
DESCRIPTIVE_OPENING = "In the figure, "
QUESTION_OPENING = "As shown in the figure, "


class ReadError(ValueError):
    """A caption text (or one statement of it) that this audit cannot read."""


@dataclass(frozen=True)
class Statement:
    """One statement of a caption: ``kind``, its points by role (``{"A": "B", ...}``, in the
    order the roles appear in the form), a printed ``value`` for lengths and angles, and the
    ``text`` it was read from."""

    kind: str
    roles: tuple[tuple[str, str], ...]
    value: str = ""
    text: str = ""

    @property
    def points(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for _, p in self.roles))

    def __getitem__(self, role: str) -> str:
        return dict(self.roles)[role]


#: Statement forms, typed by hand: ``<X>`` is a point in role X (a repeat must name the same
#: point), ``<v>`` a printed value. A descriptive sentence's first letter may be upper-cased.
FORMS: dict[str, tuple[str, ...]] = {
    "triangle": ("<A><B><C> is a triangle", "△<A><B><C>"),
    "isosceles": (
        "triangle <A><B><C> is isosceles with <A><B> = <A><C>",
        "<A><B><C> is an isosceles triangle in which <A><B> = <A><C>",
        "△<A><B><C> isosceles, <A><B> = <A><C>",
    ),
    "equilateral": ("triangle <A><B><C> is equilateral", "△<A><B><C> equilateral"),
    "right": (
        "triangle <A><B><C> has a right angle at <A>",
        "<A><B><C> is a right triangle with its right angle at <A>",
        "right △<A><B><C>, right angle at <A>",
    ),
    "square": ("<A><B><C><D> is a square", "square <A><B><C><D>"),
    "rectangle": ("<A><B><C><D> is a rectangle", "rectangle <A><B><C><D>"),
    "rhombus": ("<A><B><C><D> is a rhombus", "rhombus <A><B><C><D>"),
    "parallelogram": ("<A><B><C><D> is a parallelogram", "▱<A><B><C><D>"),
    "trapezoid": (
        "<A><B><C><D> is a trapezoid with <A><B> ∥ <C><D>",
        "trapezoid <A><B><C><D>, <A><B> ∥ <C><D>",
    ),
    "isosceles_trapezoid": (
        "<A><B><C><D> is an isosceles trapezoid with <A><B> ∥ <C><D> and <B><C> = <D><A>",
        "isosceles trapezoid <A><B><C><D>, <A><B> ∥ <C><D>, <B><C> = <D><A>",
    ),
    "kite": (
        "<A><B><C><D> is a kite with <A><B> = <A><D> and <C><B> = <C><D>",
        "kite <A><B><C><D>, <A><B> = <A><D>, <C><B> = <C><D>",
    ),
    "cyclic_quadrilateral": ("<A><B><C><D> is inscribed in a circle", "<A><B><C><D> cyclic"),
    "altitude": (
        "<V><F> is the altitude from <V> to <B><C>",
        "<F> is the foot of the perpendicular from <V> to <B><C>",
        "<V><F> ⊥ <B><C> at <F>",
    ),
    "median": (
        "<V><M> is the median from <V>, so <M> is the midpoint of <B><C>",
        "<M> is the midpoint of <B><C> and <V><M> is a median",
        "median <V><M>, <M> midpoint of <B><C>",
    ),
    "bisector": (
        "<V><D> bisects ∠<X><V><Y> and meets <X><Y> at <D>",
        "<D> on <X><Y> with ∠<X><V><D> = ∠<D><V><Y>",
        "∠<X><V><D> = ∠<D><V><Y>, <D> ∈ <X><Y>",
    ),
    "midpoint": ("<M> is the midpoint of <A><B>", "<M> bisects segment <A><B>", "<M> midpoint of <A><B>"),
    "parallel": ("<A><B> is parallel to <C><D>", "<A><B> ∥ <C><D>"),
    "perpendicular": ("<A><B> is perpendicular to <C><D>", "<A><B> ⊥ <C><D>"),
    "equal": ("<A><B> = <C><D>",),
    "on_line": ("<P> lies on <A><B>", "<P> is a point on line <A><B>", "<P> ∈ <A><B>"),
    "intersection": ("<A><B> and <C><D> meet at <P>", "<A><B> ∩ <C><D> = <P>"),
    "circumcentre": (
        "<O> is the centre of the circle through <A>, <B> and <C>",
        "the circumcircle of triangle <A><B><C> has centre <O>",
        "<O> circumcentre of △<A><B><C>",
    ),
    "incentre": (
        "<I> is the incentre of triangle <A><B><C>",
        "the angle bisectors of triangle <A><B><C> meet at <I>",
        "<I> incentre of △<A><B><C>",
    ),
    "touch": ("circle <O> touches <B><C> at <T>", "⊙<O> touches <B><C> at <T>"),
    "centroid": (
        "<G> is the centroid of triangle <A><B><C>",
        "the medians of triangle <A><B><C> meet at <G>",
        "<G> centroid of △<A><B><C>",
    ),
    "orthocentre": (
        "<H> is the orthocentre of triangle <A><B><C>",
        "the altitudes of triangle <A><B><C> meet at <H>",
        "<H> orthocentre of △<A><B><C>",
    ),
    "on_circle": ("<P> lies on circle <O>", "<P> is a point on circle <O>", "<P> on ⊙<O>"),
    "chord": ("<A><B> is a chord of circle <O>", "chord <A><B> of ⊙<O>"),
    "diameter": (
        "<A><B> is a diameter of circle <O>",
        "<A><B> is a diameter of the circle with centre <O>",
        "diameter <A><B> of ⊙<O>",
    ),
    "tangent": (
        "<P><T> is tangent to circle <O> at <T>",
        "line <P><T> touches circle <O> at <T>",
        "<P><T> tangent to ⊙<O> at <T>",
    ),
    "secant": ("line <P><B> cuts circle <O> again at <C>", "secant <P><B><C> of ⊙<O>"),
    "length": ("<A><B> = <v>", "the length of <A><B> is <v>"),
    "angle": ("∠<A><B><C> = <v>°", "the angle <A><B><C> measures <v>°"),
}

_QUESTION = re.compile(rf" (Find the length of ({_NAME})({_NAME})\.|Find ∠({_NAME})({_NAME})({_NAME})\.)$")


def _compile(form: str) -> re.Pattern[str]:
    out, seen = [], set()
    for i, piece in enumerate(re.split(r"(<[A-Za-z]>)", form)):
        if not piece:
            continue
        if piece.startswith("<") and len(piece) == 3:
            role = piece[1]
            if role == "v":
                out.append(f"(?P<v>{_VALUE})")
            elif role in seen:
                out.append(f"(?P=r{role})")
            else:
                seen.add(role)
                out.append(f"(?P<r{role}>{_NAME})")
        else:
            text = re.escape(piece)
            if i == 0 and piece[0].islower():  # a later descriptive sentence is capitalised
                text = f"[{piece[0]}{piece[0].upper()}]" + re.escape(piece[1:])
            out.append(text)
    return re.compile("".join(out))


_COMPILED: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
    (kind, _compile(form), tuple(dict.fromkeys(re.findall(r"<([A-Za-z])>", form))))
    for kind, forms in FORMS.items()
    for form in forms
]


def read_statement(text: str) -> Statement:
    """The one statement ``text`` states. Raises ReadError if no form, or forms of two
    different meanings, match."""
    found = set()
    for kind, pattern, roles in _COMPILED:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        named = tuple((r, m.group(f"r{r}")) for r in roles if r != "v")
        found.add(Statement(kind, named, m.group("v") if "v" in roles else "", text))
    if not found:
        raise ReadError(f"cannot read the statement `{text}`")
    if len(found) > 1:
        raise ReadError(f"the statement `{text}` reads several ways: {sorted(s.kind for s in found)}")
    return found.pop()


@dataclass
class Reading:
    """A caption read: ``style`` (descriptive, facts or question), its statements, the
    question sentence (``""`` if none) and the points it asks about."""

    style: str
    statements: list[Statement] = field(default_factory=list)
    question: str = ""
    asks: tuple[str, ...] = ()


def read_caption(text: str) -> Reading:
    """Read a caption text (whitespace runs read as one space). Raises ReadError naming the
    part that is not in the language."""
    if not isinstance(text, str) or not text.strip():
        raise ReadError("empty caption")
    text = normalise(text)
    if text.startswith(DESCRIPTIVE_OPENING):
        if not text.endswith("."):
            raise ReadError("a descriptive caption must end with `.`")
        body = text[len(DESCRIPTIVE_OPENING) : -1]
        return Reading("descriptive", [read_statement(s) for s in re.split(r"\. (?=\S)", body)])
    style, question, asks, body = "facts", "", (), text
    if text.startswith(QUESTION_OPENING):
        style, body = "question", text[len(QUESTION_OPENING) :]
        m = _QUESTION.search(body)
        if m is not None:
            question = m.group(1)
            asks = tuple(g for g in m.groups()[1:] if g)
            body = body[: m.start()]
    if not body.endswith("."):
        raise ReadError(f"a {style} caption's statements must end with `.`")
    return Reading(style, [read_statement(s) for s in body[:-1].split("; ")], question, asks)


def normalise(text: str) -> str:
    """Whitespace runs collapsed, ends stripped."""
    return " ".join(str(text).split())


_VALUE_PARTS = re.compile(r"^(-?)([0-9]+(?:\.[0-9]+)?)?(?:√([0-9]+))?(?:/([0-9]+))?$")


def value_of(text: str) -> float:
    """A printed value as a float: ``3``, ``75/2``, ``3√2``, ``√3/2``, ``2√3/3``, ``2.5``.
    Raises ReadError for anything else."""
    m = _VALUE_PARTS.match(text)
    if not m or not (m.group(2) or m.group(3)):
        raise ReadError(f"cannot read the value `{text}`")
    sign, coef, root, den = m.groups()
    v = float(coef or 1) * math.sqrt(float(root or 1)) / float(den or 1)
    return -v if sign else v
