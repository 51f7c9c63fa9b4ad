"""``misplaced_point``: its negatives pass geoforge's verifier and put a point on a segment it
is clearly off, hardest first."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geoforge_example_plugin import MIN_ANGLE_DEG, MisplacedPoint, drawn_segments, off_line_angle

from geoforge.caption import Claim
from geoforge.negatives import NegativeConfig, make_negatives
from geoforge.plugins import PluginHost, PluginSpec
from geoforge.render import render
from geoforge.testing import make_positive, run_perturbation
from geoforge.verify import DEFAULT_MARGINS, violation

#: AB ∥ CD cut by the transversal PQ, with P on AB and Q on CD (as geoforge's sampler draws it).
TRANSVERSAL = (
    "A = free A; B = lconst B A 3; C = s_angle B A C 70, lconst C A 2; D = on_pline D C A B; "
    "P = on_line P A B; Q = s_angle B P Q 60, on_line Q C D; "
    "draw segment A B; draw segment C D; draw segment P Q"
)
#: ∠ABC = atan(4/3) in the 3-4-5 right triangle of the fixture.
ANGLE_B = math.degrees(math.atan2(4, 3))


@pytest.fixture
def transversal():
    return make_positive(TRANSVERSAL, ["parallel A B C D", "on_segment P A B", "on_segment Q C D"])


def test_registers_through_its_entry_point():
    host = PluginHost(PluginSpec(env=False))
    info = next(p for p in host.plugins if p.name == "misplaced_point")
    assert (info.source, info.version, info.origin) == ("entry point", "0.1.0", "geoforge_example_plugin")
    assert info.registers == {"perturbations": ["misplaced_point"]}
    assert host.perturbations["misplaced_point"].kind == "caption"
    assert not host.failures


def test_every_negative_on_the_fixture_is_accepted_and_false_by_the_margin(geoforge_positive):
    report = run_perturbation(MisplacedPoint(), geoforge_positive)
    assert not report.rejections
    got = {a.candidate.breaks[0].args: a for a in report.accepted}
    # Each point on each drawn segment it is not on: A on BC, CD, BD; B on AC, AD; C on AB, AD;
    # D on AB, AC. D on BC and C on BD hold, so they are never proposed.
    assert sorted(got) == sorted(
        [
            ("A", "B", "C"),
            ("A", "C", "D"),
            ("A", "B", "D"),
            ("B", "A", "C"),
            ("B", "A", "D"),
            ("C", "A", "B"),
            ("C", "A", "D"),
            ("D", "A", "B"),
            ("D", "A", "C"),
        ]
    )
    for args, accepted in got.items():
        new = Claim("on_segment", args)
        assert accepted.violated == [(new, pytest.approx(violation(new, geoforge_positive.scene)))]
        assert accepted.violated[0][1] >= 1.0
        # The positive's claims are all kept; the false incidence comes last.
        assert accepted.candidate.claims == (*geoforge_positive.caption.claims, new)
        assert accepted.text.endswith(f"; {args[0]} ∈ {args[1]}{args[2]}.")
        # Off the line by far more than the verifier's 8° margin.
        assert off_line_angle(geoforge_positive.scene, *args) >= DEFAULT_MARGINS.angle_deg


def test_the_off_line_angles_are_those_of_the_3_4_5_triangle(geoforge_positive):
    scene = geoforge_positive.scene
    assert off_line_angle(scene, "A", "B", "C") == pytest.approx(ANGLE_B)  # ∠ABC
    assert off_line_angle(scene, "D", "A", "B") == pytest.approx(ANGLE_B)  # ∠DBA = ∠ABC
    assert off_line_angle(scene, "B", "A", "D") == pytest.approx(90.0)  # AD ⊥ BD
    assert off_line_angle(scene, "D", "B", "C") == pytest.approx(0.0, abs=1e-9)  # D is on BC


def test_proposals_come_hardest_first(geoforge_positive, transversal):
    for positive in (geoforge_positive, transversal):
        candidates = list(MisplacedPoint().propose(positive, np.random.default_rng(3)))
        angles = [off_line_angle(positive.scene, *c.breaks[0].args) for c in candidates]
        assert min(angles) >= MIN_ANGLE_DEG
        buckets = [a // 5 for a in angles]
        assert buckets == sorted(buckets)
    assert angles[0] // 5 == min(angles) // 5


def test_a_point_the_caption_places_is_moved_not_placed_twice(transversal):
    report = run_perturbation(MisplacedPoint(), transversal)
    assert not report.rejections and len(report.accepted) == 26
    moved = [a for a in report.accepted if a.candidate.breaks[0].args[0] in ("P", "Q")]
    assert len(moved) == 8
    for accepted in moved:
        new = accepted.candidate.breaks[0]
        claims = accepted.candidate.claims
        assert len(claims) == len(transversal.caption.claims)  # replaced, not added
        assert [c for c in claims if c.kind == "on_segment" and c.args[0] == new.args[0]] == [new]
        assert violation(new, transversal.scene) >= 1.0
    for accepted in report.accepted:
        assert all(v >= 1.0 for _, v in accepted.violated)


def test_proposals_are_a_pure_function_of_positive_and_rng(geoforge_positive):
    def run(seed: int) -> list[tuple[str, ...]]:
        rng = np.random.default_rng(seed)
        return [c.breaks[0].args for c in MisplacedPoint().propose(geoforge_positive, rng)]

    assert run(5) == run(5)
    assert sorted(run(5)) == sorted(run(6))


def test_drawn_segments_are_every_pair_on_a_drawn_line(geoforge_positive):
    assert drawn_segments(geoforge_positive.scene) == [
        ("A", "B"),
        ("A", "C"),
        ("A", "D"),
        ("B", "C"),
        ("B", "D"),
        ("C", "D"),
    ]


def test_make_negatives_keeps_its_caption_negatives(geoforge_positive):
    host = PluginHost(PluginSpec(modules=("geoforge_example_plugin",), entry_points=False, env=False))
    assert host.owner == {"misplaced_point": "geoforge_example_plugin"}
    negatives = make_negatives(
        geoforge_positive,
        render(geoforge_positive.scene),
        host,
        NegativeConfig(caption=4),
        np.random.default_rng(0),
    )
    assert [a.plugin for a in negatives.caption] == ["misplaced_point"] * 4
    assert not negatives.rejections and not host.failures
    for accepted in negatives.caption:
        [(claim, v)] = accepted.violated
        assert claim.kind == "on_segment" and v >= 1.0
