"""The plugin system: loading plugins, running their perturbations isolated, and listing them
(registration is tests/test_plugin_registration.py)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
from plugin_helpers import (  # noqa: F401  (_no_env_plugins is an autouse fixture)
    BUILT_INS,
    GEOFORGE,
    IMAGE_BUILT_INS,
    NOOP,
    _no_env_plugins,
    claim,
    host_with,
    png_of,
    run_perturbation,
    write_plugin,
)

import geoforge
from geoforge.errors import UsageError
from geoforge.negatives import NegativeConfig, make_negatives
from geoforge.plugins import ENV_VAR, PluginFailure, PluginHost, PluginSpec

# The `geoforge_positive` fixture. geoforge.testing itself is imported late (below): pytest warns
# when a module it loads as a plugin was imported before it.
pytest_plugins = ["geoforge.testing"]


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


def test_from_cli_splits_files_from_modules(tmp_path, monkeypatch):
    files = [tmp_path / "my_plugin.py", tmp_path / "plug"]
    for file in files:
        file.write_text("")
    again = f"{tmp_path}/./my_plugin.py"  # the same file, spelt another way: loaded once
    spec = PluginSpec.from_cli([str(files[0]), "json.decoder", str(files[1]), str(again)], ["x"])
    assert spec.paths == tuple(map(str, files))
    assert spec.modules == ("json.decoder",)
    assert spec.disabled == ("x",)
    assert pickle.loads(pickle.dumps(spec)) == spec  # workers get the same list
    with pytest.raises(UsageError, match=rf"^--plugin {tmp_path / 'nope.py'}: no such file$"):
        PluginSpec.from_cli([str(files[0]), str(tmp_path / "nope.py")], [])
    with pytest.raises(UsageError, match=rf"^--plugin {tmp_path}: is a directory, expected a plugin file"):
        PluginSpec.from_cli([str(tmp_path)], [])
    (tmp_path / "folder").mkdir()
    monkeypatch.chdir(tmp_path)  # `folder`, written without a slash, is no module: say what it is
    with pytest.raises(UsageError, match=r"^--plugin folder: is a directory, expected a plugin file"):
        PluginSpec.from_cli(["folder"], [])
    for module in ("no_such_module_xyz", "json.no_such_part", "no_such_package.part"):
        with pytest.raises(UsageError, match=rf"^--plugin {module}: no such module \(expected PATH.py"):
            PluginSpec.from_cli([module], [])


def test_a_missing_plugin_file_is_bad_usage_and_a_broken_one_is_said_without_negatives(tmp_path):
    recipe = str(Path(__file__).resolve().parents[1] / "corpora" / "smoke.toml")
    missing = tmp_path / "nope" / "p.py"
    run = [str(GEOFORGE), "generate", recipe, "--n", "1"]
    result = subprocess.run(
        [*run, "--out", str(tmp_path / "a"), "--plugin", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stderr) == (2, f"error: --plugin {missing}: no such file\n")
    assert not (tmp_path / "a").exists()
    broken = write_plugin(tmp_path, "broken", "raise RuntimeError('boom')\n")
    result = subprocess.run(
        [*run, "--out", str(tmp_path / "b"), "--plugin", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"warning: plugin broken ({broken}) failed to import: RuntimeError: boom" in result.stderr


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


def test_run_perturbation_judges_garbage_as_generate_does_each_kind_apart(tmp_path, geoforge_positive):
    host = host_with(write_plugin(tmp_path, "garbage", GARBAGE), env=False)
    report = run_perturbation(host.perturbations["garbage"], geoforge_positive)
    garbage = {reason: n for reason, n in report.rejections.items() if reason.startswith("garbage: ")}
    host.propose(host.perturbations["garbage"], geoforge_positive, np.random.default_rng(0))
    # the five items generate's host drops, each under the reason its warning gives
    assert sum(garbage.values()) == 5, report.rejections
    said = {m.split(" proposed garbage from garbage: ", 1)[1] for m in host.messages}
    assert {reason.removeprefix("garbage: ") for reason in garbage} == said
    assert "expected CaptionCandidate, got ImageCandidate" in said


def test_run_perturbation_refuses_what_register_refuses_and_stops_at_the_time_budget(geoforge_positive):
    from geoforge.testing import run_perturbation

    class Endless:
        name, kind = "endless", "image"

        def propose(self, positive, rng):
            while True:
                pass
            yield

    class Pictures(Endless):
        name, kind = "pictures", "picture"

    class NoRng(Endless):
        name = "no_rng"

        def propose(self, positive):
            yield from ()

    with pytest.raises(TimeoutError, match=r"^endless: its propose took more than its time budget of 0.3 s"):
        run_perturbation(Endless(), geoforge_positive, budget=0.3)
    with pytest.raises(ValueError, match=r"`kind` is 'picture', expected 'image' or 'caption'"):
        run_perturbation(Pictures(), geoforge_positive)
    with pytest.raises(ValueError, match=r"`propose` takes \(positive\), expected \(positive, rng\)"):
        run_perturbation(NoRng(), geoforge_positive)


def test_garbage_under_strict_plugins_stops_with_one_plain_message(tmp_path, geoforge_positive):
    path = write_plugin(tmp_path, "garbage", GARBAGE)
    host = host_with(path, env=False, strict=True)
    with pytest.raises(PluginFailure) as raised:
        host.propose(host.perturbations["garbage"], geoforge_positive, np.random.default_rng(0))
    assert str(raised.value).startswith(
        f"plugin failure with --strict-plugins: plugin garbage ({path}) proposed garbage from garbage: "
    )
    assert str(raised.value).count("plugin failure") == 1 and "failed in propose" not in str(raised.value)


def test_make_negatives_survives_broken_plugins_and_keeps_built_in_negatives(tmp_path, geoforge_positive):
    host = host_with(write_plugin(tmp_path, "raiser", RAISER), write_plugin(tmp_path, "garbage", GARBAGE))
    # Candidates are pulled lazily: ask for enough caption negatives that the raiser is pulled
    # a second time (and raises) before the quota is met.
    config = NegativeConfig(image=2, caption=5)
    negatives = make_negatives(
        geoforge_positive, png_of(geoforge_positive), host, config, np.random.default_rng(0)
    )
    assert len(negatives.image) == 2 and {a.plugin for a in negatives.image} <= set(IMAGE_BUILT_INS)
    assert len(negatives.caption) == 5
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
    assert listed["move_vertex"]["distribution"] == "geoforge"
    assert listed["my_plugin"] == {
        "name": "my_plugin",
        "distribution": "",
        "version": "unknown",
        "source": "file",
        "origin": str(path),
        "registers": {"perturbations": ["noop"]},
        "error": None,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),  # a file: its source, not a version
    }
    assert "sha256" not in listed["move_vertex"]  # an installed distribution: its version says it
    assert "RuntimeError: boom" in listed["broken"]["error"]


def test_plugins_table_reports_a_failed_plugin_on_stderr_and_exits_0(tmp_path):
    broken = write_plugin(tmp_path, "broken", "raise RuntimeError('boom')\n")
    result = subprocess.run(
        [str(GEOFORGE), "plugins", "--plugin", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "move_vertex" in result.stdout and "failed" in result.stdout
    assert f"warning: plugin broken ({broken}) failed to import: RuntimeError: boom\n" in result.stderr


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


def test_each_perturbation_of_one_plugin_fails_under_its_own_name(tmp_path, geoforge_positive):
    """A plugin with several perturbations used to count every failure under the plugin's
    name, with the first message only: the second perturbation's error was never shown."""
    path = write_plugin(
        tmp_path,
        "edge",
        """
        class Raiser:
            name = "e_raiser"
            kind = "caption"

            def propose(self, positive, rng):
                raise KeyError("lost")
                yield


        class ReturnsInt(Raiser):
            name = "e_int"

            def propose(self, positive, rng):
                return 5


        @geoforge.hookimpl
        def geoforge_register_perturbations(register):
            register(Raiser())
            register(ReturnsInt())
        """,
    )
    host = host_with(path, env=False)
    for name in ("e_raiser", "e_int"):
        host.propose(host.perturbations[name], geoforge_positive, np.random.default_rng(0))
    assert host.failures == {"e_raiser: in propose": 1, "e_int: in propose": 1}
    errors = host.take_noted()
    assert errors["e_raiser: in propose"] == (
        f"plugin edge ({path}) failed in propose of e_raiser: KeyError: 'lost'"
    )
    assert errors["e_int: in propose"].startswith(
        f"plugin edge ({path}) failed in propose of e_int: TypeError: 'int' object is not iterable"
    )


def test_one_file_in_the_environment_and_on_the_command_line_spelt_apart_is_one_plugin(tmp_path, monkeypatch):
    path = write_plugin(tmp_path, "twice", NOOP)
    monkeypatch.setenv(ENV_VAR, str(path))
    host = PluginHost(PluginSpec(paths=(f"{tmp_path}/./twice.py",)))
    assert [p.name for p in host.plugins].count("twice") == 1
    assert not host.failures and not host.messages  # it said "rename one of them"
