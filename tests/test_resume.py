"""``generate --resume`` refuses any change of what the shards contain, by name, and never
deletes a shard without ``--overwrite``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from geoforge.errors import UsageError
from geoforge.generate import generate_corpus
from geoforge.negatives import NegativeConfig
from geoforge.plugins import PluginSpec


def _shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("shard-*.tar"))}


@pytest.fixture(scope="module")
def corpus(recipe, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """4 samples in 2 shards, with one verified caption negative each."""
    out = tmp_path_factory.mktemp("corpus") / "c"
    generate_corpus(recipe, out, n=4, seed=recipe.seed, negatives=NegativeConfig(caption=1))
    return out


def test_the_manifest_records_a_complete_run(corpus: Path) -> None:
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert (manifest["samples"], manifest["negatives"]["caption"]) == (4, 1)


def test_resume_with_a_lower_n_is_refused_and_keeps_every_shard(recipe, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    before = _shards(corpus)
    with pytest.raises(
        UsageError, match=r"^--resume: --n changed since the run being resumed \(4 there, 2 now\)"
    ):
        generate_corpus(
            recipe, corpus, n=2, seed=recipe.seed, resume=True, negatives=NegativeConfig(caption=1)
        )
    assert _shards(corpus) == before


def test_resume_with_other_negatives_is_refused_and_keeps_every_shard(recipe, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    before = _shards(corpus)
    for other in (NegativeConfig(caption=2), NegativeConfig(caption=1, image=1), None):
        with pytest.raises(UsageError, match=r"^--resume: the negative settings \(--image-negatives"):
            generate_corpus(recipe, corpus, n=4, seed=recipe.seed, resume=True, negatives=other)
    assert _shards(corpus) == before


def test_a_resume_refusal_names_the_field_that_differs(recipe, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as info:
        generate_corpus(
            recipe, corpus, n=4, seed=recipe.seed, resume=True, negatives=NegativeConfig(caption=2)
        )
    assert "changed since the run being resumed (caption: 1 there, 2 now); resume" in str(info.value)


def test_resume_with_another_recipe_names_the_recipe_not_its_default_seed(recipe, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    other = dataclasses.replace(recipe, seed=recipe.seed + 1, max_clauses=recipe.max_clauses + 1)
    before = _shards(corpus)
    with pytest.raises(UsageError, match=r"^--resume: the recipe changed since the run being resumed"):
        generate_corpus(other, corpus, n=4, seed=other.seed, resume=True, negatives=NegativeConfig(caption=1))
    assert _shards(corpus) == before


@pytest.mark.parametrize("text, kind", [("[]", "list"), ("null", "null")])
def test_resume_over_a_manifest_that_is_no_object_is_one_usage_error(
    recipe, tmp_path: Path, text, kind
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "c"
    generate_corpus(recipe, out, n=2, seed=recipe.seed)
    (out / "manifest.json").write_text(text)
    before = _shards(out)
    with pytest.raises(UsageError, match=rf"cannot be read to resume \(a JSON {kind}, expected an object\)"):
        generate_corpus(recipe, out, n=2, seed=recipe.seed, resume=True)
    assert _shards(out) == before


def test_resume_with_another_plugin_set_is_refused_and_keeps_every_shard(recipe, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    before = _shards(corpus)
    with pytest.raises(UsageError, match=r"^--resume: the plugin set .* changed since the run being resumed"):
        generate_corpus(
            recipe,
            corpus,
            n=4,
            seed=recipe.seed,
            resume=True,
            negatives=NegativeConfig(caption=1),
            plugins=PluginSpec(disabled=("retrieval",)),
        )
    assert _shards(corpus) == before


def test_a_plugin_set_refusal_names_the_plugins_added_and_removed(recipe, corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plugin = tmp_path / "extra_words.py"
    plugin.write_text("__version__ = '0.3'\n")  # a plugin that registers nothing still joins the set
    with pytest.raises(UsageError) as info:
        generate_corpus(
            recipe,
            corpus,
            n=4,
            seed=recipe.seed,
            resume=True,
            negatives=NegativeConfig(caption=1),
            plugins=PluginSpec(paths=(str(plugin),), disabled=("retrieval",)),
        )
    version = __import__("geoforge").__version__
    digest = hashlib.sha256(plugin.read_bytes()).hexdigest()[:12]
    assert f"(added extra_words 0.3 sha256:{digest}; removed retrieval {version}); resume" in str(info.value)


def test_resume_after_a_plugin_file_changed_under_the_same_version_is_refused(
    recipe, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """It was accepted: the set compared names and versions only, and a file's version rarely
    moves with its code, so the corpus mixed shards of two plugins."""
    plugin = tmp_path / "mine.py"
    plugin.write_text("__version__ = '0.1'\nRULE = 'equal'\n")
    spec = PluginSpec(paths=(str(plugin),))
    out = tmp_path / "c"
    generate_corpus(recipe, out, n=2, seed=recipe.seed, negatives=NegativeConfig(caption=1), plugins=spec)
    (out / "shard-000000.tar").unlink()
    before = hashlib.sha256(plugin.read_bytes()).hexdigest()[:12]
    plugin.write_text("__version__ = '0.1'\nRULE = 'perpendicular'\n")
    monkeypatch.setattr("geoforge.negatives._HOSTS", {})  # a new run, as a new process loads it
    after = hashlib.sha256(plugin.read_bytes()).hexdigest()[:12]
    with pytest.raises(UsageError) as info:
        generate_corpus(
            recipe, out, n=2, seed=recipe.seed, resume=True, negatives=NegativeConfig(caption=1), plugins=spec
        )
    assert f"(added mine 0.1 sha256:{after}; removed mine 0.1 sha256:{before}); resume" in str(info.value)


def test_resume_without_a_manifest_never_deletes_shards_beyond_n(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "old"
    generate_corpus(recipe, out, n=3, seed=recipe.seed)
    (out / "manifest.json").unlink()  # as left by geoforge before it wrote the manifest first
    before = _shards(out)
    with pytest.raises(UsageError, match=r"would delete 1 complete shard\(s\) from shard-000001.tar"):
        generate_corpus(recipe, out, n=2, seed=recipe.seed, resume=True)
    assert _shards(out) == before


def test_resuming_a_complete_corpus_changes_nothing(recipe, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    files = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in corpus.iterdir()}
    got = generate_corpus(
        recipe, corpus, n=4, seed=recipe.seed, resume=True, negatives=NegativeConfig(caption=1)
    )
    assert got.pop("nothing_to_do") is True
    assert got == json.loads((corpus / "manifest.json").read_text())
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in corpus.iterdir()} == files


def _as_interrupted(out: Path) -> None:
    """Make ``out``'s manifest that of a run stopped before its end (no shard sizes yet)."""
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["complete"] = False
    manifest.pop("shard_bytes", None)
    (out / "manifest.json").write_text(json.dumps(manifest))


