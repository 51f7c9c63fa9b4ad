"""Realisation: a Program → a Scene with float64 coordinates, deterministic from a seed.

The method follows AlphaGeometry's numerics (``google-deepmind/alphageometry``,
``numericals.py``): free points are sampled, every other point is the intersection of at most
two loci (line, ray or circle) or computed directly, and a clause that hits a degenerate
configuration is retried, then the whole program is restarted with fresh samples, up to a cap
(as Newclid does, with the reason kept). Checks after each clause:

* preconditions of every construction (``ncoll``, ``diff``, ``npara``, ``nperp``);
* near-parallel intersections (under :data:`geometry.MIN_CROSSING_ANGLE`);
* near-coincident points (closer than :data:`MIN_SEPARATION` of the diagram size);
* far-away points (further than :data:`MAX_SPREAD` diagram sizes from the centre);
* every fact the constructions declare, within :data:`FACT_TOL` (this also checks
  over-determined clauses with three or more loci).
"""

from __future__ import annotations

import math
from collections import Counter
from functools import cached_property

import numpy as np

from geoforge.constructions import REGISTRY, Construction
from geoforge.constructions.sketches import SKETCHES
from geoforge.errors import DegenerateError, RealiseError
from geoforge.facts import Fact, residual
from geoforge.geometry import (
    Circle,
    Line,
    Point,
    Ray,
    intersect_cc,
    intersect_lc,
    intersect_ll,
    norm,
)
from geoforge.program import Clause, Program
from geoforge.scene import Scene, drawing

#: Points closer than this fraction of the diagram size count as coincident.
MIN_SEPARATION = 0.02
#: Points further than this many diagram sizes from the centre of the others are rejected.
MAX_SPREAD = 6.0
#: A declared fact must hold to this residual (radians, fraction of size, or relative ratio).
FACT_TOL = 1e-7
#: Attempts at one clause before the whole program is restarted.
CLAUSE_TRIES = 10
#: A new point within this fraction of the diagram size of a placed one *is* that point, up to
#: rounding (the gaps seen are 0 to 2e-15 of the size). Usually the program builds one point
#: twice (a centroid's midpoint that another clause also builds, the foot from a right angle's
#: vertex) and no restart separates them; but it can also follow from an earlier random
#: choice (the bisector of ∠CBD is that of ∠CBA when D falls on ray BA, JGEX E051-7) or from
#: picking the intersection that is a placed point. So the realiser gives up once a clause has
#: built a placed point in :data:`SAME_POINT_SHARE` of ``max_tries`` attempts, not at once.
SAME_POINT = 1e-9
#: Share of ``max_tries`` attempts (at least one) in which one clause builds a placed point
#: (:data:`SAME_POINT`) before the realiser gives up on the program.
SAME_POINT_SHARE = 0.5


class _SamePoint(DegenerateError):
    """A new point coincides with a placed one up to rounding (:data:`SAME_POINT`)."""


class _Partial:
    """The points placed so far, seen as a Scene for residuals. ``floor`` is the least
    :attr:`scale`: 1 (the size of sampled shapes), or for a program with pinned points the
    size of the pinned figure, so that closeness thresholds scale with the figure. The size and
    centre are computed when first asked for (a trial state is often judged by facts that need
    neither)."""

    def __init__(self, points: dict[str, Point], floor: float = 1.0) -> None:
        self.points = points
        self.floor = floor
        self.unit = 1.0

    @cached_property
    def _xy(self) -> np.ndarray:
        return np.array(list(self.points.values())) if self.points else np.zeros((0, 2))

    @cached_property
    def span(self) -> float:
        """The diagonal of the points' bounding box (0 for fewer than two points)."""
        xy = self._xy
        return float(np.hypot(*(xy.max(axis=0) - xy.min(axis=0)))) if len(xy) > 1 else 0.0

    @cached_property
    def scale(self) -> float:
        """The figure size: :attr:`span`, at least ``floor``."""
        return max(self.span, self.floor)

    @cached_property
    def center(self) -> np.ndarray:
        """The mean of the points, (2,) float64."""
        return self._xy.mean(axis=0) if len(self._xy) else np.zeros(2)

    def add(self, new: dict[str, Point]) -> _Partial:
        """These points and ``new``."""
        return _Partial({**self.points, **new}, self.floor)


