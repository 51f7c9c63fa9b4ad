"""What perturbation plugins receive and return.

A perturbation (the hard negatives of MMGeoLM, Sun et al. 2025) is an object with a ``name``,
a ``kind`` (``"image"`` or ``"caption"``) and ``propose(positive, rng)``, which yields
candidates: an :class:`ImageCandidate` is a changed Program whose figure the positive caption
must not describe; a :class:`CaptionCandidate` is a changed list of claims that must be false
on the positive figure. Every candidate names what it claims to break. The engine verifies
every candidate (:mod:`geoforge.verify`); plugins cannot bypass that.

``propose`` must be a pure function of ``(positive, rng)`` so that worker processes that load
the same plugins produce the same candidates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from geoforge.caption import Caption, Claim
from geoforge.program import Program
from geoforge.scene import Scene


@dataclass(frozen=True)
class PoolEntry:
    """Another sample of the same run, for retrieval negatives: its ``key``, caption ``text``
    and ``claims``."""

    key: str
    text: str
    claims: tuple[Claim, ...]


@dataclass(frozen=True)
class Positive:
    """The positive sample a perturbation works from.

    ``program`` and ``scene`` are the figure; ``caption`` is the positive caption (its
    ``claims`` are what a negative must contradict); ``claims`` are all the claims the
    sampler recorded (a superset); ``pool`` holds the other samples of the run, for
    retrieval.
    """

    key: str
    program: Program
    scene: Scene
    caption: Caption
    claims: tuple[Claim, ...]
    pool: tuple[PoolEntry, ...] = ()


@dataclass(frozen=True)
class ImageCandidate:
    """A changed figure: ``program`` (realised near the positive), the 1-based ``clause`` of
    the positive that was changed (``None`` if several), a human-readable ``change``, and the
    positive caption's claims it ``breaks``."""

    program: Program
    clause: int | None
    change: str
    breaks: tuple[Claim, ...]


@dataclass(frozen=True)
class CaptionCandidate:
    """A changed caption: its ``claims`` (written in the positive's style by geoforge, or
    ``text`` if the plugin wrote its own words for exactly these claims), a ``change``
    description, and the claims in it that are false on the positive (``breaks``)."""

    claims: tuple[Claim, ...]
    change: str
    breaks: tuple[Claim, ...]
    text: str | None = None


Candidate = ImageCandidate | CaptionCandidate


@runtime_checkable
class Perturbation(Protocol):
    """The interface a perturbation plugin registers (see :mod:`geoforge.hookspecs`)."""

    name: str
    kind: Literal["image", "caption"]

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterable[Candidate]:
        """Yield candidates for ``positive``; a pure function of ``(positive, rng)``."""
        ...


@dataclass
class Accepted:
    """A verified negative: the candidate, the ``plugin`` that made it, the claims found
    false with their violation in margin units (≥ 1 means clearly false), and, for an image
    negative, its PNG bytes and the fraction of pixels that differ from the positive."""

    plugin: str
    candidate: Candidate
    violated: list[tuple[Claim, float]] = field(default_factory=list)
    png: bytes | None = None
    pixel_diff: float = 0.0
    text: str = ""
