"""The corpus-wide retrieval pool (geoforge.retrieval): exact BM25 as rank_bm25 scores it, the
approximate (faiss) index's recall against it, determinism, negatives drawn across shards, and
one-line errors for a bad index."""

from __future__ import annotations

import gzip
import json
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from plugin_helpers import _no_env_plugins  # noqa: F401  (autouse)
from rank_bm25 import BM25Okapi

from geoforge.errors import UsageError
from geoforge.generate import Sample, make_sample
from geoforge.negatives import NegativeConfig, add_negatives, pool_entry
from geoforge.plugins import PluginSpec
from geoforge.retrieval import RetrievalIndexError, build_index, load_index, tokens
from geoforge.retrieval.ann import need_faiss
from geoforge.retrieval.captions import sampled_captions
from geoforge.retrieval.index import RERANK, _top
from geoforge.sampler import load_recipe

ROOT = Path(__file__).resolve().parents[1]
#: 3,000 captions of corpora/mmgeo-4k.toml, seed 14: sampled_captions(recipe, 14, range(3000)).
CAPTIONS = Path(__file__).with_name("fixtures") / "retrieval_captions.jsonl.gz"
SHARD = 16  # corpora/smoke.toml's shard size


def _captions(n: int | None = None) -> list[tuple[str, str]]:
    with gzip.open(CAPTIONS, "rt", encoding="utf-8") as f:
        rows = [tuple(json.loads(line)) for line in f]
    return rows[:n]  # type: ignore[return-value]


@pytest.fixture(scope="module")
def smoke_samples() -> list[Sample]:
    """Samples 0..31 of corpora/smoke.toml (seed 0): two shards of 16."""
    recipe = load_recipe(ROOT / "corpora/smoke.toml")
    return [make_sample(recipe, 0, i) for i in range(2 * SHARD)]


def test_fixture_captions_are_the_sampler_captions_of_mmgeo_4k_seed_14() -> None:
    recipe = load_recipe(ROOT / "corpora/mmgeo-4k.toml")
    assert [(e.key, e.text) for e in sampled_captions(recipe, 14, range(3))] == _captions(3)


def test_sampled_captions_are_make_sample_captions(smoke_samples: list[Sample]) -> None:
    recipe = load_recipe(ROOT / "corpora/smoke.toml")
    assert list(sampled_captions(recipe, 0, range(2 * SHARD))) == [pool_entry(s) for s in smoke_samples]


def test_exact_scores_are_rank_bm25_bit_for_bit_and_the_pool_is_its_ranking(tmp_path: Path) -> None:
    rows = _captions(600)
    index = load_index(build_index(rows, tmp_path / "ix"))
    assert index.meta["mode"] == "exact" and index.ivf is None
    bm25 = BM25Okapi([tokens(t) for _, t in rows])
    for i in range(0, 600, 20):
        key, text = rows[i]
        scores = bm25.get_scores(tokens(text))
        assert np.array_equal(index.postings.scores(text), scores)
        expected = [rows[j][0] for j in np.argsort(-scores, kind="stable") if j != i][:25]
        got = index.pool(key, text, 25)
        assert [e.key for e in got] == expected
        assert all(e.text == dict(rows)[e.key] and e.claims for e in got)


@pytest.mark.parametrize("given", ["entries", "texts"])
def test_pool_entries_carry_the_claims_the_corpus_stores(
    tmp_path: Path, smoke_samples: list[Sample], given: str
) -> None:
    stored = {s.key: pool_entry(s) for s in smoke_samples}
    rows = stored.values() if given == "entries" else ((s.key, s.text) for s in smoke_samples)
    index = load_index(build_index(rows, tmp_path / "ix"))
    entries = index.pool(smoke_samples[0].key, smoke_samples[0].text, 31)
    assert len(entries) == 31
    assert all(e == stored[e.key] for e in entries)


def test_approximate_recall_at_10_and_64_against_exact_bm25_on_3000_captions_is_at_least_0_98(
    tmp_path: Path,
) -> None:
    rows = _captions()
    index = load_index(build_index(rows, tmp_path / "ix", approximate_above=0))
    assert index.meta["mode"] == "approximate" and index.meta["nlist"] == 55
    for n in (10, 64):
        recall = []
        for i in range(0, len(rows), 15):
            text = rows[i][1]
            scores = index.postings.scores(text)
            exact = [j for j in _top(scores, n + 1) if j != i][:n]
            approx = [j for j in index.ranked(text, RERANK * (n + 1)) if j != i][:n]
            recall.append(np.mean(scores[approx] >= scores[exact[-1]]))
        assert np.mean(recall) >= 0.98, (n, np.mean(recall))  # measured 0.996 and 0.997