def _pinned_size(program: Program) -> float:
    """The diagonal of the pinned points' bounding box (1.0 without two pinned points)."""
    xy = np.array([(x, y) for c in program.clauses for _, x, y in c.pinned]).reshape(-1, 2)
    span = float(np.hypot(*(xy.max(axis=0) - xy.min(axis=0)))) if len(xy) > 1 else 0.0
    return span if span > 0 else 1.0


def _bind(c: Construction, args: tuple[str, ...]) -> dict[str, str]:
    return dict(zip(c.params, args))


def _bound(fact: Fact, binding: dict[str, str]) -> Fact:
    return Fact(fact.name, tuple(binding.get(a, a) for a in fact.args))


def _sample(locus: Line | Circle, rng: np.random.Generator, state: _Partial) -> Point:
    if isinstance(locus, Circle):
        t = rng.uniform(0, 2 * math.pi)
        return locus.center + locus.radius * np.array([math.cos(t), math.sin(t)])
    span = max(state.scale, 1.0)
    if isinstance(locus, Ray):
        return locus.p + locus.d * rng.uniform(0.25, 0.9) * span
    mid = locus.project(state.center)
    return mid + locus.d * rng.uniform(-0.6, 0.6) * span


def _intersect(a: Line | Circle, b: Line | Circle) -> list[Point]:
    """Intersections of two loci; points behind a ray's origin are dropped (AlphaGeometry's
    ``HalfLine``). Raises DegenerateError when none is left."""
    if isinstance(a, Circle) and not isinstance(b, Circle):
        a, b = b, a
    if isinstance(a, Circle) and isinstance(b, Circle):
        found = intersect_cc(a, b)
    elif isinstance(b, Circle):
        found = intersect_lc(a, b)
    else:
        found = [intersect_ll(a, b)]
    rays = [r for r in (a, b) if isinstance(r, Ray)]
    kept = [p for p in found if all(float(np.dot(p - r.p, r.d)) > 1e-9 for r in rays)]
    if not kept:
        raise DegenerateError("the loci meet only behind a ray's origin")
    return kept


def _choose(candidates: list[Point], state: _Partial, rng: np.random.Generator) -> Point:
    """Prefer intersections that are not existing points (AlphaGeometry's rule), then pick one
    at random."""
    fresh = [
        p
        for p in candidates
        if all(norm(p - q) > MIN_SEPARATION * state.scale for q in state.points.values())
    ]
    pool = fresh or candidates
    return pool[int(rng.integers(len(pool)))] if len(pool) > 1 else pool[0]


def _check_new(new: dict[str, Point], state: _Partial, pinned: bool = False) -> None:
    """Raise DegenerateError, with the distance, for a new point that is not finite, that
    nearly coincides with a placed one or (unless ``pinned``: the user put it there) that is
    far outside the figure."""
    placed = dict(state.points)
    threshold = MIN_SEPARATION * state.scale
    for name, p in new.items():
        if not np.all(np.isfinite(p)):
            raise DegenerateError(f"point `{name}` is not finite")
        far = norm(p - state.center)
        if not pinned and len(state.points) >= 2 and far > MAX_SPREAD * state.span:
            raise DegenerateError(
                f"point `{name}` is far outside the figure ({far:.3g} from its centre, over "
                f"{MAX_SPREAD:g} × its size {state.span:.3g})"
            )
        near = placed
        xy = state._xy
        if len(xy):
            # All gaps at once; where even the smallest clears the threshold by far more than
            # rounding, only this clause's own earlier points need the exact test below.
            gaps = np.hypot(xy[:, 0] - p[0], xy[:, 1] - p[1])
            if float(gaps.min()) > threshold * (1 + 1e-9):
                near = {n: q for n, q in placed.items() if n not in state.points}
        for other, q in near.items():
            gap = norm(p - q)
            if gap < threshold:
                raise (_SamePoint if gap <= SAME_POINT * state.scale else DegenerateError)(
                    f"point `{name}` nearly coincides with `{other}` ({gap:.3g} apart, under "
                    f"{MIN_SEPARATION:.0%} of the figure size {state.scale:.3g})"
                )
        placed[name] = p


def _nearest(locus: Line | Circle, target: Point) -> Point:
    """The point of ``locus`` nearest to ``target`` (a ray's origin if ``target`` is behind it)."""
    if isinstance(locus, Circle):
        v = target - locus.center
        n = norm(v)
        return locus.center + locus.radius * (v / n if n > 1e-12 else np.array([1.0, 0.0]))
    t = float(np.dot(target - locus.p, locus.d))
    if isinstance(locus, Ray):
        t = max(t, 1e-6)
    return locus.p + t * locus.d


