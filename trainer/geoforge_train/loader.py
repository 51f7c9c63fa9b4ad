"""The training data path: the dataset a run reads, its DataLoader, and the move to the device.

Worker processes decode PNGs (or read a pre-decoded :mod:`geoforge_train.cache`). For a CUDA
device they stop at uint8 images, one channel for geoforge's greyscale figures; the batches
travel as uint8 to pinned memory and to the device, where :func:`to_device` normalises them.
That is 1/12 of the bytes of float32 RGB batches through the worker queues, the pinning copy
and the host-to-device copy, and no per-pixel float work on the CPU; the normalised values
equal the CPU path's bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

from geoforge.errors import GeoforgeError
from geoforge_train.data import CorpusIndex, HardNegativeDataset, NegativeUse, Transform, collate

#: Batches each worker keeps ready (torch's default is 2): a worker decodes a whole batch, so
#: 4 covers a step that is slower than average without holding much memory (uint8 batches).
PREFETCH_FACTOR = 4


def training_dataset(
    config: Any, tokenizer: Any, preprocess: dict[str, Any], uint8: bool
) -> HardNegativeDataset:
    """The dataset a training run reads: ``config`` (a :class:`geoforge_train.train.TrainConfig`)
    gives the data, negatives, augmentation, seed and ``data_cache``; ``preprocess`` is the
    model's :func:`geoforge_train.models.preprocess_cfg`. With ``uint8`` (for a CUDA device),
    items carry uint8 images (:class:`geoforge_train.data.SampleEncoder`) that :func:`to_device`
    normalises on the device; without (on the CPU, where that costs about 0.5 ms per
    224-px image, more than a worker's decoding), the workers normalise. Raises DataError as
    :class:`~geoforge_train.data.CorpusIndex` and
    :class:`~geoforge_train.data.HardNegativeDataset` do (a stale or mismatched cache
    included)."""
    from geoforge_train.cache import ImageCache

    index = CorpusIndex.build(config.data, strict=config.strict, warn=False)  # train() warns
    use = NegativeUse(config.text_negatives, config.k_text, config.k_image)
    transform = Transform.from_cfg(preprocess, True, config.rotate, config.downscale)
    cache = ImageCache.open(config.data_cache) if config.data_cache else None
    return HardNegativeDataset(
        index, tokenizer, transform, use, config.seed, require_each=True, uint8=uint8, cache=cache
    )


def training_loader(
    dataset: HardNegativeDataset, batch_sampler: Iterable[list[Any]], workers: int, device: torch.device
) -> DataLoader:
    """The DataLoader of a training run: ``batch_sampler`` yields each micro-batch's
    ``(epoch, index)`` keys (:class:`geoforge_train.train.StepBatches`); ``workers`` processes
    (0: this one) kept alive across epochs (``persistent_workers``), each holding up to
    :data:`PREFETCH_FACTOR` batches ready; batches pinned (``pin_memory``) when ``device`` is
    CUDA, for asynchronous copies."""
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        collate_fn=collate,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=PREFETCH_FACTOR if workers > 0 else None,
    )


def to_device(batch: dict[str, Any], device: torch.device, transform: Transform) -> dict[str, Any]:
    """``batch`` with its images on ``device``: ``image`` (B, C, S, S) and ``neg_image``
    (B, L, C, S, S) copied without blocking (from pinned memory) and, if uint8, normalised there
    to float32 with 3 channels (:meth:`geoforge_train.data.Transform.normalise`), padded
    negatives (``neg_image_mask`` false) all-zero as the CPU path leaves them. The other entries
    stay where they are (the training step moves what it needs)."""
    out = dict(batch)
    for key in ("image", "neg_image"):
        out[key] = batch[key].to(device, non_blocking=True)
    if out["image"].dtype == torch.uint8:
        out["image"] = transform.normalise(out["image"])
        mask = batch["neg_image_mask"].to(device, non_blocking=True)[..., None, None, None]
        out["neg_image"] = torch.where(mask, transform.normalise(out["neg_image"]), 0.0)
    return out


def device_batches(
    loader: DataLoader, device: torch.device, transform: Transform
) -> Iterator[dict[str, Any]]:
    """The batches of ``loader`` on ``device``, normalised (:func:`to_device`). A geoforge error
    in a worker process (a sample that cannot be read, :class:`geoforge_train.data.UnreadableSample`)
    is raised again with its own one-line message: the DataLoader raises it with the worker's
    whole traceback as its text."""
    try:
        for batch in loader:
            yield to_device(batch, device, transform)
    except GeoforgeError as e:
        lines = str(e).splitlines()
        if len(lines) > 1 and lines[0].startswith("Caught ") and ": " in lines[-1]:
            raise type(e)(lines[-1].partition(": ")[2]) from None  # "module.Class: message"
        raise
