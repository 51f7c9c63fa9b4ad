"""The shard pool's BM25 with one caption left out (geoforge.retrieval.bm25.PoolBM25) against
rank_bm25 built without it, bit for bit, and the retrieval plugin's ranking on a shard-sized
pool against the tiers it documents."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rank_bm25 import BM25Okapi

from geoforge.caption import Caption, Claim
from geoforge.caption.claims import VALUE_KINDS
from geoforge.generate import make_sample
from geoforge.negatives import pool_entry
from geoforge.perturb import Positive
from geoforge.retrieval.bm25 import PoolBM25, tokens
from geoforge.sampler import load_recipe
from geoforge.verify import violation

CAPTIONS = Path(__file__).with_name("fixtures") / "retrieval_captions.jsonl.gz"

#: Few distinct words, so that most are in more than half the documents (rank_bm25's IDF
#: floor) and a left-out document often holds a word's first or only use.
_docs = st.lists(st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=6), min_size=1, max_size=9)


@given(docs=_docs, query=st.lists(st.sampled_from("abcdefgh"), max_size=6), data=st.data())
@example(docs=[["a"], ["b", "a"]], query=["a", "b", "a"], data=None)
@example(  # the left-out first document holds the first use of d, f and g: the IDF sum's order moves
    docs=[list(w) for w in ("dfg", "a", "efbg", "aa", "dbafcc", "accc", "gfbfg", "eacee")],
    query=["h", "a"],
    data=None,
)
def test_leaving_one_out_scores_as_rank_bm25_without_it_bit_for_bit(
    docs: list[list[str]], query: list[str], data: st.DataObject | None
) -> None:
    j = 0 if data is None else data.draw(st.integers(0, len(docs) - 1))
    bm25 = PoolBM25(docs)
    rest = docs[:j] + docs[j + 1 :]
    want = BM25Okapi(rest).get_scores(query) if rest else np.zeros(0)
    got = bm25.scores(query, leave_out=j)
    assert got.dtype == np.float64 and got.shape == (len(docs) - 1,)
    assert got.tobytes() == want.tobytes()
    assert bm25.scores(query).tobytes() == BM25Okapi(docs).get_scores(query).tobytes()


def test_real_captions_leave_one_out_match_rank_bm25() -> None:
    with gzip.open(CAPTIONS, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)[1] for _, line in zip(range(120), f)]
    docs = [tokens(t) for t in texts]
    bm25 = PoolBM25(docs)
    for j in (0, 1, 57, 119):
        query = tokens(texts[(j * 7 + 3) % len(texts)])
        want = BM25Okapi(docs[:j] + docs[j + 1 :]).get_scores(query)
        assert bm25.scores(query, leave_out=j).tobytes() == want.tobytes()


def test_bad_pools_and_documents_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one document"):
        PoolBM25([])
    with pytest.raises(ValueError, match="no empty document"):
        PoolBM25([["a"], []])
    with pytest.raises(IndexError, match="document 2 is not in a pool of 2"):
        PoolBM25([["a"], ["b"]]).scores(["a"], leave_out=2)
    for wrong in (True, 1.0, "1"):  # True would leave out document 1; 1.0 used to fail inside numpy
        with pytest.raises(TypeError, match="leave_out must be a document index"):
            PoolBM25([["a"], ["b"]]).scores(["a"], leave_out=wrong)  # type: ignore[arg-type]
    assert PoolBM25([["a"], ["b"]]).scores(["a"], leave_out=np.int64(1)).shape == (1,)


def test_the_retrieval_plugin_ranks_a_shard_sized_pool_by_its_tiers_then_rank_bm25() -> None:
    """Over 300 pooled captions: the plugin yields every other caption once, those with a
    relation false on the figure first, then those whose relations all hold, then those naming
    an absent point, each tier by rank_bm25's score without the positive (stable on ties)."""
    from geoforge_perturb.retrieval import Retrieval

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "corpora" / "mmgeo-4k.toml")
    samples = [make_sample(recipe, 3, i) for i in range(300)]
    pool = tuple(pool_entry(s) for s in samples)
    for at in (0, 151, 299):
        me = pool[at]
        scene = samples[at].scene
        caption = Caption(me.text, "plain", list(me.claims))
        positive = Positive(me.key, scene.program, scene, caption, me.claims, pool)
        got = [c.change for c in Retrieval().propose(positive, np.random.default_rng(0))]
        others = [p for p in pool if p.key != me.key and p.claims]
        scores = BM25Okapi([tokens(p.text) for p in others]).get_scores(tokens(me.text))
        tiers = [_tier(p.claims, positive) for p in others]
        order = sorted(range(len(others)), key=lambda k: (tiers[k], -scores[k]))
        assert got == [f"retrieved from {others[k].key} (BM25 {scores[k]:.2f})" for k in order]
        assert set(tiers) == {0, 1, 2}


def _tier(claims: tuple[Claim, ...], positive: Positive) -> int:
    """0: some relation false on the positive's figure; 1: all hold; 2: names an absent point."""
    scene = positive.scene
    if any(n not in scene.points for c in claims for f in c.facts() for n in f.points):
        return 2
    relations = [c for c in claims if c.kind not in VALUE_KINDS]
    return int(all(violation(c, scene) < 1.0 for c in relations))
