"""The plugin system: loading, isolation of broken plugins, the built-in perturbations, the
verifier that judges them, and the program surgery they use."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

import geoforge
from geoforge.caption import CLAIM_KINDS, Claim
from geoforge.constructions import REGISTRY
from geoforge.edit import delete_points, drop_givens, drop_marks, pin, replace_clause, set_given
from geoforge.errors import ProgramError
from geoforge.negatives import NegativeConfig, make_negatives
from geoforge.perturb import CaptionCandidate, ImageCandidate, PoolEntry, Positive
from geoforge.plugins import ENV_VAR, PluginHost, PluginSpec
from geoforge.program import parse_program
from geoforge.realise import realise
from geoforge.scene import Scene
from geoforge.verify import (
    claim_arity,
    claim_key,
    claim_problem,
    false_marks,
    negative_text,
    verify_caption,
    verify_image,
    violation,
)

# The `geoforge_positive` fixture. geoforge.testing itself is imported late (below): pytest warns
# when a module it loads as a plugin was imported before it.
pytest_plugins = ["geoforge.testing"]

if TYPE_CHECKING:
    from geoforge.testing import Report

BUILT_INS = {"alter_relation", "caption_rules", "delete_point", "move_vertex", "retrieval"}
IMAGE_BUILT_INS = ("alter_relation", "delete_point", "move_vertex")
GEOFORGE = Path(sys.executable).with_name("geoforge")

#: A right triangle with an altitude whose right angles are marked (squares on the figure).
MARKED = (
    "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
    "draw polygon A B C; draw segment A D; mark right B A C; mark right A D B"
)


@pytest.fixture(autouse=True)
def _no_env_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the plugins they ask for, whatever the caller's environment holds."""
    monkeypatch.delenv(ENV_VAR, raising=False)


def make_positive(program: str, claims: list[str], seed: int = 0) -> Positive:
    """:func:`geoforge.testing.make_positive`."""
    from geoforge.testing import make_positive

    return make_positive(program, claims, seed=seed)


def run_perturbation(perturbation: object, positive: Positive) -> Report:
    """:func:`geoforge.testing.run_perturbation`."""
    from geoforge.testing import run_perturbation

    return run_perturbation(perturbation, positive)  # type: ignore[arg-type]


def write_plugin(directory: Path, name: str, body: str) -> Path:
    """A one-file plugin ``directory/name.py`` with ``body`` after ``import geoforge``."""
    path = directory / f"{name}.py"
    path.write_text("import geoforge\n" + textwrap.dedent(body), encoding="utf-8")
    return path


def host_with(*paths: Path, **spec: object) -> PluginHost:
    """A host with the installed entry points plus the given plugin files."""
    return PluginHost(PluginSpec(paths=tuple(str(p) for p in paths), **spec))  # type: ignore[arg-type]


def png_of(positive: Positive) -> bytes:
    from geoforge.render import render

    return render(positive.scene)


def scene_with(points: dict[str, tuple[float, float]]) -> Scene:
    """A Scene with free points at exactly ``points`` (no realisation)."""
    program = parse_program("; ".join(f"{n} = free {n}" for n in points))
    return Scene(program, {n: np.array(xy, dtype=np.float64) for n, xy in points.items()}, seed=0)


def claim(text: str) -> Claim:
    kind, *args = text.split()
    return Claim(kind, tuple(args))


# --- loading -----------------------------------------------------------------------------------


def test_built_ins_load_through_entry_points_as_built_in_with_a_version():
    host = PluginHost(PluginSpec(env=False))
    loaded = {p.name: p for p in host.plugins}
    assert set(loaded) >= BUILT_INS  # an installed third-party plugin may add more
    for name in BUILT_INS:
        info = loaded[name]
        assert (info.source, info.version, info.error) == ("built-in", geoforge.__version__, None)
        assert info.origin == f"geoforge_perturb.{name}"
        assert info.registers == {"perturbations": [name]}
        assert host.owner[name] == name
    assert {host.perturbations[n].kind for n in IMAGE_BUILT_INS} == {"image"}
    assert {host.perturbations[n].kind for n in ("caption_rules", "retrieval")} == {"caption"}
    assert not host.failures and not host.messages