def _place(
    clause: Clause, state: _Partial, rng: np.random.Generator, reference: dict[str, Point] | None = None
) -> dict[str, Point]:
    """Place one clause's points. With ``reference``, choices that would be random follow it
    instead: free shapes take its coordinates, a point on one locus is the locus point nearest
    to its reference, and of two intersections the nearer one is taken. Raises
    DegenerateError with the reason."""
    ref = {p: reference[p] for p in clause.points if p in reference} if reference else {}
    direct: dict[str, Point] = {}
    loci: list[Line | Circle] = []
    calls = [(REGISTRY[call.name], _bind(REGISTRY[call.name], call.args)) for call in clause.calls]
    for c, binding in calls:
        for f in c.preconditions:
            bf = _bound(f, binding)
            # Positive preconditions (cong, perp) hold only to rounding; negated ones are 0.
            if not residual(bf, state) <= FACT_TOL:
                raise DegenerateError(f"precondition `{bf.text()}` of `{c.name}` fails")
        for sk in c.sketch:
            args = [binding[a] for a in sk.args]
            values = [a if p in c.literals else state.points[a] for p, a in zip(sk.args, args)]
            result = SKETCHES[sk.name](rng, *values)
            if isinstance(result, tuple) and not c.inputs and len(ref) == len(clause.points):
                result = tuple(ref[binding[o]] for o in c.outputs)
            if isinstance(result, tuple):
                for name, p in zip((binding[o] for o in c.outputs), result):
                    direct.setdefault(name, np.asarray(p, dtype=np.float64))
            else:
                loci.append(result)
    pins = {p: np.array([x, y]) for p, x, y in clause.pinned}
    new: dict[str, Point] = {}
    if pins:
        new = {p: pins.get(p, direct.get(p)) for p in clause.points}
        if any(v is None for v in new.values()):
            raise DegenerateError("a pinned clause must pin every point it names")
    elif loci and clause.points[0] not in direct:
        name = clause.points[0]
        if len(loci) == 1:
            new = {name: _nearest(loci[0], ref[name]) if name in ref else _sample(loci[0], rng, state)}
        else:
            found = _intersect(loci[0], loci[1])
            if name in ref:
                new = {name: min(found, key=lambda p: norm(p - ref[name]))}
            else:
                new = {name: _choose(found, state, rng)}
    else:
        new = {p: direct[p] for p in clause.points}
    _check_new(new, state, pinned=bool(pins))
    trial = state.add(new)
    if not pins:
        for c, binding in calls:
            for f in c.facts:
                bf = _bound(f, binding)
                r = residual(bf, trial)
                if not r <= FACT_TOL:
                    raise DegenerateError(f"`{bf.text()}` of `{c.name}` does not hold (residual {r:.2g})")
    return new


def _false_given(scene: Scene) -> tuple[int, str] | None:
    """The 1-based statement index and reason of the first ``given`` that is false on the
    scene (lengths are compared up to :attr:`Scene.unit`), or ``None``: a figure must not show
    a length or angle it does not have."""
    program = scene.program
    for index, st in enumerate(program.statements, start=len(program.clauses) + 1):
        if st.kind == "given":
            r = residual(Fact(st.name, st.args), scene)
            if not r <= FACT_TOL:
                return index, (
                    f"the given value does not hold on the figure (residual {r:.3g}); "
                    "construct it, e.g. with s_angle or lconst"
                )
    return None


#: A snapshot of a first attempt after some clauses: the points, the generator's state, and the
#: failures and reasons so far.
_Snapshot = tuple[dict[str, Point], dict, Counter, dict]
#: A trie of clauses: each realised clause maps to the snapshot after it and the next level.
_Trie = dict[Clause, tuple[_Snapshot, "_Trie"]]


class _Prefixes:
    """First attempts near one reference, by their clauses (a trie), so that a program that
    starts with the same clauses as one realised before resumes after them.

    The hard negatives of one positive are realised near it one after another, and most keep
    the positive's first clauses (a moved point, an altered clause or a deleted one is usually
    late). What a first attempt has done after clause k depends only on the clauses up to k,
    the seed, the size floor and the reference, so resuming from a snapshot gives the same
    floats, generator state and failure counts as placing those clauses again. Only the last
    reference is kept (the positive whose negatives are being verified)."""

    def __init__(self) -> None:
        self.key: tuple[tuple[str, float, float], ...] | None = None
        self.tries: dict[tuple[int, float], _Trie] = {}

    def trie(self, reference: dict[str, Point], seed: int, floor: float) -> _Trie:
        key = tuple((n, float(p[0]), float(p[1])) for n, p in reference.items())
        if key != self.key:
            self.key, self.tries = key, {}
        return self.tries.setdefault((seed, floor), {})


