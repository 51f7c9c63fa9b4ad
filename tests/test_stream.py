"""Training on fresh samples without a corpus (``geoforge_train.stream.GeneratedDataset``): its
items equal, tensor for tensor, the corpus reader's items of the corpus ``geoforge generate``
writes with the same recipe, seed and negatives; DataLoader workers share the samples out,
each made once. The shared corpora are in tests/trainer_support.py."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from geoforge_train.data import (  # noqa: E402
    CorpusIndex,
    HardNegativeDataset,
    NegativeUse,
    SampleEncoder,
    Transform,
    collate,
)
from geoforge_train.stream import GeneratedDataset  # noqa: E402
from trainer_support import _recipe  # noqa: E402

from geoforge.negatives import NegativeConfig  # noqa: E402

pytest_plugins = ["trainer_support"]

USE = NegativeUse(("caption",), 2, 0)


def _encoder() -> SampleEncoder:
    return SampleEncoder(open_clip.get_tokenizer("geoforge-tiny"), Transform(64, train=True, rotate=5), USE)


def _same(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key]), key  # type: ignore[arg-type]
        else:
            assert value == b[key], key


def test_generated_items_equal_the_written_corpus_items(caption_corpus: Path) -> None:
    """caption_corpus: 4 samples of the smoke recipe, seed 2, 2 rule caption negatives each."""
    encoder = _encoder()
    stream = GeneratedDataset(_recipe(), 2, encoder, NegativeConfig(caption=2), n=4)
    index = CorpusIndex.build(caption_corpus)
    written = HardNegativeDataset(index, encoder.tokenizer, encoder.transform, USE)
    items = list(stream)
    assert [it["key"] for it in items] == [f"{i:08d}" for i in range(4)]
    assert any(bool(it["neg_text_mask"].any()) for it in items)  # type: ignore[union-attr]
    for i, item in enumerate(items):
        _same(item, written[(0, i)])


def test_workers_make_every_sample_once_and_batches_collate() -> None:
    stream = GeneratedDataset(_recipe(), 5, _encoder(), n=5, block=1)
    loader = torch.utils.data.DataLoader(stream, batch_size=2, collate_fn=collate, num_workers=2)
    keys = [k for batch in loader for k in batch["key"]]
    assert sorted(keys) == [f"{i:08d}" for i in range(5)]
    ranks = [GeneratedDataset(_recipe(), 5, _encoder(), n=5, block=2, rank=r, world_size=2) for r in (0, 1)]
    assert [[it["key"] for it in r] for r in ranks] == [
        ["00000000", "00000001", "00000004"],
        ["00000002", "00000003"],
    ]
