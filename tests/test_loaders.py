"""A corpus in which some samples got fewer image negatives than asked for loads, as it is,
in Hugging Face ``datasets`` (the whole corpus and each shard alone) and in WebDataset (as
open_clip reads it), and every sample comes back with its negatives: ``negatives.png`` holds
them side by side, and each tile is the very image the verifier judged (its recorded pixel
difference from the positive is recomputed from the tile). The dataset card names the shards
with a correct brace range and documents every member and field."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image

from geoforge.card import MEMBERS, NEGATIVE_FIELDS, SAMPLE_FIELDS, shard_pattern
from geoforge.corpus import NEGATIVES, read_corpus, shards_in, unpack_negatives
from geoforge.generate import generate_corpus
from geoforge.negatives import NegativeConfig
from geoforge.sampler.recipe import recipe_from_dict
from geoforge.verify.image import pixel_difference

ROOT = Path(__file__).resolve().parents[1]
#: 8 samples in 2 shards of 4, 3 image negatives asked per sample with at most 4 candidates
#: verified: sample 5 (the second of shard 1) gets 2, the others 3.
N, SHARD, K = 8, 4, 3
COUNTS = [3, 3, 3, 3, 3, 2, 2, 3]
SIZE = 448


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tomllib.loads((ROOT / "corpora" / "smoke.toml").read_text(encoding="utf-8"))
    data["corpus"]["shard_size"] = SHARD
    out = tmp_path_factory.mktemp("loaders") / "corpus"
    config = NegativeConfig(image=K, caption=1, max_checks=4)
    generate_corpus(recipe_from_dict(data, "smoke.toml"), out, n=N, seed=0, negatives=config)
    return out


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.int16)


def _check_sample(key: str, png: Image.Image, strip: Image.Image, record: dict, positive: bytes) -> None:
    """The strip of sample ``key`` holds its recorded image negatives, then white tiles."""
    assert strip.size == (K * SIZE, SIZE) and png.size == (SIZE, SIZE)
    assert len(record["image"]) == COUNTS[int(key)], key
    tiles = unpack_negatives(strip, K)
    for i, neg in enumerate(record["image"]):
        assert neg["tile"] == i
        assert pixel_difference(positive, _grey(tiles[i])) == pytest.approx(neg["pixel_diff"], abs=5e-6)
    for blank in tiles[len(record["image"]) :]:
        assert (_grey(blank) == 255).all()


@pytest.fixture(scope="module")
def positives(corpus: Path) -> dict[str, bytes]:
    return {r.key: r.files["png"] for r in read_corpus(corpus)}


def test_the_premise_some_samples_have_fewer_negatives_than_asked(corpus: Path) -> None:
    got = [len(json.loads(r.meta["negatives"])["image"]) for r in read_corpus(corpus)]
    assert got == COUNTS
    for r in read_corpus(corpus):  # every sample has the same members
        assert sorted(r.files) == sorted(["json", "png", "txt", NEGATIVES])


def _load_hf(files: list[Path], cache: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    return datasets.load_dataset(
        "webdataset", data_files={"train": [str(p) for p in files]}, split="train", cache_dir=str(cache)
    )


@pytest.mark.parametrize("which", ["all shards", "shard 0", "shard 1"])
def test_hugging_face_datasets_loads_every_sample_with_its_negatives(
    corpus: Path, positives: dict[str, bytes], which: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shard 1 alone used to fail: its first samples' ``neg*.png`` members differed."""
    shards = shards_in(corpus)
    files = shards if which == "all shards" else [shards[int(which[-1])]]
    ds = _load_hf(files, tmp_path / "hf", monkeypatch)
    keys = [f"{i:08d}" for i in range(N)] if which == "all shards" else None
    if keys is None:
        lo = int(which[-1]) * SHARD
        keys = [f"{i:08d}" for i in range(lo, lo + SHARD)]
    assert ds["__key__"] == keys
    assert set(ds.column_names) >= {"png", "txt", "json", NEGATIVES}
    for row in ds:
        record = json.loads(row["json"]["negatives"])
        _check_sample(row["__key__"], row["png"], row[NEGATIVES], record, positives[row["__key__"]])


def test_webdataset_loads_every_sample_with_its_negatives_as_open_clip_does(
    corpus: Path, positives: dict[str, bytes]
) -> None:
    import webdataset as wds

    urls = str(corpus / shard_pattern(len(shards_in(corpus))))
    pairs = list(wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("png", "txt"))
    assert [txt for _, txt in pairs] == [r.files["txt"].decode() for r in read_corpus(corpus)]
    assert all(png.size == (SIZE, SIZE) for png, _ in pairs)
    rows = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    assert [r["__key__"] for r in rows] == [f"{i:08d}" for i in range(N)]
    for row in rows:
        record = json.loads(row["json"]["negatives"])
        _check_sample(row["__key__"], row["png"], row[NEGATIVES], record, positives[row["__key__"]])


def test_the_card_gives_the_brace_range_every_member_and_field_and_each_reader(corpus: Path) -> None:
    card = (corpus / "README.md").read_text(encoding="utf-8")
    assert shard_pattern(2) == "shard-{000000..000001}.tar" and shard_pattern(1) == "shard-000000.tar"
    assert "shard-{000000..000001}.tar" in card and "{000000..000000}" not in card
    assert "github.com" not in card
    for name in [*(f"`KEY.{m}`" for m in MEMBERS), *(f"`{f}`" for f in (*SAMPLE_FIELDS, *NEGATIVE_FIELDS))]:
        assert name in card, name
    assert 'load_dataset("webdataset"' in card and "wds.WebDataset(" in card and "open_clip_train" in card
    # the card's WebDataset snippet for the negatives runs as written, in the corpus directory
    snippet = card.split("```python\n", 1)[1].split("# Hugging Face", 1)[0]
    snippet = snippet.replace('urls = "', f'urls = "{corpus}/')
    scope: dict[str, object] = {}
    exec(snippet, scope)
    assert [im.size for im in scope["negatives"]] == [(SIZE, SIZE)] * COUNTS[-1]  # the last sample's


def test_docs_describe_every_member_and_field() -> None:
    """docs/corpus.md is the long-form reference of what the card says in short."""
    text = (ROOT / "docs" / "corpus.md").read_text(encoding="utf-8")
    for name in [*(f"KEY.{m}" for m in MEMBERS), *SAMPLE_FIELDS, *NEGATIVE_FIELDS]:
        assert re.search(rf"`{re.escape(name)}`", text), name


def test_a_strip_is_smaller_than_its_negatives_apart(corpus: Path) -> None:
    """Packing loses nothing and costs no space: tiles are pixel-identical (PNG is lossless),
    and deflate finds the figure repeated across tiles."""
    for record in read_corpus(corpus):
        apart = 0
        for tile in record.image_negatives():
            png = io.BytesIO()
            tile.save(png, format="PNG", optimize=True)
            apart += len(png.getvalue())
        assert len(record.files[NEGATIVES]) < apart