def _cut_end(shard: Path) -> None:
    """Cut ``shard`` right after its last member: no end-of-archive blocks."""
    import tarfile

    with tarfile.open(shard) as tar:
        tar.getmembers()
        end = tar.offset
    shard.write_bytes(shard.read_bytes()[:end])


def _overwrite_json(shard: Path) -> None:
    """Overwrite 4 bytes inside the first JSON member of ``shard``, in place (same size)."""
    import tarfile

    with tarfile.open(shard) as tar:
        first = next(m for m in tar.getmembers() if m.name.endswith(".json"))
    data = bytearray(shard.read_bytes())
    data[first.offset_data + 10 : first.offset_data + 14] = b"\x00!!\x00"
    shard.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_cut_end, _overwrite_json])
def test_resume_makes_a_damaged_shard_again_instead_of_keeping_it(recipe, tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "c"
    generate_corpus(recipe, out, n=4, seed=recipe.seed)
    whole = _shards(out)
    _as_interrupted(out)
    first = sorted(whole)[0]
    damage(out / first)
    assert _shards(out)[first] != whole[first]
    got = generate_corpus(recipe, out, n=4, seed=recipe.seed, resume=True)
    assert _shards(out) == whole  # the damaged shard was made again, byte for byte
    assert first not in got["run"]["resumed_shards"]
