"""``generate`` never gives a silently wrong corpus because of plugins: negatives no plugin can
make are refused by kind, and a plugin that raises in ``propose`` is reported once with its
message (its traceback under ``--debug``, a failed run under ``--strict-plugins``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from geoforge.corpus import read_corpus
from geoforge.errors import UsageError
from geoforge.generate import generate_corpus
from geoforge.negatives import NegativeConfig
from geoforge.plugins import PluginHost, PluginSpec
from geoforge.sampler import load_recipe

ROOT = Path(__file__).resolve().parents[1]
BOOM = """
from geoforge.hookspecs import hookimpl


class Boom:
    name = "boom"
    kind = "caption"

    def propose(self, positive, rng):
        raise ValueError("boom in propose")


@hookimpl
def geoforge_register_perturbations(register):
    register(Boom())
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEOFORGE_DEBUG", "GEOFORGE_PLUGINS")}
    return subprocess.run(
        [sys.executable, "-m", "geoforge.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


def test_image_negatives_without_an_image_plugin_are_refused_naming_the_kind(tmp_path: Path) -> None:
    image_plugins = tuple(p.name for p in PluginHost(PluginSpec()).ordered("image"))
    assert "move_vertex" in image_plugins
    recipe = load_recipe(ROOT / "corpora" / "smoke.toml")
    with pytest.raises(UsageError, match=r"^--image-negatives 2: no active plugin makes image negatives"):
        generate_corpus(
            recipe,
            tmp_path / "c",
            n=2,
            seed=0,
            negatives=NegativeConfig(image=2),
            plugins=PluginSpec(disabled=image_plugins),
        )
    assert not (tmp_path / "c").exists()


def test_retrieval_negatives_without_retrieval_exit_2(tmp_path: Path) -> None:
    result = _cli(
        "generate", "corpora/smoke.toml", "--out", str(tmp_path / "c"), "--n", "2",
        "--retrieval-negatives", "1", "--no-plugin", "retrieval",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: --retrieval-negatives 1: no active plugin makes retrieval negatives")
    )


def _boom_run(tmp_path: Path, flag: str) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """A 2-sample run with one caption negative and the BOOM plugin, with ``flag``: the
    plugin file, the corpus and the result."""
    plugin = tmp_path / "boom.py"
    plugin.write_text(BOOM)
    out = tmp_path / "c"
    result = _cli(
        "generate", "corpora/smoke.toml", "--out", str(out), "--n", "2", "--caption-negatives", "1",
        "--plugin", str(plugin), flag,
    )  # fmt: skip
    return plugin, out, result


def test_an_error_in_propose_is_shown_once_with_its_traceback_under_debug(tmp_path: Path) -> None:
    plugin, out, result = _boom_run(tmp_path, "--debug")
    assert result.returncode == 0, result.stderr
    table = " ".join(re.sub(r"[│┃║]", " ", result.stdout).split())
    assert table.count("ValueError: boom in propose") == 1, result.stdout
    assert re.search(r"boom: in propose [0-9.]+ \+ [0-9.]+ failed 2 times: plugin boom", table), table
    assert (
        "Traceback (most recent call last)" in result.stderr
        and 'raise ValueError("boom in propose")' in result.stderr
    )
    errors = json.loads((out / "manifest.json").read_text())["counts"]["negatives"]["errors"]
    assert errors == {
        "boom: in propose": f"plugin boom ({plugin}) failed in propose: ValueError: boom in propose"
    }
    # said on stderr as well, so that a run whose stdout goes to a file still shows it
    assert (
        f"warning: boom failed 2 times in propose: plugin boom ({plugin}) failed in propose: "
        "ValueError: boom in propose"
    ) in result.stderr.splitlines()


def test_strict_plugins_stops_the_run_at_the_first_plugin_failure(tmp_path: Path) -> None:
    """The run used to write the whole corpus, mark it complete and only then exit 1."""
    plugin, out, result = _boom_run(tmp_path, "--strict-plugins")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: plugin failure with --strict-plugins: plugin boom ({plugin}) failed in propose: "
        "ValueError: boom in propose"
    )
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    assert not list(out.glob("shard-*.tar"))


def test_a_misspelt_no_plugin_is_an_error_without_negatives_too(tmp_path: Path) -> None:
    out = tmp_path / "c"
    result = _cli(
        "generate", "corpora/smoke.toml", "--out", str(out), "--n", "2", "--no-plugin", "move_vertx"
    )
    assert result.returncode == 2, result.stderr
    assert "move_vertx" in result.stderr and "did you mean `move_vertex`" in result.stderr, result.stderr
    assert not out.exists()


def test_negatives_and_qa_of_a_sample_carrying_its_scene_match_a_stored_samples() -> None:
    # make_sample hands its scene and view on so that add_negatives and add_qa need not realise
    # and lay out the positive again; a sample read back from a corpus carries neither.
    import dataclasses

    from geoforge.generate import make_sample
    from geoforge.negatives import add_negatives, pool_entry
    from geoforge.qa import QAConfig, add_qa

    recipe = load_recipe(str(Path(__file__).parents[1] / "corpora" / "smoke.toml"))
    config = NegativeConfig(image=3, caption=2, retrieval=1)
    samples = [make_sample(recipe, 7, i) for i in range(3)]
    pool = tuple(pool_entry(s) for s in samples)
    for sample in samples:
        assert sample.scene is not None and sample.plan is not None
        stored = dataclasses.replace(sample, scene=None, plan=None)
        made = [
            add_qa(add_negatives(x, pool, config, PluginSpec(env=False), recipe.image_size, 7), QAConfig(), 7)
            for x in (sample, stored)
        ]
        assert made[0].files() == made[1].files()
        assert json.loads(made[0].files()["json"])["negatives"].count('"tile"') == 3


SILENT = """
from geoforge.hookspecs import hookimpl


class Silent:
    name = "zz_silent"
    kind = "caption"

    def propose(self, positive, rng):
        yield from ()


@hookimpl
def geoforge_register_perturbations(register):
    register(Silent())
"""


def test_a_perturbation_that_never_gave_a_candidate_gets_a_row_saying_why_and_how_to_run_it_alone(
    tmp_path: Path,
) -> None:
    """It used to be missing from the table: a third-party plugin that the built-ins starved
    (K filled before its turn) looked the same as one that was never loaded."""
    plugin = tmp_path / "silent.py"
    plugin.write_text(SILENT)
    result = _cli(
        "generate", "corpora/smoke.toml", "--out", str(tmp_path / "c"), "--n", "2",
        "--caption-negatives", "1", "--plugin", str(plugin),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = " ".join(re.sub(r"[│┃║]", " ", result.stdout).split())
    seconds = r"( [0-9.]+ \+ [0-9.]+)?"  # its seconds, when it had a turn
    assert re.search(
        f"zz_silent 0{seconds} no candidate: it proposed nothing, or caption_rules filled the 1 caption "
        "negative of each sample before its turn; --no-plugin caption_rules runs it alone",
        table,
    ), result.stdout
    alone = _cli(
        "generate", "corpora/smoke.toml", "--out", str(tmp_path / "d"), "--n", "2",
        "--caption-negatives", "1", "--plugin", str(plugin), "--no-plugin", "caption_rules",
    )  # fmt: skip
    alone_table = " ".join(re.sub(r"[│┃║]", " ", alone.stdout).split())
    assert re.search(f"zz_silent 0{seconds} it proposed nothing for any sample", alone_table), alone.stdout


def test_a_broken_plugin_named_in_the_environment_is_said_without_negatives_too(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    env = {**{k: v for k, v in os.environ.items() if k != "GEOFORGE_DEBUG"}, "GEOFORGE_PLUGINS": str(broken)}
    result = subprocess.run(
        [sys.executable, "-m", "geoforge.cli", "generate", "corpora/smoke.toml", "--out", str(tmp_path / "c"),
         "--n", "1"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"warning: plugin broken ({broken}) failed to import: RuntimeError: boom\n" in result.stderr


SLEEPY = """
import time

from geoforge.hookspecs import hookimpl


class Sleepy:
    name = "sleepy"
    kind = "caption"

    def propose(self, positive, rng):
        time.sleep(0.2)
        yield from ()


@hookimpl
def geoforge_register_perturbations(register):
    register(Sleepy())
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_the_run_names_the_seconds_each_perturbation_took(tmp_path: Path, workers: int) -> None:
    plugin = tmp_path / "sleepy.py"
    plugin.write_text(SLEEPY)
    manifest = generate_corpus(
        load_recipe(ROOT / "corpora" / "smoke.toml"),
        tmp_path / "c",
        n=3,
        seed=0,
        workers=workers,
        negatives=NegativeConfig(caption=1),
        plugins=PluginSpec(paths=(str(plugin),), disabled=("caption_rules",), env=False),
    )
    seconds = manifest["run"]["plugin_seconds"]
    assert 0.6 <= seconds["sleepy: propose"] < 0.6 + 1.0  # 0.2 s per positive, in any worker
    assert "sleepy: verify" not in seconds  # it proposed nothing to verify
    assert set(seconds) == {"sleepy: propose"}


GARBAGE_ONLY = """
from geoforge.hookspecs import hookimpl


class GarbageOnly:
    name = "garbage_only"
    kind = "image"

    def propose(self, positive, rng):
        yield "hello"


@hookimpl
def geoforge_register_perturbations(register):
    register(GarbageOnly())
"""


def test_a_kind_that_no_sample_got_is_a_warning(tmp_path: Path) -> None:
    plugin = tmp_path / "garbage_only.py"
    plugin.write_text(GARBAGE_ONLY)
    result = _cli(
        "generate", "corpora/smoke.toml", "--out", str(tmp_path / "c"), "--n", "2", "--image-negatives", "1",
        "--plugin", str(plugin), "--no-plugin", "move_vertex", "--no-plugin", "alter_relation",
        "--no-plugin", "delete_point",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "warning: --image-negatives 1: no sample got an image negative; the table above says what each "
        "plugin proposed and why it was rejected\n"
    ) in result.stderr
    assert "false by: no negative kept" in result.stdout


KEYED = """
from geoforge.hookspecs import hookimpl


class Keyed:
    name = "keyed"
    kind = "caption"

    def propose(self, positive, rng):
        yield "junk"
        yield 7
        raise ValueError(f"cannot handle sample {positive.key}")


@hookimpl
def geoforge_register_perturbations(register):
    register(Keyed())
"""


def test_a_samples_record_holds_its_own_failures_every_kind_and_shards_match_for_any_workers(
    tmp_path: Path,
) -> None:
    """A record used to hold the first message its process had met, so the shards depended on
    which samples a worker made before; and a second kind of garbage was never shown."""
    plugin = tmp_path / "keyed.py"
    plugin.write_text(KEYED)
    recipe = load_recipe(ROOT / "corpora" / "smoke.toml")
    shards = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        manifest = generate_corpus(
            recipe,
            out,
            n=4,
            seed=0,
            workers=workers,
            negatives=NegativeConfig(caption=1),
            plugins=PluginSpec(paths=(str(plugin),), env=False),
        )
        shards.append(sorted((p.name, p.read_bytes()) for p in out.glob("shard-*.tar")))
        records = [json.loads(json.loads(r.files["json"])["negatives"]) for r in read_corpus(out)]
        for record, key in zip(records, ["00000000", "00000001", "00000002", "00000003"], strict=True):
            if "keyed: in propose" in record["errors"]:
                assert record["errors"]["keyed: in propose"].endswith(f"cannot handle sample {key}")
        errors = manifest["counts"]["negatives"]["errors"]
        assert errors["keyed: garbage"] == (
            f"plugin keyed ({plugin}) proposed garbage from keyed: expected CaptionCandidate, got str; "
            "also: expected CaptionCandidate, got int"
        )
    assert shards[0] == shards[1]
