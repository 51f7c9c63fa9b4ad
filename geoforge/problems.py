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
from geoforge.program import parse_program
from geoforge.realise import realise

#: A goal holds if its residual is at most this (radians, fraction of the diagram size or
#: relative ratio, by the fact's kind). Goals are theorems, so float64 gives ~1e-12.
GOAL_TOL = 1e-6


@dataclass(frozen=True)
class Problem:
    """One named problem: ``text`` is the program line, ``line`` its 1-based line number."""

    name: str
    text: str
    path: str
    line: int

    @property
    def source(self) -> str:
        """``path:line`` of the program text."""
        return f"{self.path}:{self.line}"


def read_problems(path: str | Path) -> list[Problem]:
    """Read an AlphaGeometry problem file (name line, program line, repeated).

    Raises ProgramError naming the file and line if a name has no program after it.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ProgramError(f"cannot read problem file: {e.strerror}", source=str(path)) from None
    rows = [
        (i, line.strip()) for i, line in enumerate(raw, start=1) if line.strip() and not line.startswith("#")
    ]
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

    def to_json(self) -> dict[str, object]:
        """A JSON-ready record."""
        return {
            "name": self.name,
            "status": self.status,
            "source": self.source,
            "seconds": round(self.seconds, 4),
            "tries": self.tries,
            "seed": self.seed,
            "attempts_used": self.attempts_used,
            "residuals": self.residuals,
            "reason": self.reason,
        }


def check_problem(problem: Problem, seed: int = 0, attempts: int = 32) -> CheckResult:
    """Parse ``problem``, realise it and check its goals numerically; never raises for bad input.

    Some problems leave a choice that the goal depends on: which of two intersection points
    (AlphaGeometry picks one at random, ``numericals.py``'s ``reduce``) or the orientation of
    a free shape. So the goal is checked on up to ``attempts`` realisations with seeds
    ``seed, seed + 1, ...``; the result records how many were needed (``attempts_used``) and
    fails with the worst goal's residual on the first one if none works.
    """
    start = time.perf_counter()
    try:
        program = parse_program(problem.text, source=problem.source)
    except ProgramError as e:
        return CheckResult(
            problem.name, "invalid", problem.source, time.perf_counter() - start, reason=str(e)
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
            )
        residuals = {g.text(): residual(g, scene) for g in program.goals}
        failed = [t for t, r in residuals.items() if not r <= GOAL_TOL]
        result = CheckResult(
            problem.name,
            "goal_failed" if failed else "ok",
            problem.source,
            0.0,
            residuals,
            reason=(f"goal `{failed[0]}` off by {residuals[failed[0]]:.3g} on {attempts} realisations")
            if failed
            else "",
            tries=scene.tries,
            seed=seed + k,
            attempts_used=k + 1,
        )
        first = first or result
        if not failed:
            break
    final = result if result.status == "ok" else first
    assert final is not None
    final.seconds = time.perf_counter() - start
    return final
