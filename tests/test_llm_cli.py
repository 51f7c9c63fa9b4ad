"""``geoforge generate --llm-*`` end to end, in subprocesses, against a loopback chat-completions
server: the API key is in no output file and no log line, a rerun served from the cache sends
nothing and writes the same bytes, and a run without the options neither imports ``openai`` nor
registers the plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from geoforge_llm.loopback import ChatServer, editing_reply
from geoforge_llm.prompts import load_prompts

import geoforge

ROOT = Path(__file__).parents[1]
GEOFORGE = Path(sys.executable).with_name("geoforge")
KEY = "sk-test-9f8e7d6c5b4a-must-never-be-written"
ONLY_LLM = [f"--no-plugin={n}" for n in ("move_vertex", "alter_relation", "delete_point", "caption_rules")]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOFORGE_")}
    return {**env, "GEOFORGE_TEST_KEY": KEY}


def _generate(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(GEOFORGE), "generate", str(ROOT / "corpora/smoke.toml"), "--out", str(out), "--n", "3", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())


@pytest.mark.slow
def test_the_key_is_never_written_and_a_cached_rerun_sends_nothing_and_writes_the_same_bytes(tmp_path):
    cache = tmp_path / "cache"
    llm = ["--llm-model", "edit-bot", "--llm-api-key-env", "GEOFORGE_TEST_KEY", "--llm-cache", str(cache)]
    wanted = ["--image-negatives", "2", "--caption-negatives", "1", "--llm-per-positive", "2", *ONLY_LLM]
    with ChatServer(editing_reply) as server:
        first = _generate(tmp_path / "a", *wanted, *llm, "--llm-base-url", server.url)
        assert first.returncode == 0, first.stderr
        sent = server.count
        second = _generate(tmp_path / "b", *wanted, *llm, "--llm-base-url", server.url, "--workers", "2")
        assert second.returncode == 0, second.stderr
        assert server.count == sent  # every reply came from the cache
        assert set(server.authorizations) == {f"Bearer {KEY}"}  # the key went in that header only
    assert 0 < sent <= 3 * 2 * 2
    assert f"llm_rewrite (openai, edit-bot): {sent} requests sent;" in first.stderr
    assert "llm_rewrite (openai, edit-bot): 0 requests sent;" in second.stderr
    assert (tmp_path / "a/shard-000000.tar").read_bytes() == (tmp_path / "b/shard-000000.tar").read_bytes()

    for result in (first, second):
        assert KEY not in result.stdout + result.stderr
    files = [p for d in (tmp_path / "a", tmp_path / "b", cache) for p in d.rglob("*") if p.is_file()]
    assert len(files) > 8 and not [p for p in files if KEY.encode() in p.read_bytes()]

    manifest = json.loads((tmp_path / "a/manifest.json").read_text(encoding="utf-8"))
    [plugin] = [p for p in manifest["plugins"] if p["name"] == "llm_rewrite"]
    assert plugin["registers"] == {"perturbations": ["llm_rewrite", "llm_rewrite_caption"]}
    provenance = plugin["provenance"]["llm_rewrite"]
    assert (provenance["model"], provenance["prompt_sha256"]) == ("edit-bot", load_prompts().sha256)
    stats = manifest["counts"]["negatives"]
    judged = sum(n for k, n in {**stats["accepted"], **stats["rejections"]}.items() if "llm_rewrite" in k)
    assert judged == sent  # each reply became an accepted negative or a counted rejection
    assert manifest["negatives"]["time_budget"] > 10  # raised so the LLM's retries fit


def test_llm_options_without_a_model_are_a_usage_error(tmp_path):
    result = _generate(tmp_path / "x", "--llm-base-url", "http://127.0.0.1:9/v1")
    assert result.returncode == 2
    assert result.stderr == "error: --llm-* options need --llm-model MODEL to turn the LLM plugin on\n"
    missing = _generate(tmp_path / "y", "--llm-model", "gpt-4o", "--llm-api-key-env", "NO_SUCH_KEY_VAR")
    assert missing.returncode == 2 and "set $NO_SUCH_KEY_VAR" in missing.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_run_without_the_llm_imports_no_openai_and_registers_nothing(tmp_path):
    script = """
import json, sys
import numpy as np
from geoforge.negatives import NegativeConfig, make_negatives
from geoforge.plugins import PluginHost
from geoforge.render import render
from geoforge.testing import make_positive

positive = make_positive("A = free A; B = free B; C = free C; M = midpoint M B C; draw polygon A B C",
                         ["midpoint M B C"])
host = PluginHost()
found = make_negatives(positive, render(positive.scene), host, NegativeConfig(image=2, caption=2),
                       np.random.default_rng(0))
[info] = [p for p in host.plugins if p.name == "llm_rewrite"]
print(json.dumps([info.to_json(), sorted({name for name, _ in found.rejections}), "openai" in sys.modules]))
"""
    # Run outside the source tree, where a stale ``*.egg-info`` could shadow the entry points.
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=_env(), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    info, rejected_by, imported = json.loads(result.stdout)
    assert {k: info[k] for k in ("name", "version", "source", "origin", "registers", "error")} == {
        "name": "llm_rewrite",
        "version": geoforge.__version__,
        "source": "built-in",
        "origin": "geoforge_llm.plugin",
        "registers": {},
        "error": None,
    }
    assert "provenance" not in info
    assert rejected_by and not [name for name in rejected_by if "llm" in name] and imported is False


def test_the_cli_defaults_are_the_plugins_defaults():
    import inspect

    from geoforge_llm.config import LLMConfig

    from geoforge.cli.corpus import generate

    defaults = {n: p.default for n, p in inspect.signature(generate).parameters.items()}
    config = LLMConfig("m")
    for name in ("backend", "api_key_env", "concurrency", "budget", "timeout", "per_positive", "allow_swap"):
        assert defaults[f"llm_{name}"] == getattr(config, name), name
