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
from functools import lru_cache
from typing import Any

from geoforge.dialect import (
    ALPHAGEOMETRY,
    ANGLE_ARGS,
    ANGLE_PARAMS,
    check_dialect,
    from_geoforge_order,
    read_literal,
    to_geoforge_order,
    write_literal,
)
from geoforge.errors import ProgramError, UsageError, raise_all
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

    def text(self, dialect: str = ALPHAGEOMETRY) -> str:
        """The call as DSL text, ``name arg1 arg2 ...``, in ``dialect``'s argument order and
        literal form (see :mod:`geoforge.dialect`)."""
        if dialect == ALPHAGEOMETRY:
            return " ".join((self.name, *self.args))
        from geoforge.constructions import REGISTRY

        c = REGISTRY.get(self.name)
        if c is None:
            return " ".join((self.name, *self.args))
        args = tuple(
            write_literal(a, dialect, (self.name, p) in ANGLE_PARAMS) if p in c.literals else a
            for p, a in zip(c.params, self.args)
        )
        return " ".join((self.name, *from_geoforge_order(self.name, args, c.params, dialect)))


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

    def text(self, dialect: str = ALPHAGEOMETRY) -> str:
        """The clause as DSL text with every output name written out, in ``dialect``."""
        pins = {p: (x, y) for p, x, y in self.pinned}
        lhs = " ".join(f"{p}@{pins[p][0]!r}_{pins[p][1]!r}" if p in pins else p for p in self.points)
        return f"{lhs} = " + ", ".join(c.text(dialect) for c in self.calls)


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
    dialect: str = field(default=ALPHAGEOMETRY, compare=False)

    @property
    def points(self) -> tuple[str, ...]:
        """Every point name in order of introduction."""
        return tuple(p for c in self.clauses for p in c.points)

    def text(self, dialect: str | None = None) -> str:
        """The program as DSL text in ``dialect`` (default: the one it was read in);
        :func:`parse_program` of it in that dialect gives an equal Program."""
        d = dialect or self.dialect
        clauses = [c.text(d) for c in self.clauses]
        body = "; ".join(clauses + [s.text() for s in self.statements])
        aux = [i for i, c in enumerate(self.clauses) if c.aux]
        if aux:
            rest = clauses[aux[0] :] + [s.text() for s in self.statements]
            body = "; ".join(clauses[: aux[0]]) + " | " + "; ".join(rest)
        if self.goals:
            body += " ? " + "; ".join(_goal_text(g, d) for g in self.goals)
        return body

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"clauses": [...], "statements": [...], "goals": [...],
        "dialect": ...}``; arguments are in geoforge's order whatever the dialect."""
        return {
            "dialect": self.dialect,
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
            dialect = check_dialect(str(data.get("dialect", ALPHAGEOMETRY)))
        except (KeyError, TypeError, ValueError, UsageError) as e:
            raise ProgramError(f"malformed program JSON: missing or bad field {e}", source=source) from None
        return validate(cls(clauses, statements, goals, source, dialect))

    def renamed(self, mapping: dict[str, str]) -> Program:
        """A copy with points renamed by ``mapping`` (points it omits keep their names);
        literals (``pi``, ``60``) are kept even where a point has the same name. Not validated:
        the caller gives an injective mapping."""
        from geoforge.constructions import REGISTRY
        from geoforge.facts import PREDICATES

        def sub(args: Iterable[str], literal: Iterable[bool] = ()) -> tuple[str, ...]:
            flags = list(literal)
            return tuple(a if i < len(flags) and flags[i] else mapping.get(a, a) for i, a in enumerate(args))

        def call_sub(k: Call) -> Call:
            c = REGISTRY[k.name]
            return Call(k.name, sub(k.args, (p in c.literals for p in c.params)))

        clauses = tuple(
            Clause(
                sub(c.points),
                tuple(call_sub(k) for k in c.calls),
                tuple((mapping.get(p, p), x, y) for p, x, y in c.pinned),
                c.aux,
            )
            for c in self.clauses
        )
        statements = tuple(
            Statement(s.kind, s.name, sub(s.points) + s.args[len(s.points) :]) for s in self.statements
        )
        goals = tuple(
            Fact(
                g.name,
                sub(g.args, (PREDICATES[g.name].is_literal(i, len(g.args)) for i in range(len(g.args)))),
            )
            for g in self.goals
        )
        return dataclasses.replace(self, clauses=clauses, statements=statements, goals=goals)

    def canonical(self) -> str:
        """Canonical text: points renamed ``p0, p1, ...`` in order of introduction, the calls of
        each clause sorted, statements sorted, in AlphaGeometry's dialect. Programs that differ
        only in point names, call order inside a clause, statement order or dialect have the
        same canonical text."""
        named = self.renamed({p: f"p{i}" for i, p in enumerate(self.points)})
        clauses = tuple(
            dataclasses.replace(c, calls=tuple(sorted(c.calls, key=Call.text))) for c in named.clauses
        )
        statements = tuple(sorted(named.statements, key=Statement.text))
        return Program(clauses, statements, named.goals).text()

    def canonical_hash(self) -> str:
        """SHA-256 hex digest (first 16 characters) of :meth:`canonical`: stable across runs,
        platforms and Python versions. Cached per program (programs are immutable)."""
        return _canonical_hash(self)

    def same_canonical(self, other: Program) -> bool:
        """True if ``other`` has this program's :meth:`canonical` text (the same program up to
        point names, call order, statement order and dialect). Programs whose counts of
        clauses, statements and goals, whose construction names or whose pinned coordinates
        differ are told apart without building either text (a hard negative that pins a moved
        point differs from its positive, and from another move, there)."""
        if (
            (len(self.clauses), len(self.statements), len(self.goals))
            != (len(other.clauses), len(other.statements), len(other.goals))
            or _call_names(self) != _call_names(other)
            or _pins(self) != _pins(other)
        ):
            return False
        return self.canonical_hash() == other.canonical_hash()

    def replace(self, **changes: Any) -> Program:
        """A copy with fields replaced (``dataclasses.replace``), re-validated."""
        return validate(dataclasses.replace(self, **changes))


def _goal_text(goal: Fact, dialect: str) -> str:
    """A goal as DSL text in ``dialect`` (Newclid writes angle literals with ``o``)."""
    at = ANGLE_ARGS.get(goal.name)
    if at is None or dialect == ALPHAGEOMETRY:
        return goal.text()
    args = [write_literal(a, dialect, i == len(goal.args) + at) for i, a in enumerate(goal.args)]
    return " ".join((goal.name, *args))


@dataclass(frozen=True)
class _Piece:
    """One ``;``-separated piece of program text: its 1-based ``number``, raw text, 0-based
    ``offset`` in the whole text and whether it follows Newclid's ``|``."""

    number: int
    raw: str
    offset: int
    aux: bool = False

    def column(self, token: str = "") -> int:
        """The 1-based column of ``token`` (a whole word) in the text, else of the piece."""
        m = re.search(rf"(?<!\S){re.escape(token)}(?!\S)", self.raw) if token else None
        start = m.start() if m else len(self.raw) - len(self.raw.lstrip())
        return self.offset + start + 1


def _pieces(text: str, start: int, end: int, aux: bool, first: int) -> list[_Piece]:
    """Split ``text[start:end]`` on ``;`` into pieces numbered from ``first``."""
    out, offset = [], start
    for k, raw in enumerate(text[start:end].split(";")):
        out.append(_Piece(first + k, raw, offset, aux))
        offset += len(raw) + 1
    return out


def parse_program(text: str, source: str = "", dialect: str = ALPHAGEOMETRY) -> Program:
    """Parse DSL text in ``dialect`` (``alphageometry`` or ``newclid``, see
    :mod:`geoforge.dialect`) into a validated :class:`Program`.

    Every mistake is found in one pass: a malformed clause, an unknown construction (with a
    close-match suggestion), a wrong arity, a bad literal, an undefined or duplicate point, an
    empty clause. Each becomes a ProgramError naming ``source`` (``file:line``), the 1-based
    clause number and text, the column and, where one is known, a hint; one mistake is raised
    as itself, several as :class:`geoforge.errors.ProgramErrors`. Raises UsageError for an
    unknown dialect.
    """
    check_dialect(dialect)
    if not text.strip():
        raise ProgramError("empty program: expected `a b c = triangle a b c; ...`", source=source)
    if text.count("?") > 1:
        raise ProgramError(
            "more than one `?`: expected `premises ? goal`", source=source, column=text.rindex("?") + 1
        )
    qmark = text.find("?")
    end = qmark if qmark >= 0 else len(text)
    bar = text.find("|", 0, end)
    if bar >= 0 and text.find("|", bar + 1, end) >= 0:
        raise ProgramError("more than one `|`: expected `clauses | auxiliary clauses`", source=source)
    pieces = _pieces(text, 0, bar if bar >= 0 else end, False, 1)
    if bar >= 0:
        pieces += _pieces(text, bar + 1, end, True, len(pieces) + 1)
    errors: list[ProgramError] = []
    clauses: list[tuple[Clause, _Piece]] = []
    statements: list[tuple[Statement, _Piece]] = []
    named: set[str] = set()  # points of clauses that failed to parse, to avoid follow-on errors
    for piece in pieces:
        body = piece.raw.strip()
        try:
            if not body:
                if piece is pieces[-1] and not piece.aux and qmark < 0:
                    continue  # a trailing `;`
                if piece is pieces[-1] and qmark >= 0:
                    raise ProgramError("empty clause before `?`", hint="remove the `;` before `?`")
                raise ProgramError("empty clause: two `;` in a row?")
            if "=" in body:
                clauses.append((dataclasses.replace(parse_clause(body, dialect), aux=piece.aux), piece))
            else:
                statements.append((_parse_statement(body), piece))
        except ProgramError as e:
            lhs = body.partition("=")[0].split() if "=" in body else []
            named.update(t.split("@")[0] for t in lhs if is_point_name(t.split("@")[0]))
            errors.append(e.located(source, clause=piece.number, text=body, column=piece.column(e.token)))
    goals: list[tuple[Fact, _Piece]] = []
    if qmark >= 0:
        for piece in _pieces(text, qmark + 1, len(text), False, 0):
            tokens = [read_literal(t, dialect) for t in piece.raw.split()]
            if tokens:
                goals.append((Fact(tokens[0], tuple(tokens[1:])), piece))
        if not goals:
            errors.append(ProgramError("`?` is followed by no goal", source=source, column=qmark + 1))
    program = Program(
        tuple(c for c, _ in clauses),
        tuple(st for st, _ in statements),
        tuple(g for g, _ in goals),
        source,
        dialect,
    )
    try:
        valid, found = _validate(program, named), []
    except ProgramError as e:
        found = getattr(e, "errors", [e])
    if not errors and not found:
        return valid
    places = {("clause", i): p for i, (_, p) in enumerate(clauses)}
    places.update({("statement", i): p for i, (_, p) in enumerate(statements)})
    places.update({("goal", i): p for i, (_, p) in enumerate(goals)})
    for err in found:
        piece = places[err.place]  # type: ignore[attr-defined]
        number = "goal" if err.clause == "goal" else piece.number
        errors.append(
            err.located(source, clause=number, text=piece.raw.strip(), column=piece.column(err.token))
        )
    errors.sort(key=lambda e: e.column or 0)
    raise_all(errors)
    return valid


def parse_clause(piece: str, dialect: str) -> Clause:
    """One clause ``points = construction args, ...`` (no ``;``) in ``dialect``, parsed but
    not validated: the calls keep the arguments as written (a short form is resolved by
    :func:`validate`). Raises ProgramError (with its ``token``, no clause number) for a bad
    point name or pinned coordinates, no points, more than one ``=`` or an empty call."""
    from geoforge.constructions import REGISTRY

    lhs, _, rhs = piece.partition("=")
    if "=" in rhs:
        raise ProgramError("more than one `=` in a clause", token="=")
    points: list[str] = []
    pinned: list[tuple[str, float, float]] = []
    for token in lhs.split():
        m = _PINNED.match(token)
        if m:
            try:
                pinned.append((m.group(1), float(m.group(2)), float(m.group(3))))
            except ValueError:
                raise ProgramError(
                    f"bad pinned coordinates `{token}`: expected `name@x_y`", token=token
                ) from None
            points.append(m.group(1))
        elif is_point_name(token):
            points.append(token)
        else:
            raise ProgramError(
                f"bad point name `{token}`: expected a letter followed by letters, digits or `_`", token=token
            )
    if not points:
        raise ProgramError("no point names before `=`")
    calls = []
    for part in rhs.split(","):
        tokens = [read_literal(t, dialect) for t in part.split()]
        if not tokens:
            raise ProgramError("empty construction after `=` or `,`", token="=" if not calls else "")
        c = REGISTRY.get(tokens[0])
        args = tuple(tokens[1:])
        calls.append(Call(tokens[0], to_geoforge_order(tokens[0], args, c.params, dialect) if c else args))
    return Clause(tuple(points), tuple(calls), tuple(pinned))


def _parse_statement(piece: str) -> Statement:
    from geoforge.facts import PREDICATES

    tokens = piece.split()
    kinds = {"draw": DRAW_KINDS, "mark": MARK_KINDS, "given": GIVEN_KINDS}
    if tokens[0] not in kinds:
        hint = f"`{tokens[0]}` is a predicate: use it after `?`" if tokens[0] in PREDICATES else ""
        raise ProgramError(
            "malformed clause: expected `points = construction args` or a statement starting with "
            "`draw`, `mark` or `given`",
            token=tokens[0],
            hint=hint,
        )
    if len(tokens) < 2 or tokens[1] not in kinds[tokens[0]]:
        options = ", ".join(sorted(kinds[tokens[0]]))
        raise ProgramError(
            f"unknown `{tokens[0]}` kind {tokens[1] if len(tokens) > 1 else '(none)'!r}: "
            f"expected one of {options}",
            token=tokens[1] if len(tokens) > 1 else tokens[0],
        )
    return Statement(tokens[0], tokens[1], tuple(tokens[2:]))


def validate(program: Program) -> Program:
    """Check ``program`` against the construction table and resolve omitted output names.

    Returns a Program whose calls all carry full argument lists. Raises ProgramError (or
    :class:`geoforge.errors.ProgramErrors` for several) on an unknown construction (with a
    suggestion), a wrong arity, a bad literal, an undefined or a duplicate point, a statement
    or goal with a wrong arity or an unknown point.
    """
    return _validate(program)


def _validate(program: Program, named: set[str] | frozenset[str] = frozenset()) -> Program:
    """:func:`validate`, with ``named`` points counted as defined (those of clauses that did not
    parse). Each error found carries ``place``: ``("clause" | "statement" | "goal", index)``."""
    from geoforge.constructions import resolve_call

    errors: list[ProgramError] = []

    def keep(e: ProgramError, place: tuple[str, int]) -> None:
        e.place = place  # type: ignore[attr-defined]
        errors.append(e)

    defined: set[str] = set(named)
    resolved: list[Clause] = []
    changed = False
    for index, clause in enumerate(program.clauses, start=1):
        seen: set[str] = set()
        for p in clause.points:
            if (p in defined and p not in named) or p in seen:
                message = (
                    "a point is named twice before `=`" if p in seen else f"point `{p}` is already defined"
                )
                error = ProgramError(
                    message, clause=index, text=clause.text(), source=program.source, token=p
                )
                keep(error, ("clause", index - 1))
            seen.add(p)
        calls = []
        for call in clause.calls:
            try:
                calls.append(resolve_call(call, clause, defined, index=index, source=program.source))
            except ProgramError as e:
                keep(e, ("clause", index - 1))
                calls.append(call)
        defined.update(clause.points)
        if tuple(calls) == clause.calls:
            resolved.append(clause)
        else:
            resolved.append(dataclasses.replace(clause, calls=tuple(calls)))
            changed = True
    for offset, st in enumerate(program.statements):
        try:
            _check_statement(st, defined, program.source, len(program.clauses) + offset + 1)
        except ProgramError as e:
            keep(e, ("statement", offset))
    for k, goal in enumerate(program.goals):
        try:
            check_fact_shape(goal, defined, source=program.source, role="goal")
        except ProgramError as e:
            keep(e, ("goal", k))
    raise_all(errors)
    return dataclasses.replace(program, clauses=tuple(resolved)) if changed else program


def _check_statement(st: Statement, defined: set[str], source: str, index: int) -> None:
    from geoforge.errors import undefined_point

    table = {"draw": DRAW_KINDS, "mark": MARK_KINDS, "given": GIVEN_KINDS}[st.kind]
    want = table[st.name]
    points = st.points

    def error(message: str) -> ProgramError:  # its text is written only for a statement that fails
        return ProgramError(message, clause=index, text=st.text(), source=source, token=st.name)

    if st.kind == "given" and len(st.args) != want + 1:
        raise error(f"`given {st.name}` takes {want} points and a value")
    if want >= 0 and st.kind != "given" and len(points) != want:
        raise error(f"`{st.kind} {st.name}` takes {want} points, got {len(points)}")
    if want < 0 and (len(points) < -want or (st.name.startswith("equal") and len(points) % (-want // 2))):
        raise error(
            f"`{st.kind} {st.name}` takes at least {-want} points"
            + (f" in groups of {-want // 2}" if st.name.startswith("equal") else "")
        )
    for p in points:
        if p not in defined:
            raise undefined_point(p, defined, clause=index, text=st.text(), source=source)
    if st.kind == "given":
        from geoforge.exact import parse_value

        try:
            parse_value(st.args[-1])
        except ProgramError as e:
            raise e.located(source, clause=index, text=st.text(), token=st.args[-1]) from None


def _call_names(program: Program) -> list[str]:
    """The construction names of ``program``'s calls, sorted: the same for every program with
    the same canonical text."""
    return sorted(call.name for clause in program.clauses for call in clause.calls)


def _pins(program: Program) -> list[tuple[float, float]]:
    """The pinned coordinates of ``program``, sorted: the same for every program with the same
    canonical text, which writes them unchanged."""
    return sorted((x, y) for clause in program.clauses for _, x, y in clause.pinned)


@lru_cache(maxsize=8192)
def _canonical_hash(program: Program) -> str:
    return hashlib.sha256(program.canonical().encode()).hexdigest()[:16]
