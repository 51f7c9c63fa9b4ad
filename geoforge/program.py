"""Diagram programs: the IR, its text form (a superset of AlphaGeometry's DSL) and JSON form.

Text form, as in AlphaGeometry's problem files (``google-deepmind/alphageometry``,
``problem.py``)::

    a b c = triangle a b c; h = on_tline h b a c, on_tline h c a b ? perp a h b c

Clauses are separated by ``;``, the goal follows ``?`` (several goals are separated by ``;``),
and the constructions of one clause by ``,``. Accepted variants found in real files:

* output names omitted: ``h = on_tline b a c`` (the clause's points fill the construction's
  output positions) and ``a b c = triangle``;
* pinned coordinates: ``x@4.96_-0.13 = free x``;
* Newclid's ``|`` before auxiliary constructions (those clauses get ``aux=True``).

geoforge statements (clauses without ``=``) say what to draw and mark and which values to show:

* ``draw segment a b``, ``draw line a b``, ``draw ray a b``, ``draw circle o a`` (centre ``o``
  through ``a``), ``draw circumcircle a b c``, ``draw polygon a b c d``;
* ``mark right a b c`` (right-angle square at ``b``), ``mark equal a b c d ...`` (the same tick
  count on segments ``ab``, ``cd``, ...), ``mark angle a b c`` (arc at ``b``), ``mark
  equalangle a b c d e f`` (arcs with the same count);
* ``given length a b 3*sqrt(2)`` and ``given angle a b c 60`` (degrees): exact values, written as
  sympy expressions without spaces, shown as value labels and used in captions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from geoforge.errors import ProgramError
from geoforge.facts import Fact, check_fact_shape

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_']*$")
_PINNED = re.compile(r"^([A-Za-z][A-Za-z0-9_']*)@(-?[0-9.eE+-]+)_(-?[0-9.eE+-]+)$")

DRAW_KINDS = {"segment": 2, "line": 2, "ray": 2, "circle": 2, "circumcircle": 3, "polygon": -3}
MARK_KINDS = {"right": 3, "equal": -4, "angle": 3, "equalangle": -6}
GIVEN_KINDS = {"length": 2, "angle": 3}


def is_point_name(token: str) -> bool:
    """True if ``token`` is a valid point name (a letter, then letters, digits, ``_`` or ``'``)."""
    return bool(_NAME.match(token))


@dataclass(frozen=True)
class Call:
    """One construction applied in a clause, e.g. ``on_tline h b a c``.

    ``args`` are fully resolved: point names, and literal strings (``60``, ``1pi/3``, ``1/2``)
    in the construction's literal positions.
    """

    name: str
    args: tuple[str, ...]

    def text(self) -> str:
        """The call as DSL text: ``name arg1 arg2 ...``."""
        return " ".join((self.name, *self.args))


@dataclass(frozen=True)
class Clause:
    """A clause ``points = call, call, ...``: names new ``points`` and builds them.

    ``pinned`` maps a point to fixed float coordinates (``x@1.0_2.0``). ``aux`` marks clauses
    after Newclid's ``|`` (auxiliary constructions).
    """

    points: tuple[str, ...]
    calls: tuple[Call, ...]
    pinned: tuple[tuple[str, float, float], ...] = ()
    aux: bool = False

    def text(self) -> str:
        """The clause as DSL text with every output name written out."""
        pins = {p: (x, y) for p, x, y in self.pinned}
        lhs = " ".join(f"{p}@{pins[p][0]!r}_{pins[p][1]!r}" if p in pins else p for p in self.points)
        return f"{lhs} = " + ", ".join(c.text() for c in self.calls)


@dataclass(frozen=True)
class Statement:
    """A geoforge statement: ``kind`` is ``draw``, ``mark`` or ``given``; ``name`` the shape,
    mark or value type; ``args`` the point names followed, for ``given``, by one sympy
    expression (degrees for angles, diagram units for lengths)."""

    kind: str
    name: str
    args: tuple[str, ...]

    def text(self) -> str:
        """The statement as DSL text, e.g. ``mark right a h b``."""
        return " ".join((self.kind, self.name, *self.args))

    @property
    def points(self) -> tuple[str, ...]:
        """The point names this statement refers to (a given's value is excluded)."""
        return self.args[:-1] if self.kind == "given" else self.args


@dataclass(frozen=True)
class Program:
    """An ordered diagram program: clauses, geoforge statements and goals.

    Build one with :func:`parse_program` (text) or :meth:`from_json`; both validate it against
    the construction table. ``source`` names where it came from (``file:line``) for errors.
    """

    clauses: tuple[Clause, ...]
    statements: tuple[Statement, ...] = ()
    goals: tuple[Fact, ...] = ()
    source: str = field(default="", compare=False)

    @property
    def points(self) -> tuple[str, ...]:
        """Every point name in order of introduction."""
        return tuple(p for c in self.clauses for p in c.points)

    def text(self) -> str:
        """The program as DSL text; :func:`parse_program` of it gives an equal Program."""
        body = "; ".join([c.text() for c in self.clauses] + [s.text() for s in self.statements])
        aux = [i for i, c in enumerate(self.clauses) if c.aux]
        if aux:
            main = [c.text() for c in self.clauses[: aux[0]]]
            rest = [c.text() for c in self.clauses[aux[0] :]] + [s.text() for s in self.statements]
            body = "; ".join(main) + " | " + "; ".join(rest)
        if self.goals:
            body += " ? " + "; ".join(g.text() for g in self.goals)
        return body

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"clauses": [...], "statements": [...], "goals": [...]}``."""
        return {
            "clauses": [
                {
                    "points": list(c.points),
                    "calls": [{"name": k.name, "args": list(k.args)} for k in c.calls],
                    "pinned": {p: [x, y] for p, x, y in c.pinned},
                    "aux": c.aux,
                }
                for c in self.clauses
            ],
            "statements": [{"kind": s.kind, "name": s.name, "args": list(s.args)} for s in self.statements],
            "goals": [{"name": g.name, "args": list(g.args)} for g in self.goals],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str, source: str = "") -> Program:
        """Build a Program from :meth:`to_json` output (a dict or JSON text) and validate it.

        Raises ProgramError naming the missing or mistyped field.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise ProgramError(f"invalid JSON: {e}", source=source) from None
        try:
            clauses = tuple(
                Clause(
                    points=tuple(c["points"]),
                    calls=tuple(Call(k["name"], tuple(k["args"])) for k in c["calls"]),
                    pinned=tuple((p, float(x), float(y)) for p, (x, y) in c.get("pinned", {}).items()),
                    aux=bool(c.get("aux", False)),
                )
                for c in data["clauses"]
            )
            statements = tuple(
                Statement(s["kind"], s["name"], tuple(s["args"])) for s in data.get("statements", [])
            )
            goals = tuple(Fact(g["name"], tuple(g["args"])) for g in data.get("goals", []))
        except (KeyError, TypeError, ValueError) as e:
            raise ProgramError(f"malformed program JSON: missing or bad field {e}", source=source) from None
        return validate(cls(clauses, statements, goals, source))

    def canonical(self) -> str:
        """Canonical text: points renamed ``p0, p1, ...`` in order of introduction, the calls of
        each clause sorted, statements sorted. Programs that differ only in point names, call
        order inside a clause or statement order have the same canonical text."""
        from geoforge.constructions import REGISTRY
        from geoforge.facts import PREDICATES

        rename = {p: f"p{i}" for i, p in enumerate(self.points)}

        def sub(args: Iterable[str], literal: Iterable[bool] = ()) -> tuple[str, ...]:
            # Literals (``pi``, ``60``) are kept even where a point has the same name.
            flags = list(literal)
            return tuple(a if i < len(flags) and flags[i] else rename.get(a, a) for i, a in enumerate(args))

        def call_sub(k: Call) -> Call:
            c = REGISTRY[k.name]
            return Call(k.name, sub(k.args, (p in c.literals for p in c.params)))

        clauses = tuple(
            Clause(
                sub(c.points),
                tuple(sorted((call_sub(k) for k in c.calls), key=Call.text)),
                tuple((rename[p], x, y) for p, x, y in c.pinned),
                c.aux,
            )
            for c in self.clauses
        )
        statements = tuple(
            sorted(
                (Statement(s.kind, s.name, sub(s.points) + s.args[len(s.points) :]) for s in self.statements),
                key=Statement.text,
            )
        )
        goals = tuple(
            Fact(
                g.name,
                sub(
                    g.args,
                    (PREDICATES[g.name].is_literal(i, len(g.args)) for i in range(len(g.args))),
                ),
            )
            for g in self.goals
        )
        return Program(clauses, statements, goals).text()

    def canonical_hash(self) -> str:
        """SHA-256 hex digest (first 16 characters) of :meth:`canonical`: stable across runs,
        platforms and Python versions."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> Program:
        """A copy with fields replaced (``dataclasses.replace``), re-validated."""
        return validate(dataclasses.replace(self, **changes))


def _split_top(text: str) -> tuple[str, str]:
    if text.count("?") > 1:
        raise ProgramError("more than one `?`: expected `premises ? goal`", text=text)
    premises, _, goal = text.partition("?")
    return premises, goal


def parse_program(text: str, source: str = "") -> Program:
    """Parse DSL text into a validated :class:`Program`.

    ``source`` (``file:line``) is put in front of every error message. Raises ProgramError for
    a malformed clause, an unknown construction (with a close-match suggestion), a wrong
    arity, or an undefined or duplicate point, naming the 1-based clause index and its text.
    """
    text = text.strip()
    if not text:
        raise ProgramError("empty program: expected `a b c = triangle a b c; ...`", source=source)
    premises, goal_text = _split_top(text)
    main, bar, aux_text = premises.partition("|")
    if "|" in aux_text:
        raise ProgramError("more than one `|`: expected `clauses | auxiliary clauses`", source=source)
    pieces = [(p, False) for p in main.split(";")] + ([(p, True) for p in aux_text.split(";")] if bar else [])
    clauses: list[Clause] = []
    statements: list[Statement] = []
    for index, (raw, aux) in enumerate(pieces, start=1):
        piece = raw.strip()
        if not piece:
            if index == len(pieces) and not aux:
                continue
            raise ProgramError("empty clause: two `;` in a row?", clause=index, text=raw, source=source)
        if "=" in piece:
            clauses.append(_parse_clause(piece, index, aux, source))
        else:
            statements.append(_parse_statement(piece, index, source))
    goals = tuple(Fact(g.split()[0], tuple(g.split()[1:])) for g in goal_text.split(";") if g.strip())
    if "?" in text and not goals:
        raise ProgramError("`?` is followed by no goal", source=source)
    return validate(Program(tuple(clauses), tuple(statements), goals, source))


def _parse_clause(piece: str, index: int, aux: bool, source: str) -> Clause:
    lhs, _, rhs = piece.partition("=")
    if "=" in rhs:
        raise ProgramError("more than one `=` in a clause", clause=index, text=piece, source=source)
    points: list[str] = []
    pinned: list[tuple[str, float, float]] = []
    for token in lhs.split():
        m = _PINNED.match(token)
        if m:
            try:
                pinned.append((m.group(1), float(m.group(2)), float(m.group(3))))
            except ValueError:
                raise ProgramError(
                    f"bad pinned coordinates `{token}`: expected `name@x_y`",
                    clause=index,
                    text=piece,
                    source=source,
                ) from None
            points.append(m.group(1))
        elif is_point_name(token):
            points.append(token)
        else:
            raise ProgramError(
                f"bad point name `{token}`: expected a letter followed by letters, digits or `_`",
                clause=index,
                text=piece,
                source=source,
            )
    if not points:
        raise ProgramError("no point names before `=`", clause=index, text=piece, source=source)
    calls = []
    for part in rhs.split(","):
        tokens = part.split()
        if not tokens:
            raise ProgramError("empty construction after `=` or `,`", clause=index, text=piece, source=source)
        calls.append(Call(tokens[0], tuple(tokens[1:])))
    return Clause(tuple(points), tuple(calls), tuple(pinned), aux)


def _parse_statement(piece: str, index: int, source: str) -> Statement:
    tokens = piece.split()
    kinds = {"draw": DRAW_KINDS, "mark": MARK_KINDS, "given": GIVEN_KINDS}
    if tokens[0] not in kinds:
        raise ProgramError(
            "malformed clause: expected `points = construction args` or a statement starting with "
            "`draw`, `mark` or `given`",
            clause=index,
            text=piece,
            source=source,
        )
    if len(tokens) < 2 or tokens[1] not in kinds[tokens[0]]:
        options = ", ".join(sorted(kinds[tokens[0]]))
        raise ProgramError(
            f"unknown `{tokens[0]}` kind {tokens[1] if len(tokens) > 1 else '(none)'!r}: "
            f"expected one of {options}",
            clause=index,
            text=piece,
            source=source,
        )
    return Statement(tokens[0], tokens[1], tuple(tokens[2:]))


def validate(program: Program) -> Program:
    """Check ``program`` against the construction table and resolve omitted output names.

    Returns a Program whose calls all carry full argument lists. Raises ProgramError on an
    unknown construction (with a suggestion), a wrong arity, a bad literal, an undefined or a
    duplicate point, a statement or goal with a wrong arity or an unknown point.
    """
    from geoforge.constructions import resolve_call

    defined: set[str] = set()
    resolved: list[Clause] = []
    for index, clause in enumerate(program.clauses, start=1):
        text = clause.text()
        for p in clause.points:
            if p in defined:
                raise ProgramError(
                    f"point `{p}` is already defined",
                    clause=index,
                    text=text,
                    source=program.source,
                )
        if len(set(clause.points)) != len(clause.points):
            raise ProgramError(
                "a point is named twice before `=`", clause=index, text=text, source=program.source
            )
        calls = tuple(
            resolve_call(call, clause.points, defined, index=index, text=text, source=program.source)
            for call in clause.calls
        )
        defined.update(clause.points)
        resolved.append(dataclasses.replace(clause, calls=calls))
    for offset, st in enumerate(program.statements):
        _check_statement(st, defined, program.source, len(program.clauses) + offset + 1)
    for goal in program.goals:
        check_fact_shape(goal, defined, source=program.source, role="goal")
    return dataclasses.replace(program, clauses=tuple(resolved))


def _check_statement(st: Statement, defined: set[str], source: str, index: int) -> None:
    table = {"draw": DRAW_KINDS, "mark": MARK_KINDS, "given": GIVEN_KINDS}[st.kind]
    want = table[st.name]
    points = st.points
    if st.kind == "given" and len(st.args) != want + 1:
        raise ProgramError(
            f"`given {st.name}` takes {want} points and a value",
            clause=index,
            text=st.text(),
            source=source,
        )
    if want >= 0 and st.kind != "given" and len(points) != want:
        raise ProgramError(
            f"`{st.kind} {st.name}` takes {want} points, got {len(points)}",
            clause=index,
            text=st.text(),
            source=source,
        )
    if want < 0 and (len(points) < -want or (st.name.startswith("equal") and len(points) % (-want // 2))):
        raise ProgramError(
            f"`{st.kind} {st.name}` takes at least {-want} points"
            + (f" in groups of {-want // 2}" if st.name.startswith("equal") else ""),
            clause=index,
            text=st.text(),
            source=source,
        )
    for p in points:
        if p not in defined:
            raise ProgramError(f"undefined point `{p}`", clause=index, text=st.text(), source=source)
    if st.kind == "given":
        from geoforge.exact import parse_value

        try:
            parse_value(st.args[-1])
        except ProgramError as e:
            raise ProgramError(e.message, clause=index, text=st.text(), source=source) from None