def test_no_plugin_disables_a_built_in_by_plugin_or_perturbation_name():
    host = PluginHost(PluginSpec.from_cli([], ["move_vertex"]))
    assert "move_vertex" not in {p.name for p in host.plugins}
    assert "move_vertex" not in host.perturbations
    assert BUILT_INS - {"move_vertex"} <= set(host.perturbations)
    assert [p.name for p in host.ordered("image", ("move_vertex", "delete_point"))][:1] == ["delete_point"]


def test_from_cli_splits_files_from_modules():
    spec = PluginSpec.from_cli(["my_plugin.py", "pkg.module", f"dir{os.sep}plug"], ["x"])
    assert spec.paths == ("my_plugin.py", f"dir{os.sep}plug")
    assert spec.modules == ("pkg.module",)
    assert spec.disabled == ("x",)
    assert pickle.loads(pickle.dumps(spec)) == spec  # workers get the same list


NOOP = """
class Noop:
    name = "noop"
    kind = "caption"

    def propose(self, positive, rng):
        return iter(())

@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Noop())
"""


def test_file_plugin_loads_from_plugin_spec_paths(tmp_path):
    # Regression: any --plugin FILE crashed PluginHost ("not enough values to unpack").
    path = write_plugin(tmp_path, "my_plugin", NOOP)
    host = host_with(path, env=False)
    info = next(p for p in host.plugins if p.name == "my_plugin")
    assert (info.source, info.origin, info.error) == ("file", str(path), None)
    assert info.registers == {"perturbations": ["noop"]}
    assert host.owner["noop"] == "my_plugin"
    assert set(host.perturbations) >= BUILT_INS


def test_file_and_module_plugins_load_from_the_environment_variable(tmp_path, monkeypatch):
    path = write_plugin(tmp_path, "env_file_plugin", NOOP)
    module_dir = tmp_path / "mods"
    module_dir.mkdir()
    write_plugin(module_dir, "env_module_plugin", NOOP.replace('"noop"', '"noop2"'))
    monkeypatch.syspath_prepend(str(module_dir))
    monkeypatch.setenv(ENV_VAR, f"{path}{os.pathsep}env_module_plugin")
    host = PluginHost()
    loaded = {p.name: p for p in host.plugins}
    assert (loaded["env_file_plugin"].source, loaded["env_file_plugin"].origin) == ("environment", str(path))
    assert (loaded["env_module_plugin"].source, loaded["env_module_plugin"].origin) == (
        "environment",
        "env_module_plugin",
    )
    assert host.owner["noop"] == "env_file_plugin" and host.owner["noop2"] == "env_module_plugin"
    assert not host.failures
    assert "env_file_plugin" not in {p.name for p in PluginHost(PluginSpec(env=False)).plugins}


def test_misspelt_hook_is_a_validation_failure_reported_with_the_plugin_name(tmp_path):
    path = write_plugin(
        tmp_path,
        "typo",
        """
        @geoforge.hookimpl
        def geoforge_register_perturbation(register):
            raise AssertionError("never called")
        """,
    )
    host = host_with(path, env=False)
    assert host.failures == {"typo: validation": 1}
    [message] = host.messages
    assert message.startswith("plugin typo (") and "geoforge_register_perturbation" in message
    assert next(p for p in host.plugins if p.name == "typo").error == message
    assert not host.pm.has_plugin("typo")
    assert set(host.perturbations) >= BUILT_INS


def test_hook_with_an_argument_its_spec_lacks_is_a_validation_failure(tmp_path):
    path = write_plugin(
        tmp_path,
        "badarg",
        """
        @geoforge.hookimpl
        def geoforge_register_perturbations(registr):
            pass
        """,
    )
    host = host_with(path, env=False)
    assert host.failures == {"badarg: validation": 1}
    assert "registr" in host.messages[0] and "badarg" in host.messages[0]


def test_plugin_raising_at_import_is_reported_and_skipped(tmp_path):
    path = write_plugin(tmp_path, "broken", 'raise RuntimeError("no numpy for you")\n')
    missing = tmp_path / "missing.py"
    host = host_with(path, missing, env=False)
    assert host.failures == {"broken: to import": 1, "missing: to import": 1}
    assert any("broken" in m and "RuntimeError: no numpy for you" in m for m in host.messages)
    assert any("missing" in m and "FileNotFoundError" in m for m in host.messages)
    assert "geoforge_plugin_broken" not in sys.modules  # no half-initialised module left behind
    assert set(host.perturbations) >= BUILT_INS


