"""Dialects of the program text: AlphaGeometry's (the default) and Newclid's.

Both dialects share the clause syntax (``points = construction args, ...; ... ? goal``). Newclid's
(``Newclid/Newclid``, its JGEX construction definitions and problem files) differs in two ways
that matter when a program is read or written:

* angle literals carry a degree suffix: ``s_angle a b x 63o`` is 63° (AlphaGeometry writes
  ``63``); ``2pi/3`` is radians in both;
* some constructions put their new points first: Newclid's ``parallelogram x a b c`` is
  AlphaGeometry's ``parallelogram a b c x``, ``square x y a b`` is ``square a b x y``
  (:data:`NEWCLID_ORDER`).

A :class:`geoforge.program.Program` always holds geoforge's (AlphaGeometry's) argument order and
plain-degree literals; it records the dialect it was read in (``Program.dialect``) and writes its
text back in that dialect, so ``parse_program(p.text(), dialect=p.dialect) == p``. The canonical
form and hash do not depend on the dialect.
"""

from __future__ import annotations

import re

from geoforge.errors import UsageError

ALPHAGEOMETRY = "alphageometry"
NEWCLID = "newclid"
DIALECTS = (ALPHAGEOMETRY, NEWCLID)

#: Newclid's parameter order, as geoforge's parameter names, for the constructions whose order
#: differs from AlphaGeometry's (Newclid/Newclid ``jgex/constructions``: ``PARALLELOGRAM`` has
#: ``args=(x, a, b, c)``, ``SQUARE`` has ``args=(x, y, a, b)``).
NEWCLID_ORDER: dict[str, tuple[str, ...]] = {
    "parallelogram": ("x", "a", "b", "c"),
    "square": ("x", "y", "a", "b"),
}
#: Literal positions that hold angles: construction parameters, and predicate argument indices
#: (negative: from the end).
ANGLE_PARAMS = {("s_angle", "y"), ("aconst", "r")}
ANGLE_ARGS = {"s_angle": -1, "aconst": -1, "aequation": -1}

_DEGREES = re.compile(r"^(-?[0-9]+(?:\.[0-9]+)?)o$")
_PLAIN = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")


def check_dialect(name: str) -> str:
    """``name`` if it is a dialect; raises UsageError naming the dialects otherwise."""
    if name not in DIALECTS:
        raise UsageError(f"unknown dialect {name!r}: expected one of {', '.join(DIALECTS)}")
    return name


def read_literal(token: str, dialect: str) -> str:
    """A literal token in geoforge's form: Newclid's ``63o`` becomes ``63`` (degrees)."""
    if dialect == NEWCLID:
        m = _DEGREES.match(token)
        if m:
            return m.group(1)
    return token


def write_literal(token: str, dialect: str, angle: bool) -> str:
    """A literal token in ``dialect``'s form: an angle in plain degrees gets Newclid's ``o``."""
    return f"{token}o" if dialect == NEWCLID and angle and _PLAIN.match(token) else token


def to_geoforge_order(
    name: str, args: tuple[str, ...], params: tuple[str, ...], dialect: str
) -> tuple[str, ...]:
    """A construction's full argument list in geoforge's order. ``params`` are its parameter
    names in geoforge's order; lists of another length (the short form) are returned as given."""
    order = NEWCLID_ORDER.get(name) if dialect == NEWCLID else None
    if order is None or len(args) != len(params):
        return args
    by_name = dict(zip(order, args))
    return tuple(by_name[p] for p in params)


def from_geoforge_order(
    name: str, args: tuple[str, ...], params: tuple[str, ...], dialect: str
) -> tuple[str, ...]:
    """The inverse of :func:`to_geoforge_order`: a full argument list in ``dialect``'s order."""
    order = NEWCLID_ORDER.get(name) if dialect == NEWCLID else None
    if order is None or len(args) != len(params):
        return args
    by_name = dict(zip(params, args))
    return tuple(by_name[p] for p in order)