_PREFIXES = _Prefixes()


def realise(
    program: Program,
    seed: int = 0,
    *,
    max_tries: int = 100,
    reference: dict[str, Point] | None = None,
    draw: bool = True,
) -> Scene:
    """Realise ``program`` into a Scene, deterministically from ``seed``.

    Each clause is tried up to :data:`CLAUSE_TRIES` times (once if it uses no randomness),
    then the whole program is restarted, up to ``max_tries`` times; a clause that builds a
    point already placed (:data:`SAME_POINT`) in :data:`SAME_POINT_SHARE` of them ends it
    early, since restarts rarely separate them. Raises RealiseError naming
    the clause that failed most often, its text, the number of attempts and the last reason,
    e.g. ``cannot realise clause 3 `x = ...` after 100 tries: near-parallel lines (angle
    0.000°)``.

    ``reference`` maps point names to float64 (2,) coordinates of another realisation (the
    positive of a hard negative): choices that would be random follow it, so an unchanged
    clause reproduces its points and a changed one lands as near to them as its loci allow.
    Near the same reference, a first attempt resumes after the longest run of first clauses
    realised before (:class:`_Prefixes`), with the same result.

    ``draw=False`` leaves the scene's ``lines`` and ``circles`` empty, for a caller that draws
    a changed program on these points itself (the verifier, after restoring marks).
    """
    rng = np.random.default_rng(seed)
    failures: Counter[int] = Counter()
    reasons: dict[int, str] = {}
    floor = _pinned_size(program) if any(c.pinned for c in program.clauses) else 1.0
    trie = _PREFIXES.trie(reference, seed, floor) if reference is not None else None
    same_limit = max(1, int(max_tries * SAME_POINT_SHARE))
    same: Counter[int] = Counter()  # attempts in which a clause built a placed point
    for attempt in range(1, max_tries + 1):
        state = _Partial({}, floor)
        node = trie if attempt == 1 else None
        first = 0
        if node is not None:
            snapshot = None
            for clause in program.clauses:
                if clause not in node:
                    break
                snapshot, node = node[clause]
                first += 1
            if snapshot is not None:
                points, rng_state, failed, why = snapshot
                state = _Partial({n: p.copy() for n, p in points.items()}, floor)
                rng.bit_generator.state = rng_state
                failures, reasons = Counter(failed), dict(why)
        complete = True
        for index, clause in enumerate(program.clauses[first:], start=first + 1):
            placed = was_same = False
            for _ in range(CLAUSE_TRIES):
                before = rng.bit_generator.state
                try:
                    new = _place(clause, state, rng, reference)
                except DegenerateError as e:
                    failures[index] += 1
                    reasons[index] = e.reason
                    if isinstance(e, _SamePoint) and not was_same:
                        was_same = True
                        same[index] += 1
                    if same[index] >= same_limit or all(c.pinned for c in program.clauses[:index]):
                        # The same point twice in many attempts, or only pinned points so far:
                        # further attempts would fail the same way.
                        raise RealiseError(
                            clause=index,
                            text=clause.text(),
                            tries=attempt,
                            reason=e.reason,
                            source=program.source,
                        ) from None
                    if rng.bit_generator.state == before:
                        break
                    continue
                state = state.add(new)
                placed = True
                break
            if not placed:
                complete = False
                break
            if node is not None:
                points = {n: p.copy() for n, p in state.points.items()}
                child: _Trie = {}
                node[clause] = ((points, rng.bit_generator.state, Counter(failures), dict(reasons)), child)
                node = child
        if complete:
            lines, circles = drawing(program, state.points) if draw else ((), ())
            scene = Scene(program, dict(state.points), seed, attempt, lines, circles)
            false = _false_given(scene)
            if false is None:
                return scene
            failures[false[0]] += 1
            reasons[false[0]] = false[1]
    worst = max(failures, key=lambda i: (failures[i], i))
    texts = [c.text() for c in program.clauses] + [st.text() for st in program.statements]
    raise RealiseError(
        clause=worst,
        text=texts[worst - 1],
        tries=max_tries,
        reason=reasons[worst],
        source=program.source,
    )