def test_plugin_raising_while_registering_is_reported_and_the_others_still_work(tmp_path):
    path = write_plugin(
        tmp_path,
        "regboom",
        """
        @geoforge.hookimpl
        def geoforge_register_perturbations(register):
            raise KeyError("lost my table")
        """,
    )
    host = host_with(path, env=False)
    assert host.failures == {"regboom: in geoforge_register_perturbations": 1}
    assert "regboom" in host.messages[0] and "KeyError: 'lost my table'" in host.messages[0]
    assert set(host.perturbations) >= BUILT_INS


def test_register_rejects_objects_that_are_not_perturbations(tmp_path):
    path = write_plugin(
        tmp_path,
        "notaperturbation",
        """
        @geoforge.hookimpl
        def geoforge_register_perturbations(register):
            register(object())
        """,
    )
    host = host_with(path, env=False)
    assert host.failures == {"notaperturbation: in geoforge_register_perturbations": 1}
    assert "TypeError: register() needs an object with a str `name`" in host.messages[0]


def test_duplicate_perturbation_names_are_rejected_with_a_clear_message(tmp_path):
    path = write_plugin(tmp_path, "copycat", NOOP.replace('"noop"', '"move_vertex"'))
    host = host_with(path, env=False)
    assert host.owner["move_vertex"] == "move_vertex"  # the first registration wins
    assert host.failures == {"copycat: in geoforge_register_perturbations": 1}
    assert "perturbation `move_vertex` is already registered by plugin move_vertex" in host.messages[0]


def test_duplicate_plugin_names_are_reported_not_silently_skipped(tmp_path):
    # Regression: a file plugin called retrieval.py was dropped without a word.
    path = write_plugin(tmp_path, "retrieval", NOOP)
    host = host_with(path, env=False)
    assert host.failures == {"retrieval: duplicate name": 1}
    assert "already loaded from geoforge_perturb.retrieval" in host.messages[0]
    assert next(p for p in host.plugins if p.name == "retrieval").source == "built-in"
    assert "noop" not in host.perturbations


RAISER = """
from geoforge.caption import Claim
from geoforge.perturb import CaptionCandidate

class Raiser:
    name = "raiser"
    kind = "caption"

    def propose(self, positive, rng):
        yield CaptionCandidate((Claim("perpendicular", ("A", "B", "A", "C")),), "before", ())
        raise RuntimeError("propose broke")

@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Raiser())
"""

GARBAGE = """
from geoforge.caption import Claim
from geoforge.perturb import CaptionCandidate, ImageCandidate

class Garbage:
    name = "garbage"
    kind = "caption"

    def propose(self, positive, rng):
        yield "AB is parallel to AC"
        yield ImageCandidate(positive.program, 1, "wrong kind", ())
        yield CaptionCandidate(("AB ∥ AC",), "claims are strings", ())
        yield CaptionCandidate((Claim("length", ("A", "B", "zz")),), "bad value", ())
        yield CaptionCandidate((Claim("perpendicular", ("A", "B")),), "too few points", ())
        yield CaptionCandidate((Claim("parallel", ("A", "B", "A", "C")),), "fine", ())

@geoforge.hookimpl
def geoforge_register_perturbations(register):
    register(Garbage())
"""


def test_plugin_raising_in_propose_keeps_what_it_yielded_and_is_counted(tmp_path, geoforge_positive):
    host = host_with(write_plugin(tmp_path, "raiser", RAISER), env=False)
    out = host.propose(host.perturbations["raiser"], geoforge_positive, np.random.default_rng(0))
    assert [c.change for c in out] == ["before"]
    assert host.failures == {"raiser: in propose": 1}
    assert "raiser" in host.messages[0] and "RuntimeError: propose broke" in host.messages[0]


