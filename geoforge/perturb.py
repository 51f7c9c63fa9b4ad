"""What perturbation plugins receive and return.

A perturbation (the hard negatives of MMGeoLM, Sun et al. 2025) is an object with a ``name``,
a ``kind`` (``"image"`` or ``"caption"``) and ``propose(positive, rng)``, which yields
candidates: an :class:`ImageCandidate` is a changed Program whose figure the positive caption
must not describe; a :class:`CaptionCandidate` is a changed list of claims that must be false
on the positive figure. Every candidate names what it claims to break. The engine verifies
every candidate (:mod:`geoforge.verify`); plugins cannot bypass that.

``propose`` must be a pure function of ``(positive, rng)`` so that worker processes that load
the same plugins produce the same candidates. It receives a read-only copy of the positive
(:func:`read_only`), never the one the verifier compares against.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
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
    retrieval. Plugins get it through :func:`read_only`.
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


@dataclass(frozen=True)
class Rejected:
    """A proposal that a plugin could not turn into a candidate, e.g. an LLM reply with no
    program in it. It is counted like a verifier's rejection, under the plugin's name and
    ``reason``, and it uses up one of the positive's checks (the cap). ``reason`` is a short
    fixed phrase (``"no program in the reply"``). It is a counter key, so it must not hold
    values, paths or secrets."""

    reason: str


def read_only(positive: Positive) -> Positive:
    """A copy of ``positive`` for one plugin to read: the host keeps the original for the
    verifier, so nothing a plugin does to its copy changes what negatives are judged against.

    What can change in place is copied *and* frozen: every numpy array (``scene.points``'
    coordinates, circle centres, the cached ``scene.coords``) is a fresh copy with
    ``flags.writeable = False``, and ``scene.points`` and ``scene.meta`` are
    :class:`types.MappingProxyType` views of fresh dicts. So an in-place change such as
    ``positive.scene.points["A"] += shift`` raises ``ValueError: output array is read-only``
    and ``positive.scene.points["A"] = xy`` raises ``TypeError: 'mappingproxy' object does not
    support item assignment``; ``Positive`` and ``Scene`` are frozen dataclasses, so assigning
    a field raises :class:`dataclasses.FrozenInstanceError`. ``caption`` (a mutable
    :class:`~geoforge.caption.Caption`) is a copy with its own ``claims`` list: changing it
    raises nothing but changes only this plugin's copy. The program, the claims and the pool
    are immutable (frozen dataclasses of tuples) and are shared, not copied.

    Why freeze *and* copy: freezing turns an accidental in-place edit into a clear error at the
    line that makes it, instead of silently wrong negatives; the copy per plugin means that
    even a deliberate bypass (``arr.flags.writeable = True``, ``object.__setattr__``) reaches
    only that plugin's copy, never the host's positive nor another plugin's. The cost is a few
    small arrays per plugin and positive (tens of microseconds; see docs/plugins.md).
    """
    scene = positive.scene
    view = dataclasses.replace(
        scene,
        points=MappingProxyType({n: _frozen(p) for n, p in scene.points.items()}),  # type: ignore[arg-type]
        circles=tuple(dataclasses.replace(c, center=_frozen(c.center)) for c in scene.circles),
        meta=MappingProxyType(copy.deepcopy(dict(scene.meta))),  # type: ignore[arg-type]
    )
    view.coords.flags.writeable = False  # computed on the copy now, so it is frozen too
    caption = dataclasses.replace(positive.caption, claims=list(positive.caption.claims))
    return dataclasses.replace(positive, scene=view, caption=caption)


def _frozen(array: np.ndarray) -> np.ndarray:
    """A non-writeable copy of ``array``."""
    out = np.array(array, copy=True)
    out.flags.writeable = False
    return out


@runtime_checkable
class Perturbation(Protocol):
    """The interface a perturbation plugin registers (see :mod:`geoforge.hookspecs`)."""

    name: str
    kind: Literal["image", "caption"]

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterable[Candidate | Rejected]:
        """Yield candidates for ``positive``, or :class:`Rejected` for a proposal that could not
        become one; a pure function of ``(positive, rng)``."""
        ...


@dataclass
class Accepted:
    """A verified negative: the candidate, the ``plugin`` that made it, the claims found
    false with their violation in margin units (≥ 1 means clearly false), and, for an image
    negative, its PNG bytes and the fraction of pixels that differ from the positive. ``text``
    is a caption negative's words; ``how`` says how it is false (``geometry``, ``value``,
    ``undrawn circle``, ``absent point``; see :data:`geoforge.verify.HOW`); ``restored``
    counts the positive's statements and strokes the engine put back on an image negative;
    ``grey`` is an image negative's render as (H, W) uint8, the pixels ``png`` encodes (for the
    corpus's strip of negatives and the duplicate check, without decoding the PNG again)."""

    plugin: str
    candidate: Candidate
    violated: list[tuple[Claim, float]] = field(default_factory=list)
    png: bytes | None = None
    pixel_diff: float = 0.0
    text: str = ""
    how: str = "geometry"
    restored: int = 0
    grey: np.ndarray | None = field(default=None, compare=False, repr=False)
