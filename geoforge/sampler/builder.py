"""The program builder that sampler families write into."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geoforge.caption import Claim, Target
from geoforge.program import Program, parse_program

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass
class Spec:
    """A sampled figure before realisation: the ``program``, what its caption may claim, the
    values a question may ask for, its ``family`` and the ``features`` added to it."""

    program: Program
    claims: list[Claim]
    targets: list[Target]
    family: str
    features: list[str]


@dataclass
class Builder:
    """Collects clauses, statements, claims and targets while a family builds a figure.

    ``context`` records what exists for features to build on: ``triangle`` (3 names),
    ``quad`` (4 names), ``circle`` (centre, a point on it), ``parallels`` (4 names, ab ∥ cd).
    """

    rng: np.random.Generator
    clauses: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    context: dict[str, tuple[str, ...]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def name(self, *preferred: str) -> str:
        """A fresh point name: the first free of ``preferred``, else the next free letter,
        then ``A1``, ``B1``, ..."""
        for p in (*preferred, *_ALPHABET, *(f"{c}1" for c in _ALPHABET)):
            if p not in self.used:
                self.used.add(p)
                return p
        raise RuntimeError("out of point names")

    def names(self, *preferred: str) -> tuple[str, ...]:
        """One fresh name per preferred letter (see :meth:`name`)."""
        return tuple(self.name(p) for p in preferred)

    def clause(self, text: str) -> None:
        """Append a clause of DSL text."""
        self.clauses.append(text)

    def stmt(self, text: str) -> None:
        """Append a ``draw``/``mark``/``given`` statement."""
        self.statements.append(text)

    def claim(self, kind: str, *args: str) -> None:
        """Record a caption claim."""
        self.claims.append(Claim(kind, tuple(args)))

    def target(self, kind: str, *points: str) -> None:
        """Record a value a question may ask for."""
        self.targets.append(Target(kind, tuple(points)))

    def choice(self, options: list | tuple):  # type: ignore[no-untyped-def]
        """A uniformly random element of ``options``."""
        return options[int(self.rng.integers(len(options)))]

    def spec(self, family: str) -> Spec:
        """The finished :class:`Spec` (the program is parsed and validated)."""
        program = parse_program("; ".join(self.clauses + self.statements))
        return Spec(program, list(self.claims), list(self.targets), family, list(self.features))