def test_garbage_candidates_are_dropped_counted_and_reported(tmp_path, geoforge_positive):
    host = host_with(write_plugin(tmp_path, "garbage", GARBAGE), env=False)
    out = host.propose(host.perturbations["garbage"], geoforge_positive, np.random.default_rng(0))
    assert [c.change for c in out] == ["fine"]
    assert host.failures == {"garbage: garbage": 5}
    assert len(host.messages) == 5 and all(m.startswith("plugin garbage (") for m in host.messages)
    text = "\n".join(host.messages)
    assert "expected CaptionCandidate, got str" in text
    assert "expected CaptionCandidate, got ImageCandidate" in text
    assert "not a Claim: 'AB ∥ AC'" in text
    assert "bad value `zz`" in text
    assert "claim `perpendicular` takes 4 arguments, got 2" in text


def test_make_negatives_survives_broken_plugins_and_keeps_built_in_negatives(tmp_path, geoforge_positive):
    host = host_with(write_plugin(tmp_path, "raiser", RAISER), write_plugin(tmp_path, "garbage", GARBAGE))
    config = NegativeConfig(image=2, caption=3)
    negatives = make_negatives(
        geoforge_positive, png_of(geoforge_positive), host, config, np.random.default_rng(0)
    )
    assert len(negatives.image) == 2 and {a.plugin for a in negatives.image} <= set(IMAGE_BUILT_INS)
    assert len(negatives.caption) == 3
    assert host.failures["raiser: in propose"] == 1
    assert host.failures["garbage: garbage"] == 5
    for accepted in negatives.image + negatives.caption:
        assert accepted.violated and min(v for _, v in accepted.violated) >= 1.0


