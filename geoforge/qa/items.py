"""Q&A items: a question about one figure, its exact answer, its options and its flips.

An :class:`Answer` is typed (:data:`ANSWER_KINDS`) and exact: ``yes``/``no``, a point name (or
``none``), a whole count, a list of segments, or a value whose text is a sympy expression
(``3*sqrt(2)``; angles in degrees). A :class:`QAItem` is asked in one of two formats: ``free``
(answered as ``\\boxed{3√2}``) or ``choice`` (GeoQA-style, four options lettered A–D, answered
as ``\\boxed{B}``). Its three wrong options are :class:`Distractor` values, each with the wrong
reading of the figure that gives it. :class:`Flip` records an image negative of the figure
on which the same question has another answer.

Items are stored in ``KEY.json`` under ``qa`` as one JSON string (:func:`dump_items`), so that
every sample has the same Arrow type whatever its questions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from geoforge.errors import GeoforgeError

#: The kinds of answer; the last three are exact values.
ANSWER_KINDS = ("yesno", "point", "count", "segments", "angle", "length", "ratio")
VALUE_KINDS = ("angle", "length", "ratio")
#: Option letters of a multiple-choice question.
LETTERS = "ABCD"
FORMATS = ("free", "choice")
#: The answer to "which point" and "which segments" questions when the figure shows none.
NONE = "none"


class QAError(GeoforgeError):
    """Q&A records that cannot be read: the message names the sample or item and the field."""


@dataclass(frozen=True)
class Answer:
    """An exact answer: ``kind`` in :data:`ANSWER_KINDS` and its canonical ``value`` text."""

    kind: str
    value: str

    def display(self) -> str:
        """The answer as a textbook prints it: ``3√2``, ``60°``, ``1/2``, ``yes``, ``M``,
        ``AB, AC``."""
        if self.kind in VALUE_KINDS:
            from geoforge.exact import format_literal

            return format_literal(self.value, "°" if self.kind == "angle" else "")
        return self.value

    def number(self) -> float:
        """The float value of a value or count answer. Raises ValueError for other kinds."""
        if self.kind == "count":
            return float(self.value)
        if self.kind not in VALUE_KINDS:
            raise ValueError(f"a {self.kind} answer has no number")
        from geoforge.exact import parse_value

        return float(parse_value(self.value))


@dataclass(frozen=True)
class Distractor:
    """A wrong option: its ``answer`` and the ``reading`` of the figure that gives it
    (``supplement``, ``complement``, ``half``, ``double``, ``other segment`` ...)."""

    answer: Answer
    reading: str


@dataclass(frozen=True)
class Flip:
    """The answer of the same question on image negative ``tile`` of the sample (the tile's
    index in the ``negatives`` record's ``image`` list)."""

    tile: int
    answer: Answer


@dataclass(frozen=True)
class QAItem:
    """One question about one figure.

    ``type`` is ``perception`` (read the figure) or ``reasoning`` (derive a value);
    ``relation`` the question's kind (``perpendicular``, ``midpoint``, ``length`` ...);
    ``subject`` its points; ``question`` its words (a reasoning question states the
    figure's claims first); ``format`` ``free`` or ``choice``; ``distractors`` the three
    wrong options of a choice question, and ``order`` where the answer goes among them
    (index into :data:`LETTERS`); ``chain`` the facts and givens a reasoning answer follows
    from (DSL text); ``flips`` the image negatives that change the answer.
    """

    id: str
    type: str
    relation: str
    subject: tuple[str, ...]
    question: str
    answer: Answer
    format: str = "free"
    distractors: tuple[Distractor, ...] = ()
    order: int = 0
    chain: tuple[str, ...] = ()
    flips: tuple[Flip, ...] = field(default=())

    def options(self) -> tuple[Answer, ...]:
        """The four options of a choice question in letter order (empty for ``free``)."""
        if self.format != "choice":
            return ()
        wrong = [d.answer for d in self.distractors]
        return (*wrong[: self.order], self.answer, *wrong[self.order :])

    @property
    def correct(self) -> str:
        """The letter of the answer of a choice question (``""`` for ``free``)."""
        return LETTERS[self.order] if self.format == "choice" else ""

    def prompt(self) -> str:
        """What the model is asked: the question, then for ``choice`` the options as
        ``Choices: A. 30° B. 60° C. 120° D. 150°``."""
        if self.format != "choice":
            return self.question
        listed = " ".join(f"{LETTERS[i]}. {a.display()}" for i, a in enumerate(self.options()))
        return f"{self.question} Choices: {listed}"

    def response(self) -> str:
        """The reference answer: ``\\boxed{3√2}`` (free) or ``\\boxed{B}`` (choice)."""
        return "\\boxed{" + (self.correct or self.answer.display()) + "}"

    def letter_of(self, answer: Answer) -> str:
        """The letter of ``answer`` among this item's options, ``""`` if it is not one."""
        return next((LETTERS[i] for i, a in enumerate(self.options()) if a == answer), "")

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict with the same keys for every item (empty lists and strings where
        a format has nothing), the derived ``prompt``, ``response``, ``display``, ``choices``
        and ``correct`` included for readers that do not import geoforge."""
        return {
            "id": self.id,
            "type": self.type,
            "relation": self.relation,
            "subject": list(self.subject),
            "question": self.question,
            "answer_kind": self.answer.kind,
            "answer": self.answer.value,
            "display": self.answer.display(),
            "format": self.format,
            "choices": [a.display() for a in self.options()],
            "correct": self.correct,
            "distractors": [
                {"value": d.answer.value, "display": d.answer.display(), "reading": d.reading}
                for d in self.distractors
            ],
            "order": self.order,
            "chain": list(self.chain),
            "flips": [
                {
                    "tile": f.tile,
                    "answer": f.answer.value,
                    "display": f.answer.display(),
                    "correct": self.letter_of(f.answer),
                }
                for f in self.flips
            ],
            "prompt": self.prompt(),
            "response": self.response(),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> QAItem:
        """The item :meth:`to_json` wrote. Raises QAError naming the missing or bad field."""
        try:
            kind = str(data["answer_kind"])
            if kind not in ANSWER_KINDS:
                raise QAError(f"item {data.get('id')!r}: unknown answer_kind {kind!r}")
            if data["format"] not in FORMATS:
                raise QAError(f"item {data.get('id')!r}: unknown format {data['format']!r}")
            return cls(
                id=str(data["id"]),
                type=str(data["type"]),
                relation=str(data["relation"]),
                subject=tuple(data["subject"]),  # type: ignore[arg-type]
                question=str(data["question"]),
                answer=Answer(kind, str(data["answer"])),
                format=str(data["format"]),
                distractors=tuple(
                    Distractor(Answer(kind, str(d["value"])), str(d["reading"]))
                    for d in data["distractors"]  # type: ignore[attr-defined]
                ),
                order=int(data["order"]),  # type: ignore[call-overload]
                chain=tuple(data["chain"]),  # type: ignore[arg-type]
                flips=tuple(
                    Flip(int(f["tile"]), Answer(kind, str(f["answer"])))
                    for f in data["flips"]  # type: ignore[attr-defined]
                ),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise QAError(
                f"item {data.get('id') if isinstance(data, dict) else data!r}: bad field {e}"
            ) from None


def dump_items(items: list[QAItem] | tuple[QAItem, ...]) -> str:
    """The ``qa`` field of ``KEY.json``: ``{"items": [...]}`` as one JSON string."""
    return json.dumps({"items": [i.to_json() for i in items]}, sort_keys=True, ensure_ascii=False)


def load_items(text: str, where: str = "") -> list[QAItem]:
    """The items of a ``qa`` field. Raises QAError naming ``where`` if it is not Q&A JSON."""
    try:
        data = json.loads(text)
        raw = data["items"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise QAError(f"{where}: `qa` is not geoforge Q&A JSON ({type(e).__name__})") from None
    return [QAItem.from_json(d) for d in raw]
