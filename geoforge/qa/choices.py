"""Wrong options for multiple-choice questions: the values that wrong readings of a figure give.

For an exact value the readings are (in order of preference):

* an angle: its supplement (180° − x), its complement (90° − x), another angle of the figure,
  half or double;
* a length: another segment of the figure, half or double;
* a ratio: the ratio the other way round, the other part (1 − r), half or double.

Never a random number. Every option is kept only if it is wrong by a clear margin, from the
answer and from each option already kept: :attr:`geoforge.verify.Margins.angle_deg` for angles,
:attr:`~geoforge.verify.Margins.length_rel` (relative) for lengths and ratios; an angle lies in
(0°, 180°), a length or ratio is positive. A question with fewer than three such options is
asked in free form only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy

from geoforge.exact import parse_value
from geoforge.qa.items import Answer, Distractor
from geoforge.verify import DEFAULT_MARGINS, Margins

#: Options a multiple-choice question has besides its answer.
WRONG = 3


def _textbook(expr: sympy.Expr) -> bool:
    """True if ``expr`` is ``p/q`` or ``(p/q)·√n``, the forms a textbook prints as options."""
    coeff, rest = sympy.nsimplify(expr).as_coeff_Mul()
    return coeff.is_Rational and (
        rest == 1 or (rest.is_Pow and rest.exp == sympy.S.Half and rest.base.is_Integer)
    )


def clearly_apart(kind: str, x: float, y: float, margins: Margins = DEFAULT_MARGINS) -> bool:
    """True if values ``x`` and ``y`` of ``kind`` differ by the margin: degrees for angles,
    relative difference for lengths and ratios, any difference for counts."""
    if kind == "angle":
        return abs(x - y) >= margins.angle_deg
    if kind in ("length", "ratio"):
        return abs(x - y) >= margins.length_rel * max(abs(x), abs(y))
    return x != y


def value_readings(answer: Answer, others: Sequence[Answer] = ()) -> list[Distractor]:
    """The wrong readings of an exact ``answer`` (module docstring), unfiltered; ``others``
    are exact values of the same kind elsewhere in the figure (other angles, other segments)."""
    x = parse_value(answer.value)
    out: list[tuple[sympy.Expr, str]] = []
    if answer.kind == "angle":
        out += [(180 - x, "supplement"), (90 - x, "complement")]
        out += [(parse_value(o.value), "another angle") for o in others]
    elif answer.kind == "length":
        out += [(parse_value(o.value), "another segment") for o in others]
    else:
        out += [(1 / x, "inverted ratio"), (1 - x, "the other part")]
    out += [(x / 2, "half"), (2 * x, "double")]
    return [
        Distractor(Answer(answer.kind, str(sympy.nsimplify(v)).replace(" ", "")), why)
        for v, why in out
        if _textbook(v)
    ]


def pick(
    answer: Answer, readings: Sequence[Distractor], margins: Margins = DEFAULT_MARGINS
) -> list[Distractor]:
    """The first :data:`WRONG` readings, in order, that are in range and clearly apart from the
    answer and from each other (module docstring); fewer if there are not enough."""
    kept: list[Distractor] = []
    numeric = answer.kind in ("angle", "length", "ratio", "count")
    for d in readings:
        if d.answer.kind != answer.kind or d.answer == answer or any(k.answer == d.answer for k in kept):
            continue
        if numeric:
            v = d.answer.number()
            if (v <= 0 and answer.kind != "count") or (answer.kind == "angle" and v >= 180):
                continue
            if not all(
                clearly_apart(answer.kind, v, o.number(), margins)
                for o in (answer, *(k.answer for k in kept))
            ):
                continue
        kept.append(d)
        if len(kept) == WRONG:
            break
    return kept


def arrange(
    distractors: Sequence[Distractor], rng: np.random.Generator, choice_share: float
) -> tuple[str, int]:
    """The format of a question and where its answer goes among the options: ``("choice",
    k)`` with ``k`` uniform in 0–3, with probability ``choice_share``, when there are
    :data:`WRONG` distractors; else ``("free", 0)``. Draws from ``rng`` only when there are."""
    if len(distractors) < WRONG:
        return "free", 0
    if rng.uniform() >= choice_share:
        return "free", 0
    return "choice", int(rng.integers(WRONG + 1))
