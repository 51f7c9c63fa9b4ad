"""Problem files in AlphaGeometry's format, and numeric checking of their goals.

A problem file holds two lines per problem: a name, then ``premises ? goal`` (see
``google-deepmind/alphageometry``, ``jgex_ag_231.txt``). Blank lines and lines starting with
``#`` are skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from geoforge.errors import GeoforgeError, ProgramError
from geoforge.facts import residual
from geoforge.goals import Answer, answer, explain
from geoforge.program import parse_program
from geoforge.realise import realise

#: A goal holds if its residual is at most this (radians, fraction of the diagram size or
#: relative ratio, by the fact's kind). Goals are theorems, so float64 gives ~1e-12.
GOAL_TOL = 1e-6


@dataclass(frozen=True)
class Problem:
    """One named problem: ``text`` is the program line, ``line`` its 1-based line number (1
    for program text given on the command line, whose ``path`` is ``<argument>``, so that an
    error's ``<argument>:1:29`` reads as line and column, as a file's does; 0 for text from
    nowhere)."""

    name: str
    text: str
    path: str
    line: int

    @property
    def source(self) -> str:
        """``path:line`` of the program text, or ``path`` alone when it has no line."""
        return f"{self.path}:{self.line}" if self.line else self.path


def _read_lines(path: Path) -> list[str]:
    """The lines of a program or problem file. Raises ProgramError naming the file when it
    cannot be read or is not UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ProgramError(f"cannot read problem file: {e.strerror}", source=str(path)) from None
    except UnicodeDecodeError as e:
        raise ProgramError(
            f"cannot read problem file: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})",
            source=str(path),
        ) from None


def read_problems(path: str | Path) -> list[Problem]:
    """Read an AlphaGeometry problem file (name line, program line, repeated). A file with a
    single line (comments aside) is one program, named after the file's stem.

    Raises ProgramError naming the file and line if a name has no program after it or looks
    like program text (it holds ` = ` or `;`, or starts with the goal's `?`: a program written
    over several lines would otherwise have a later line read as a name), or the file if it
    cannot be read as UTF-8 text.
    """
    path = Path(path)
    raw = _read_lines(path)
    rows = [
        (i, line.strip()) for i, line in enumerate(raw, start=1) if line.strip() and not line.startswith("#")
    ]
    if len(rows) == 1:
        return [Problem(path.stem, rows[0][1], str(path), rows[0][0])]
    for lineno, name in rows[::2]:
        if " = " in name or ";" in name or name.startswith("?"):
            raise ProgramError(
                f"`{name}` is where a problem name goes but reads as program text: a problem file "
                "alternates name and program lines, and a program is one line, its clauses separated "
                "by `;`",
                source=f"{path}:{lineno}",
            )
    if len(rows) % 2:
        lineno, name = rows[-1]
        raise ProgramError(f"problem `{name}` has no program line after it", source=f"{path}:{lineno}")
    return [Problem(rows[k][1], rows[k + 1][1], str(path), rows[k + 1][0]) for k in range(0, len(rows), 2)]


@dataclass
class CheckResult:
    """The outcome of checking one problem: ``status`` is ``ok``, ``goal_failed``,
    ``unrealisable`` or ``invalid``; ``residuals`` maps each goal's text to its residual."""

    name: str
    status: str
    source: str
    seconds: float
    residuals: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    tries: int = 0
    seed: int = 0
    attempts_used: int = 0
    dialect: str = "alphageometry"
    errors: list[ProgramError] = field(default_factory=list)
    answers: dict[str, Answer] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready record; ``errors`` lists every mistake of an invalid program and
        ``answers`` the values that value-asking goals (``acompute``...) ask for."""
        return {
            "name": self.name,
            "status": self.status,
            "source": self.source,
            "dialect": self.dialect,
            "seconds": round(self.seconds, 4),
            "tries": self.tries,
            "seed": self.seed,
            "attempts_used": self.attempts_used,
            "residuals": self.residuals,
            "answers": {goal: a.to_json() for goal, a in self.answers.items()},
            "reason": self.reason,
            "errors": [e.to_json() for e in self.errors],
        }


def check_problem(
    problem: Problem, seed: int = 0, attempts: int = 32, dialect: str = "alphageometry"
) -> CheckResult:
    """Parse ``problem`` in ``dialect``, realise it and check its goals numerically; never
    raises for bad input.

    Some problems leave a choice that the goal depends on: which of two intersection points
    (AlphaGeometry picks one at random, ``numericals.py``'s ``reduce``) or the orientation of
    a free shape. So the goal is checked on up to ``attempts`` realisations with seeds
    ``seed, seed + 1, ...``; the result records how many were needed (``attempts_used``). If
    none works, it fails on the first one, and ``reason`` gives the failing goal's measured
    values (:func:`geoforge.goals.explain`). An invalid program lists every mistake in
    ``errors``. Value-asking goals (``acompute``...) get their :class:`Answer`.
    """
    start = time.perf_counter()
    try:
        program = parse_program(problem.text, source=problem.source, dialect=dialect)
    except ProgramError as e:
        errors = list(getattr(e, "errors", [e]))
        return CheckResult(
            problem.name,
            "invalid",
            problem.source,
            time.perf_counter() - start,
            reason=str(e),
            dialect=dialect,
            errors=errors,
        )
    first: CheckResult | None = None
    for k in range(attempts):
        try:
            scene = realise(program, seed=seed + k)
        except GeoforgeError as e:
            return CheckResult(
                problem.name,
                "unrealisable",
                problem.source,
                time.perf_counter() - start,
                reason=str(e),
                dialect=dialect,
            )
        residuals = {g.text(): residual(g, scene) for g in program.goals}
        failed = [g for g in program.goals if not residuals[g.text()] <= GOAL_TOL]
        reason = ""
        if failed:
            reason = (
                f"goal `{failed[0].text()}` fails on {attempts} realisations: {explain(failed[0], scene)}"
            )
        answers = {g.text(): a for g in program.goals if (a := answer(g, scene)) is not None}
        result = CheckResult(
            problem.name,
            "goal_failed" if failed else "ok",
            problem.source,
            0.0,
            residuals,
            reason=reason,
            tries=scene.tries,
            seed=seed + k,
            attempts_used=k + 1,
            dialect=dialect,
            answers=answers,
        )
        first = first or result
        if not failed:
            break
    final = result if result.status == "ok" else first
    assert final is not None
    final.seconds = time.perf_counter() - start
    return final