def test_plugins_json_lists_loaded_plugins_and_exits_0(tmp_path):
    path = write_plugin(tmp_path, "my_plugin", NOOP)
    broken = write_plugin(tmp_path, "broken", "raise RuntimeError('boom')\n")
    cmd = [str(GEOFORGE), "plugins", "--json", "--plugin", str(path), "--plugin", str(broken)]
    result = subprocess.run([*cmd, "--no-plugin", "retrieval"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert BUILT_INS - {"retrieval"} <= set(listed) and "retrieval" not in listed
    assert listed["move_vertex"]["source"] == "built-in"
    assert listed["move_vertex"]["version"] == geoforge.__version__
    assert listed["move_vertex"]["registers"] == {"perturbations": ["move_vertex"]}
    assert listed["my_plugin"] == {
        "name": "my_plugin",
        "version": "unknown",
        "source": "file",
        "origin": str(path),
        "registers": {"perturbations": ["noop"]},
        "error": None,
    }
    assert "RuntimeError: boom" in listed["broken"]["error"]


def test_plugins_table_reports_a_failed_plugin_on_stderr_and_exits_0(tmp_path):
    broken = write_plugin(tmp_path, "broken", "raise RuntimeError('boom')\n")
    result = subprocess.run(
        [str(GEOFORGE), "plugins", "--plugin", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "move_vertex" in result.stdout and "failed" in result.stdout
    assert f"plugin broken ({broken}) failed to import: RuntimeError: boom" in result.stderr


def test_ordered_follows_the_configured_order_then_names():
    host = PluginHost(PluginSpec(env=False))
    image = [p.name for p in host.ordered("image", ("delete_point", "not_loaded", "caption_rules"))]
    assert image[0] == "delete_point" and image[1:] == sorted(image[1:])
    assert set(image) >= set(IMAGE_BUILT_INS) and {host.perturbations[n].kind for n in image} == {"image"}
    caption = [p.name for p in host.ordered("caption", ("retrieval", "caption_rules"))]
    assert caption[:2] == ["retrieval", "caption_rules"] and caption[2:] == sorted(caption[2:])
    assert [p.name for p in host.ordered("image")] == sorted(image)


def test_candidates_are_a_pure_function_of_positive_and_rng(geoforge_positive):
    one, two = PluginHost(PluginSpec(env=False)), PluginHost(PluginSpec(env=False))
    for name in BUILT_INS:
        a = one.propose(one.perturbations[name], geoforge_positive, np.random.default_rng(7))
        b = two.propose(two.perturbations[name], geoforge_positive, np.random.default_rng(7))
        assert a == b, name


EXTEND = """
@geoforge.hookimpl
def geoforge_register_constructions(register):
    register(
        "extend x a b",
        "x",
        pre="diff a b",
        facts="coll x a b, cong b a b x",
        sketch="pmirror a b",
        doc="x extends ab beyond b by |ab|",
    )
"""


@pytest.fixture
def extend_plugin(tmp_path):
    yield write_plugin(tmp_path, "extend_plugin", EXTEND)
    REGISTRY.pop("extend", None)  # the construction table is process-wide


def test_plugin_constructions_register_and_realise(extend_plugin):
    host = host_with(extend_plugin, env=False)
    info = next(p for p in host.plugins if p.name == "extend_plugin")
    assert info.registers == {"constructions": ["extend"]} and not host.failures
    assert REGISTRY["extend"].source == "extend_plugin"
    scene = realise(parse_program("A = free A; B = free B; C = extend C A B"), seed=3)
    np.testing.assert_allclose(scene.points["C"], 2 * scene.points["B"] - scene.points["A"], atol=1e-12)


def test_a_plugin_reloaded_by_another_host_reregisters_its_constructions(extend_plugin):
    # Regression: a second host (a worker, a test) failed with "construction `extend` is
    # already registered (by extend_plugin)".
    host_with(extend_plugin, env=False)
    again = host_with(extend_plugin, env=False)
    assert not again.failures, again.messages
    assert next(p for p in again.plugins if p.name == "extend_plugin").registers == {
        "constructions": ["extend"]
    }


def test_a_plugin_cannot_replace_a_built_in_construction(tmp_path):
    path = write_plugin(tmp_path, "hijack", EXTEND.replace('"extend x a b"', '"midpoint x a b"'))
    host = host_with(path, env=False)
    assert host.failures == {"hijack: in geoforge_register_constructions": 1}
    assert "construction `midpoint` is already registered" in host.messages[0]
    assert REGISTRY["midpoint"].source != "hijack"


# --- the built-in perturbations on the fixture -------------------------------------------------


def with_pool(positive: Positive) -> Positive:
    """``positive`` with two other samples to retrieve from."""
    others = [
        make_positive(
            "A = free A; B = lconst B A 3; C = s_angle B A C 60, lconst C A 3; draw polygon A B C",
            ["isosceles A B C", "angle B A C 60"],
            seed=1,
        ),
        make_positive(
            "A = free A; B = lconst B A 2; C = s_angle B A C 70, lconst C A 2; D = on_pline D C A B; "
            "draw segment A B; draw segment C D",
            ["parallel A B C D", "equal A B A C"],
            seed=2,
        ),
    ]
    pool = tuple(
        PoolEntry(f"other{i}", o.caption.text, tuple(o.caption.claims)) for i, o in enumerate(others)
    )
    return dataclasses.replace(positive, pool=pool)


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_each_built_in_yields_a_verified_negative_on_the_fixture(name, geoforge_positive):
    host = PluginHost(PluginSpec(env=False))
    report = run_perturbation(host.perturbations[name], with_pool(geoforge_positive))
    assert report.accepted, report.rejections
    for accepted in report.accepted:
        assert accepted.plugin == name
        assert accepted.violated and all(v >= 1.0 for _, v in accepted.violated)
        if isinstance(accepted.candidate, CaptionCandidate):
            assert accepted.text
            for c, v in accepted.violated:
                assert violation(c, geoforge_positive.scene) == pytest.approx(v)


def realise_negative(candidate: ImageCandidate, positive: Positive) -> Scene:
    """The negative as the verifier sees it: realised next to the positive, in its units."""
    scene = realise(candidate.program, seed=positive.scene.seed, max_tries=3, reference=positive.scene.points)
    return dataclasses.replace(scene, fixed_unit=positive.scene.unit)


@pytest.mark.parametrize("name", IMAGE_BUILT_INS)
def test_every_accepted_image_negative_breaks_a_positive_claim_when_realised_again(name, geoforge_positive):
    host = PluginHost(PluginSpec(env=False))
    report = run_perturbation(host.perturbations[name], geoforge_positive)
    assert report.accepted
    for accepted in report.accepted:
        assert isinstance(accepted.candidate, ImageCandidate)
        scene = realise_negative(accepted.candidate, geoforge_positive)
        worst = max(violation(c, scene) for c in geoforge_positive.caption.claims)
        assert worst >= 1.0, accepted.candidate.change
        assert accepted.pixel_diff >= 0.002 and accepted.png is not None
        assert accepted.png.startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["move_vertex", "alter_relation"])
def test_image_negatives_carry_no_mark_that_is_false_on_them(name):
    # Regression: every move_vertex/alter_relation negative of this figure kept a right-angle
    # square on an angle it had moved off 90° (e.g. `mark right A D B` at 95.4°).
    positive = make_positive(MARKED, ["right A B C", "altitude A D B C"])
    host = PluginHost(PluginSpec(env=False))
    report = run_perturbation(host.perturbations[name], positive)
    assert len(report.accepted) >= 3
    for accepted in report.accepted:
        assert isinstance(accepted.candidate, ImageCandidate)
        assert false_marks(realise_negative(accepted.candidate, positive)) == []


def test_verifier_rejects_an_image_negative_with_a_false_mark():
    positive = make_positive(MARKED, ["right A B C", "altitude A D B C"])
    program = replace_clause(positive.program, 2, "C = s_angle B A C 100, lconst C A 4")
    verdict = verify_image(positive, ImageCandidate(program, 3, "100°", ()), png_of(positive), "test")
    assert (verdict.ok, verdict.reason) == (False, "a mark does not hold")
    fixed = drop_marks(program, {"C"})
    verdict = verify_image(positive, ImageCandidate(fixed, 3, "100°", ()), png_of(positive), "test")
    assert verdict.ok, verdict.reason
    assert dict((c.kind, v) for c, v in verdict.accepted.violated)["right"] == pytest.approx(10 / 8)


# --- verify ------------------------------------------------------------------------------------


def test_claim_key_identifies_rotations_and_reversals_of_a_square_only():
    keys = {claim_key(claim(f"square {' '.join(s)}")) for s in ("ABCD", "BCDA", "DCBA", "CDAB", "ADCB")}
    assert len(keys) == 1
    assert claim_key(claim("square A C B D")) not in keys
    assert claim_key(claim("parallel A B C D")) == claim_key(claim("parallel D C B A"))
    assert claim_key(claim("parallel A B C D")) != claim_key(claim("parallel A C B D"))
    assert claim_key(claim("length A B 3")) == claim_key(claim("length B A 3"))
    assert claim_key(claim("angle A B C 30")) == claim_key(claim("angle C B A 30"))
    assert claim_key(claim("angle A B C 30")) != claim_key(claim("angle B A C 30"))


def tilted_right_angle(degrees: float) -> Scene:
    t = math.radians(90 + degrees)
    return scene_with({"A": (0.0, 0.0), "B": (2.0, 0.0), "C": (2 * math.cos(t), 2 * math.sin(t))})


@pytest.mark.parametrize(("tilt", "expected"), [(10.0, 1.25), (-10.0, 1.25), (5.0, 0.625), (0.0, 0.0)])
def test_violation_of_a_right_angle_is_its_tilt_in_units_of_8_degrees(tilt, expected):
    v = violation(claim("right A B C"), tilted_right_angle(tilt))
    assert v == pytest.approx(expected, abs=1e-9)
    assert (v >= 1.0) == (abs(tilt) >= 8)


@pytest.mark.parametrize(
    ("gap", "clearly_false"), [(0.125, True), (0.13, True), (0.115, False), (0.05, False)]
)
def test_violation_of_equal_lengths_uses_the_12_percent_margin(gap, clearly_false):
    long = 1 / (1 - gap)  # |AB| - |CD| is `gap` of the longer one
    scene = scene_with({"A": (0, 0), "B": (1, 0), "C": (0, 1), "D": (long, 1)})
    v = violation(claim("equal A B C D"), scene)
    assert v == pytest.approx(gap / 0.12)
    assert (v >= 1.0) == clearly_false


def test_violation_of_a_length_value_and_of_a_missing_point():
    scene = scene_with({"A": (0, 0), "B": (3.45, 0)})  # no given length: one unit per unit
    assert violation(claim("length A B 3"), scene) == pytest.approx(0.45 / 3.45 / 0.12)
    assert violation(claim("length A B 3"), scene_with({"A": (0, 0), "B": (3.3, 0)})) < 1.0
    assert violation(claim("perpendicular A B A Z"), scene) == math.inf


def test_claim_problem_accepts_every_claim_kind_at_its_arity_and_rejects_malformed_ones():
    for kind in CLAIM_KINDS:
        args = tuple("ABCDEFGH"[: claim_arity(kind)])
        if kind in ("length", "angle"):
            args = (*args[:-1], "3")
        assert claim_problem(Claim(kind, args)) is None, kind
    assert claim_arity("on_circle") == 3 and claim_arity("angle") == 4
    assert "not a Claim" in claim_problem("AB ∥ CD")
    assert "unknown claim kind" in claim_problem(Claim("skew", ("A", "B", "C", "D")))
    assert "takes 4 arguments, got 5" in claim_problem(Claim("perpendicular", tuple("ABCDE")))
    assert "bad value" in claim_problem(Claim("angle", ("A", "B", "C", "x")))
    assert "non-empty strings" in claim_problem(Claim("length", ("A", "B", 3)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "claims",
    [
        ("AB ∥ AC",),
        (Claim("length", ("A", "B", "zz")),),
        (Claim("perpendicular", ("A", "B", "A", "C", "D")),),
        None,
    ],
)
def test_verify_caption_rejects_malformed_claims_without_raising(claims, geoforge_positive):
    # Regression: strings raised AttributeError and bad values ProgramError out of the verifier.
    candidate = CaptionCandidate(claims, "garbage", ())  # type: ignore[arg-type]
    verdict = verify_caption(geoforge_positive, candidate, "test", np.random.default_rng(0))
    assert (verdict.ok, verdict.reason) == (False, "malformed claims")


def test_verify_image_rejects_a_candidate_without_a_program(geoforge_positive):
    candidate = ImageCandidate("A = free A", 1, "garbage", ())  # type: ignore[arg-type]
    verdict = verify_image(geoforge_positive, candidate, png_of(geoforge_positive), "test")
    assert (verdict.ok, verdict.reason) == (False, "malformed candidate")


def test_verify_caption_rejects_paraphrases_and_claims_not_false_by_the_margin(geoforge_positive):
    def reason(*changed: Claim) -> str:
        claims = (*geoforge_positive.caption.claims[: 4 - len(changed)], *changed)
        candidate = CaptionCandidate(claims, "", ())
        return verify_caption(geoforge_positive, candidate, "t", np.random.default_rng(0)).reason

    assert reason(claim("right A C B"), *geoforge_positive.caption.claims[1:]) == "paraphrase of the positive"
    assert reason(claim("perpendicular A D D C")) == "no claim false by the margin"  # true
    # Regression: reported as "all claims hold on the positive", though AB = 3 and CD = 3.2
    # differ, by 6.25% (under the 12% margin).
    assert reason(claim("equal A B C D")) == "no claim false by the margin"
    assert reason(claim("equal A B D B")) == ""  # 3 against 1.8: 40%, accepted


FIXTURE_PROGRAM = (
    "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
    "given length A B 3; given length A C 4; draw polygon A B C"
)
FIXTURE_CLAIMS = ["right A B C", "length A B 3", "length A C 4", "altitude A D B C"]


@pytest.mark.parametrize("seed", range(4))
def test_caption_negatives_keep_the_positive_wording_of_the_claims_they_share(seed):
    # Regression: a descriptive negative drew fresh sentence variants for every claim, so
    # "The length of AB is 3." in the positive became "AB = 3." in its negative.
    from geoforge.testing import make_positive as make

    positive = make(FIXTURE_PROGRAM, FIXTURE_CLAIMS, seed=seed, style="descriptive")
    assert negative_text(positive, positive.caption.claims, np.random.default_rng(9)) == positive.caption.text
    report = run_perturbation(PluginHost(PluginSpec(env=False)).perturbations["caption_rules"], positive)
    assert len(report.accepted) > 10
    before = positive.caption.text.removeprefix("In the figure, ").split(". ")
    for accepted in report.accepted:
        after = accepted.text.removeprefix("In the figure, ").split(". ")
        assert len(after) == len(before) == len(accepted.candidate.claims)
        for old, new, a, b in zip(positive.caption.claims, accepted.candidate.claims, before, after):
            assert (a == b) == (old == new), (a, b)


def test_question_style_caption_negatives_keep_the_question():
    from geoforge.caption import Caption, caption_text
    from geoforge.testing import make_positive as make

    positive = make(FIXTURE_PROGRAM, FIXTURE_CLAIMS, style="question")
    claims = positive.caption.claims
    question = "Find the length of BC."
    text = caption_text(claims, "question", np.random.default_rng(0), question)
    positive = dataclasses.replace(positive, caption=Caption(text, "question", claims, question))
    changed = (*claims[:3], claim("altitude A D B A"))
    assert negative_text(positive, changed, np.random.default_rng(0)) == (
        "As shown in the figure, ∠BAC = 90°, AB = 3, AC = 4, AD ⊥ BA at D. Find the length of BC."
    )


# --- edit --------------------------------------------------------------------------------------

PROGRAM = (
    "A = free A; B = lconst B A 3; C = s_angle B A C 90, lconst C A 4; D = foot D A B C; "
    "E = midpoint E A D; given length A B 3; given length A C 4; given angle B A C 90; "
    "draw polygon A B C; draw segment A D; mark right A D B"
)


def test_delete_points_removes_dependents_and_their_statements():
    program = parse_program(PROGRAM)
    smaller = delete_points(program, {"D"})
    assert smaller.points == ("A", "B", "C")
    assert [s.text() for s in smaller.statements] == [
        "given length A B 3",
        "given length A C 4",
        "given angle B A C 90",
        "draw polygon A B C",
    ]
    assert delete_points(program, {"C"}).text() == "A = free A; B = lconst B A 3; given length A B 3"


def test_replace_clause_validates_the_replacement():
    program = parse_program(PROGRAM)
    new = replace_clause(program, 4, "E = midpoint E A B")
    assert new.clauses[4].text() == "E = midpoint E A B" and new.clauses[:4] == program.clauses[:4]
    assert new.statements == program.statements
    for bad, message in [
        ("F = midpoint F A B", "builds F, not E"),  # regression: used to drop E silently
        ("E = midpoint E A B; F = midpoint F A C", "must be one clause"),  # regression: kept the last
        ("E = midpoint E A Z", "undefined point `Z`"),
        ("E = nonsense E A B", "unknown construction `nonsense`"),
    ]:
        with pytest.raises(ProgramError, match=message):
            replace_clause(program, 4, bad)


def test_pin_fixes_a_point_and_its_dependents_follow():
    program = pin(parse_program(PROGRAM), 3, {"D": (1.0, 2.0)})
    assert program.clauses[3].pinned == (("D", 1.0, 2.0),)
    assert program.clauses[3].text() == "D@1.0_2.0 = free D"
    scene = realise(program, seed=0)
    np.testing.assert_allclose(scene.points["D"], [1.0, 2.0])
    np.testing.assert_allclose(scene.points["E"], (scene.points["A"] + scene.points["D"]) / 2, atol=1e-12)


def test_drop_givens_drops_givens_on_moved_points_and_their_dependents():
    program = parse_program(PROGRAM)
    givens = lambda p: [s.text() for s in p.statements if s.kind == "given"]  # noqa: E731
    assert givens(drop_givens(program, {"C"})) == ["given length A B 3"]
    assert givens(drop_givens(program, {"A"})) == []
    assert drop_givens(program, {"E"}) == program


def test_drop_marks_drops_only_marks_on_the_points():
    program = parse_program(PROGRAM)
    assert [s.text() for s in drop_marks(program, {"D"}).statements if s.kind == "mark"] == []
    assert drop_marks(program, {"C"}) == program


def test_set_given_sets_the_value_in_either_order():
    program = parse_program(PROGRAM)
    texts = lambda p: [s.text() for s in p.statements if s.kind == "given"]  # noqa: E731
    assert texts(set_given(program, "length", ("C", "A"), "5"))[1] == "given length A C 5"
    assert texts(set_given(program, "angle", ("C", "A", "B"), "80"))[2] == "given angle B A C 80"
    assert set_given(program, "length", ("C", "B"), "5") == program
