"""Test-suite set-up: the shared helper modules get pytest's assertion rewriting, since the
test modules import them before pytest would load them as plugins."""

import re
from pathlib import Path

import pytest

from geoforge.sampler import Recipe, load_recipe

pytest.register_assert_rewrite("plugin_helpers", "trainer_support")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> Recipe:
    """``corpora/smoke.toml`` in shards of 2 samples (a module may define its own ``recipe``)."""
    text = (Path(__file__).resolve().parents[1] / "corpora" / "smoke.toml").read_text(encoding="utf-8")
    path = tmp_path_factory.mktemp("recipe") / "tiny.toml"
    path.write_text(re.sub(r"(?m)^shard_size = .*$", "shard_size = 2", text), encoding="utf-8")
    return load_recipe(path)
