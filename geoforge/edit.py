"""Program surgery for perturbations: delete points with everything built on them, replace a
clause, pin points, and drop the givens and marks a change makes untrue. Every function returns
a new, validated Program (or raises ProgramError)."""

from __future__ import annotations

import dataclasses

from geoforge.constructions import REGISTRY
from geoforge.dialect import ALPHAGEOMETRY
from geoforge.errors import ProgramError
from geoforge.program import Call, Clause, Program, parse_clause


def clause_index(program: Program, point: str) -> int:
    """The 0-based index of the clause that builds ``point``. Raises KeyError if none does."""
    for i, clause in enumerate(program.clauses):
        if point in clause.points:
            return i
    raise KeyError(point)


def clause_inputs(clause: Clause) -> set[str]:
    """The existing points a clause's constructions read."""
    used: set[str] = set()
    for call in clause.calls:
        c = REGISTRY[call.name]
        binding = dict(zip(c.params, call.args))
        used.update(binding[p] for p in c.inputs)
    return used


def dependents(program: Program, points: set[str]) -> set[str]:
    """``points`` and every point whose clause depends on them, directly or not."""
    gone = set(points)
    for clause in program.clauses:
        if clause_inputs(clause) & gone:
            gone.update(clause.points)
    return gone


def delete_points(program: Program, points: set[str]) -> Program:
    """``program`` without ``points``, the points built on them, and the statements and goals
    that mention any of them. A clause that builds several points goes whole."""
    gone = dependents(program, points)
    gone |= {p for c in program.clauses if set(c.points) & gone for p in c.points}
    gone = dependents(program, gone)
    clauses = tuple(c for c in program.clauses if not set(c.points) & gone)
    statements = tuple(s for s in program.statements if not set(s.points) & gone)
    goals = tuple(g for g in program.goals if not set(g.points) & gone)
    return dataclasses.replace(program, clauses=clauses, statements=statements, goals=goals).replace()


def replace_clause(program: Program, index: int, text: str) -> Program:
    """``program`` with clause ``index`` (0-based) replaced by the DSL clause ``text`` (which
    must be one clause building the same points, in AlphaGeometry's dialect). Raises
    ProgramError if it is not, or if the result is invalid (named as clause ``index + 1``)."""
    old = program.clauses[index]
    body = text.strip()
    if "=" not in body or any(mark in body for mark in ";?|"):
        raise ProgramError(f"replacement for clause {index + 1} must be one clause, got `{text}`")
    try:
        clause = parse_clause(body, ALPHAGEOMETRY)
    except ProgramError as e:
        raise e.located(program.source, clause=index + 1, text=body) from None
    if clause.points != old.points:
        raise ProgramError(
            f"replacement for clause {index + 1} builds {' '.join(clause.points)}, "
            f"not {' '.join(old.points)}: `{text}`"
        )
    clauses = (*program.clauses[:index], clause, *program.clauses[index + 1 :])
    return dataclasses.replace(program, clauses=clauses).replace()


def pin(program: Program, index: int, coords: dict[str, tuple[float, float]]) -> Program:
    """``program`` with clause ``index`` replaced by ``free`` points pinned at ``coords``
    (one per point of the clause, diagram units): ``p@x_y = free p`` for each point ``p``."""
    clause = program.clauses[index]
    pinned = tuple(
        Clause((p,), (Call("free", (p,)),), ((p, float(coords[p][0]), float(coords[p][1])),))
        for p in clause.points
    )
    new = program.clauses[:index] + pinned + program.clauses[index + 1 :]
    return dataclasses.replace(program, clauses=new).replace()


def drop_givens(program: Program, points: set[str]) -> Program:
    """``program`` without the ``given`` statements that mention ``points`` or any point
    built on them (their values would no longer be true of the figure)."""
    moved = dependents(program, points)
    kept = tuple(s for s in program.statements if s.kind != "given" or not set(s.points) & moved)
    return dataclasses.replace(program, statements=kept).replace()


def drop_marks(program: Program, points: set[str]) -> Program:
    """``program`` without the ``mark`` statements (right-angle squares, equal-length ticks,
    angle arcs) that mention ``points``: once a point has moved, a mark on it may show a fact
    the figure no longer has (a right-angle square on a 100° angle)."""
    kept = tuple(s for s in program.statements if s.kind != "mark" or not set(s.points) & points)
    return dataclasses.replace(program, statements=kept).replace()


def set_given(program: Program, name: str, points: tuple[str, ...], value: str) -> Program:
    """``program`` with the value of ``given NAME`` on ``points`` (either order, or either
    direction for an angle) set to ``value``; unchanged if there is no such given."""

    def matches(pts: tuple[str, ...]) -> bool:
        return pts == points or pts == tuple(reversed(points))

    statements = tuple(
        dataclasses.replace(s, args=(*s.points, value))
        if s.kind == "given" and s.name == name and matches(s.points)
        else s
        for s in program.statements
    )
    return dataclasses.replace(program, statements=statements).replace()
