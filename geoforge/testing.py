"""Helpers and pytest fixtures for plugin authors.

Use them from a plugin's own tests::

    from geoforge.testing import make_positive, run_perturbation

    def test_my_perturbation_breaks_the_right_angle():
        positive = make_positive("A B C = r_triangle A B C; mark right B A C", ["right A B C"])
        report = run_perturbation(MyPerturbation(), positive)
        assert report.accepted, report.rejections

or, with pytest, the ``geoforge_positive`` fixture (a right triangle with an altitude) after
adding ``pytest_plugins = ["geoforge.testing"]`` to a ``conftest.py``. Every candidate goes
through the same verifier as in ``geoforge generate``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from geoforge.budget import Budget, PluginTimeout
from geoforge.caption import Caption, Claim, caption_text
from geoforge.perturb import (
    Accepted,
    CaptionCandidate,
    ImageCandidate,
    Perturbation,
    Positive,
    Rejected,
    read_only,
)
from geoforge.plugins import DEFAULT_TIME_BUDGET, candidate_problem
from geoforge.plugins.checks import perturbation_problem
from geoforge.program import parse_program
from geoforge.realise import realise
from geoforge.verify import DEFAULT_MARGINS, Margins, verify_caption, verify_image


def make_positive(program: str, claims: list[str], seed: int = 0, style: str = "facts") -> Positive:
    """A Positive from DSL text and claims written ``"kind arg1 arg2 ..."`` (see
    :data:`geoforge.caption.CLAIM_KINDS`). Raises ValueError if a claim does not hold on the
    realised figure, and ProgramError/RealiseError for a bad program."""
    scene = realise(parse_program(program), seed=seed)
    parsed = [Claim(c.split()[0], tuple(c.split()[1:])) for c in claims]
    for c in parsed:
        if not c.holds(scene):
            raise ValueError(f"claim `{' '.join(c.to_json())}` does not hold on the positive figure")
    text = caption_text(parsed, style, np.random.default_rng(seed))
    return Positive("test", scene.program, scene, Caption(text, style, parsed), tuple(parsed))


@dataclass
class Report:
    """What happened to a perturbation's candidates: the ``accepted`` negatives and the
    rejection reasons with their counts."""

    accepted: list[Accepted] = field(default_factory=list)
    rejections: Counter[str] = field(default_factory=Counter)


#: The end of a plugin's stream (a plugin may yield ``None``, which is garbage).
_END = object()


def run_perturbation(
    perturbation: Perturbation,
    positive: Positive,
    seed: int = 0,
    limit: int = 50,
    margins: Margins = DEFAULT_MARGINS,
    budget: float | None = DEFAULT_TIME_BUDGET,
) -> Report:
    """Propose up to ``limit`` candidates from ``perturbation`` for ``positive`` and verify each
    exactly as ``geoforge generate`` does. The plugin gets a read-only copy of ``positive``, as
    in a run (:func:`geoforge.perturb.read_only`), so a plugin that mutates it fails here too.
    A :class:`~geoforge.perturb.Rejected` item is counted under its reason. An item that
    ``generate`` would drop as garbage (not a candidate of the perturbation's kind, a field of
    the wrong type, a malformed claim: :func:`geoforge.plugins.candidate_problem`) is counted as
    ``"garbage: <why>"``, each kind of garbage apart. Exceptions from the plugin propagate (a
    test should see them).

    Raises ValueError, as ``register()`` refuses it, for a perturbation whose ``name``,
    ``kind`` or ``propose`` is wrong (:func:`geoforge.plugins.checks.perturbation_problem`),
    and TimeoutError when its own code takes more than ``budget`` seconds (default
    :data:`geoforge.plugins.DEFAULT_TIME_BUDGET`, the budget ``generate`` gives each plugin per
    positive; ``None``: unlimited), where ``generate`` would skip it for that positive."""
    from geoforge.render import render

    problem = perturbation_problem(perturbation)
    if problem:
        raise ValueError(f"register() would refuse this perturbation: {problem}")
    rng = np.random.default_rng(seed)
    report = Report()
    png = render(positive.scene)
    clock = Budget(budget)
    try:
        with clock.running():
            stream = iter(perturbation.propose(read_only(positive), rng))
        for _ in range(limit):
            with clock.running():
                candidate = next(stream, _END)
            if candidate is _END:
                break
            _judge(perturbation, positive, png, candidate, margins, report)
    except PluginTimeout:
        raise TimeoutError(
            f"{perturbation.name}: its propose took more than its time budget of {budget:g} s for "
            "this positive; geoforge generate would skip it here"
        ) from None
    return report


def _judge(
    perturbation: Perturbation,
    positive: Positive,
    png: bytes,
    candidate: object,
    margins: Margins,
    report: Report,
) -> None:
    """Count one proposed item into ``report``: garbage, the plugin's own rejection, or the
    verifier's verdict."""
    problem = candidate_problem(candidate, perturbation.kind)
    if problem is not None:
        report.rejections[f"garbage: {problem}"] += 1
        return
    if isinstance(candidate, Rejected):
        report.rejections[candidate.reason] += 1
        return
    if isinstance(candidate, ImageCandidate):
        verdict = verify_image(positive, candidate, png, perturbation.name, margins)
    else:
        assert isinstance(candidate, CaptionCandidate)
        verdict = verify_caption(positive, candidate, perturbation.name, margins)
    if verdict.ok and verdict.accepted is not None:
        report.accepted.append(verdict.accepted)
    else:
        report.rejections[verdict.reason] += 1


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixture
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def geoforge_positive() -> Positive:
        """A right triangle ABC (right angle at A, AB = 3, AC = 4) with its altitude AD."""
        return make_positive(
            "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
            "given length A B 3; given length A C 4; draw polygon A B C",
            ["right A B C", "length A B 3", "length A C 4", "altitude A D B C"],
        )