@pytest.mark.parametrize("approximate_above", [10**9, 0])
def test_same_captions_give_the_same_index_bytes(tmp_path: Path, approximate_above: int) -> None:
    rows = _captions(1500)
    a = build_index(rows, tmp_path / "a", approximate_above=approximate_above)
    b = build_index(iter(rows), tmp_path / "b", approximate_above=approximate_above)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert ("ivf.faiss" in names) == (approximate_above == 0)
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def _negatives(args: tuple[list[Sample], NegativeConfig]) -> list[bytes]:
    samples, config = args
    return [add_negatives(s, (), config, PluginSpec(), 448, 0).files()["json"] for s in samples]


def test_corpus_pool_draws_retrieval_negatives_from_other_shards_the_same_in_any_worker_count(
    tmp_path: Path, smoke_samples: list[Sample]
) -> None:
    path = build_index((pool_entry(s) for s in smoke_samples), tmp_path / "retrieval")
    config = NegativeConfig(retrieval=3, retrieval_pool=str(path))
    first = smoke_samples[:SHARD]
    alone = _negatives((first, config))
    with ProcessPoolExecutor(2) as pool:
        split = [x for part in pool.map(_negatives, [(first[:8], config), (first[8:], config)]) for x in part]
    assert split == alone
    drawn = []
    for sample, meta in zip(first, alone):
        record = json.loads(json.loads(meta)["negatives"])
        keys = [re.match(r"retrieved from (\d+) ", r["change"]).group(1) for r in record["retrieval"]]
        assert sample.key not in keys
        drawn += keys
    assert len(drawn) >= SHARD  # most positives get some
    assert any(int(k) >= SHARD for k in drawn)  # from the other shard


def test_without_an_index_the_pool_is_the_one_given(smoke_samples: list[Sample]) -> None:
    shard = tuple(pool_entry(s) for s in smoke_samples[:SHARD])
    made = add_negatives(smoke_samples[0], shard, NegativeConfig(retrieval=3), PluginSpec(), 448, 0)
    record = json.loads(made.meta["negatives"])  # type: ignore[arg-type]
    keys = [re.match(r"retrieved from (\d+) ", r["change"]).group(1) for r in record["retrieval"]]
    assert keys and all(int(k) < SHARD for k in keys)


def _one_line(e: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


def test_missing_or_bad_index_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(RetrievalIndexError) as e:
        load_index(tmp_path / "nowhere")
    assert _one_line(e).startswith(f"{tmp_path / 'nowhere'}: no retrieval index there")
    path = build_index(_captions(50), tmp_path / "ix")
    (path / "postings_doc.npy").unlink()
    with pytest.raises(RetrievalIndexError) as e:
        load_index(path)
    assert _one_line(e).startswith(f"{path / 'postings_doc.npy'}: missing")
    np.save(path / "postings_doc.npy", np.zeros(3, dtype=np.float32))
    with pytest.raises(RetrievalIndexError) as e:
        load_index(path)
    assert _one_line(e) == f"{path / 'postings_doc.npy'}: dtype float32, expected int32"
    (path / "index.json").write_text("{not json")
    with pytest.raises(RetrievalIndexError) as e:
        load_index(path)
    assert _one_line(e).startswith(f"{path / 'index.json'}: unreadable")


def test_negatives_with_a_missing_index_fail_with_its_path(
    tmp_path: Path, smoke_samples: list[Sample]
) -> None:
    config = NegativeConfig(retrieval=1, retrieval_pool=str(tmp_path / "gone"))
    with pytest.raises(RetrievalIndexError, match="gone: no retrieval index there"):
        add_negatives(smoke_samples[0], (), config, PluginSpec(), 448, 0)


def test_build_refuses_an_existing_index_duplicate_keys_and_no_captions(tmp_path: Path) -> None:
    rows = _captions(20)
    path = build_index(rows, tmp_path / "ix")
    with pytest.raises(UsageError, match="already there; pass --overwrite"):
        build_index(rows, path)
    assert build_index(rows[:10], path, overwrite=True) == path and len(load_index(path)) == 10
    with pytest.raises(RetrievalIndexError, match="duplicate key '00000003'"):
        build_index([*rows, rows[3]], tmp_path / "dup")
    with pytest.raises(RetrievalIndexError, match="no captions to index"):
        build_index([], tmp_path / "empty")
    with pytest.raises(RetrievalIndexError, match="caption 7: not a geoforge caption"):
        build_index([("7", "Hello there.")], tmp_path / "prose")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]  # no half index left behind


def test_without_faiss_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(RetrievalIndexError) as e:
        need_faiss()
    assert "pip install 'geoforge[retrieval]'" in _one_line(e)
