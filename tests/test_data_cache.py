"""The fast training-data path gives the tensors of the decoded path, value for value: greyscale
figures resized in one channel, uint8 batches normalised after the move to the device, image
negatives decoded only when used, and the pre-decoded cache of ``geoforge corpus cache`` (which
refuses to serve other shards, another size or augmentation, in one line)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tomllib

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from geoforge_train import data as data_module  # noqa: E402
from geoforge_train.cache import ImageCache, build_cache  # noqa: E402
from geoforge_train.data import (  # noqa: E402
    CorpusIndex,
    DataError,
    HardNegativeDataset,
    NegativeUse,
    Transform,
    collate,
)
from geoforge_train.loader import to_device  # noqa: E402
from PIL import Image  # noqa: E402

from geoforge.corpus import NEGATIVES  # noqa: E402
from geoforge.generate import generate_corpus  # noqa: E402
from geoforge.negatives import NegativeConfig  # noqa: E402
from geoforge.sampler.recipe import recipe_from_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GEOFORGE = Path(sys.executable).parent / "geoforge"
#: 6 samples in shards of 4 and 2, 3 image negatives and 1 caption negative asked each.
N, SHARD, K = 6, 4, 3
SIZE = 48  # the model input size of these tests (the corpus is stored at the recipe's 448 px)
USE = NegativeUse(("caption",), 1, K)


class _Tokenizer:
    """Characters as token ids, context 16: enough to tell captions apart, no model needed."""

    def __call__(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros((len(texts), 16), dtype=torch.long)
        for i, t in enumerate(texts):
            ids = [ord(c) % 1000 for c in t[:16]]
            out[i, : len(ids)] = torch.tensor(ids)
        return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    recipe = tomllib.loads((ROOT / "corpora" / "smoke.toml").read_text(encoding="utf-8"))
    recipe["corpus"]["shard_size"] = SHARD
    out = tmp_path_factory.mktemp("data-cache") / "corpus"
    negatives = NegativeConfig(image=K, caption=1, max_checks=4)
    generate_corpus(recipe_from_dict(recipe, "smoke.toml"), out, n=N, seed=0, negatives=negatives)
    return out


@pytest.fixture(scope="module")
def cache(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "c48"
    build_cache(str(corpus), out, SIZE, workers=2)
    return out


def _dataset(corpus: Path, **kwargs: object) -> HardNegativeDataset:
    use = kwargs.pop("use", USE)
    transform = kwargs.pop("transform", Transform(SIZE, train=True))
    return HardNegativeDataset(CorpusIndex.build(str(corpus)), _Tokenizer(), transform, use, **kwargs)  # type: ignore[arg-type]


def _assert_batches_equal(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor):
            assert isinstance(y, torch.Tensor) and x.dtype == y.dtype and x.shape == y.shape, key
            assert torch.equal(x, y), key
            if x.is_floating_point():  # bit for bit, not only ==
                assert x.numpy().tobytes() == y.numpy().tobytes(), key
        else:
            assert x == y, key


def test_greyscale_figures_resize_in_one_channel_to_the_values_of_the_rgb_path(corpus: Path) -> None:
    spans = CorpusIndex.build(str(corpus)).samples[0]
    with open(spans["png"][0], "rb") as fh:
        fh.seek(spans["png"][1])
        png = fh.read(spans["png"][2])
    grey = Image.open(io.BytesIO(png))
    assert grey.mode == "L"
    transform = Transform(SIZE, train=True, rotate=12, downscale=0.7)
    for seed in range(3):
        one = transform.pixels(grey, np.random.default_rng(seed))
        rgb = transform.pixels(grey.convert("RGB"), np.random.default_rng(seed))
        assert one.shape == (SIZE, SIZE) and rgb.shape == (SIZE, SIZE, 3)
        assert np.array_equal(np.repeat(one[..., None], 3, axis=2), rgb)
        floats = transform(grey, np.random.default_rng(seed))
        assert torch.equal(floats, transform(grey.convert("RGB"), np.random.default_rng(seed)))
        assert floats.shape == (3, SIZE, SIZE) and floats.dtype == torch.float32


def test_uint8_batches_normalised_after_the_transfer_equal_the_workers_float_batches(corpus: Path) -> None:
    transform = Transform(SIZE, train=True, rotate=8, downscale=0.8)
    use = NegativeUse(("caption",), 1, K + 1)  # one padded image negative per sample at least
    floats = _dataset(corpus, transform=transform, seed=3, use=use)
    uint8 = _dataset(corpus, transform=transform, seed=3, use=use, uint8=True)
    keys = [(1, i) for i in range(N)]
    raw = collate([uint8[k] for k in keys])
    assert raw["image"].dtype == torch.uint8 and raw["image"].shape == (N, 1, SIZE, SIZE)
    assert raw["neg_image"].shape == (N, K + 1, 1, SIZE, SIZE)
    assert not bool(raw["neg_image_mask"][:, K].any())
    _assert_batches_equal(collate([floats[k] for k in keys]), to_device(raw, torch.device("cpu"), transform))


def test_image_negatives_are_decoded_only_when_used_and_only_the_tiles_asked(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    real = data_module.unpack_negatives

    def spy(strip: bytes, count: int) -> list[Image.Image]:
        asked.append(count)
        return real(strip, count)

    monkeypatch.setattr(data_module, "unpack_negatives", spy)
    transform = Transform(SIZE)
    _dataset(corpus, use=NegativeUse(("caption",), 1, 0), transform=transform)[0]
    assert asked == []  # no image negative asked: the strip is not even read
    index = CorpusIndex.build(str(corpus))
    item = _dataset(corpus, use=NegativeUse((), 0, 2), transform=transform)[0]
    assert asked == [2]
    path, offset, size = index.samples[0][NEGATIVES]
    with open(path, "rb") as fh:
        fh.seek(offset)
        tiles = real(fh.read(size), K)
    for j in range(2):
        assert torch.equal(item["neg_image"][j], transform(tiles[j]))
    assert not torch.equal(item["neg_image"][1], transform(tiles[2]))


def test_cached_items_equal_the_decoded_items_of_every_sample(corpus: Path, cache: Path) -> None:
    index = json.loads((cache / "index.json").read_text())
    assert [e["samples"] for e in index["shards"]] == [SHARD, N - SHARD]
    images = np.load(cache / "part-000000.npy", mmap_mode="r")
    assert images.dtype == np.uint8 and images.shape[1:] == (SIZE, SIZE)
    for uint8 in (False, True):
        decoded = _dataset(corpus, uint8=uint8)
        cached = _dataset(corpus, uint8=uint8, cache=ImageCache.open(cache))
        keys = [(0, i) for i in range(N)]
        _assert_batches_equal(collate([decoded[k] for k in keys]), collate([cached[k] for k in keys]))


def test_a_cache_is_refused_for_edited_shards_another_size_or_augmentation(
    corpus: Path, cache: Path, tmp_path: Path
) -> None:
    edited = tmp_path / "edited"
    edited.mkdir()
    for p in corpus.iterdir():
        if not p.name.endswith(".tar"):
            (edited / p.name).write_bytes(p.read_bytes())
    for p in sorted(corpus.glob("shard-*.tar")):  # shard 1: its first caption a character longer
        edit = p.name == "shard-000001.tar"
        with tarfile.open(p) as src, tarfile.open(edited / p.name, "w", format=tarfile.USTAR_FORMAT) as dst:
            for member in src.getmembers():
                data = src.extractfile(member).read()  # type: ignore[union-attr]
                if edit and member.name.endswith(".txt"):
                    data, member.size, edit = data + b"!", len(data) + 1, False
                dst.addfile(member, io.BytesIO(data))
    assert (edited / "shard-000001.tar").stat().st_size == (corpus / "shard-000001.tar").stat().st_size
    opened = ImageCache.open(cache)
    with pytest.raises(DataError, match=r"is stale: the members of .*shard-000001.tar moved"):
        opened.check(CorpusIndex.build(str(edited)), Transform(SIZE))
    with pytest.raises(DataError, match="is stale: built for 2 shard"):
        opened.check(CorpusIndex.build(str(corpus / "shard-000000.tar")), Transform(SIZE))
    with pytest.raises(DataError, match=f"images of {SIZE} px, but the model takes 64 px"):
        opened.check(CorpusIndex.build(str(corpus)), Transform(64))
    with pytest.raises(DataError, match="--rotate and --downscale need the decoded path"):
        opened.check(CorpusIndex.build(str(corpus)), Transform(SIZE, train=True, rotate=5))
    opened.check(CorpusIndex.build(str(corpus)), Transform(SIZE, train=True))  # no augmentation: fine


def test_corpus_cache_refuses_a_full_directory_and_train_a_cache_of_another_size_in_one_line(
    corpus: Path, cache: Path, tmp_path: Path
) -> None:
    if not GEOFORGE.is_file():
        pytest.skip(f"no geoforge script next to {sys.executable}")
    env = {k: v for k, v in os.environ.items() if k != "GEOFORGE_DEBUG"}

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(GEOFORGE), *map(str, args)], capture_output=True, text=True, env=env)

    again = run("corpus", "cache", corpus, "--size", SIZE, "--out", cache)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.strip().splitlines() == [
        f"error: --out {cache} is not empty: pass --overwrite to replace the cache in it"
    ]
    proc = run(
        *("train", "mmclip", "--data", corpus, "--data-cache", cache, "--out", tmp_path / "run"),
        *("--model", "geoforge-tiny", "--max-steps", "1", "--batch-size", "2", "--device", "cpu"),
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: --data-cache {cache}: images of {SIZE} px, but the model takes 160 px; rebuild it: "
        f"geoforge corpus cache DATA --size 160 --out {cache} --overwrite"
    ]
