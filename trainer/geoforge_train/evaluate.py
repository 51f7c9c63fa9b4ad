"""Evaluation of MMCLIP checkpoints on a held-out corpus with hard negatives.

For each held-out sample with image ``I``, caption ``T⁺``, caption negatives ``T⁻`` and image
negatives ``I⁻`` (each labelled with the plugin that made it, its *kind*), with cosine
similarity ``s``:

* image→caption, per caption-negative kind: **accuracy** = share of samples whose
  ``s(I, T⁺)`` is above every ``s(I, T⁻)`` of that kind; **pairwise** = share of (sample,
  negative) pairs with ``s(I, T⁺) > s(I, T⁻)``;
* caption→image, per image-negative kind: the same with ``s(T⁺, I)`` against ``s(T⁺, I⁻)``;
* in-batch R@1 over the held-out set, image→text and text→image.

Each kind also reports ``chance``: the accuracy of a model whose similarities are random, the
mean of ``1 / (k + 1)`` over its samples, ``k`` a sample's negatives of that kind (pairwise
chance is 0.5, R@1 chance ``1 / samples``); docs/metrics.md explains each metric.

Caption negatives that truncation to the text tower's context makes token-identical to their
positive are left out, as in training: no model can tell them apart.

``overall`` averages the per-kind accuracies (macro). Several models go side by side:
checkpoint paths (a file or run directory), ``untrained:MODEL`` (random init, seed 0) or
``pretrained:MODEL:TAG`` (open_clip weights, needs them available locally).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geoforge.errors import UsageError
from geoforge_train.data import (
    CorpusIndex,
    DataError,
    HardNegativeDataset,
    NegativeUse,
    Transform,
    UnreadableSample,
    collate,
)
from geoforge_train.models import (
    CheckpointError,
    create_model,
    load_checkpoint,
    preprocess_cfg,
    read_checkpoint,
    unknown_model,
)

MAX_NEGATIVES = 64


@dataclass
class Loaded:
    """A model to evaluate: its display ``name``, the module, tokenizer, image size and image
    preprocessing (open_clip's ``preprocess_cfg``: a checkpoint's own)."""

    name: str
    model: nn.Module
    tokenizer: object
    image_size: int
    preprocess: dict[str, object]


def load(spec: str, device: torch.device, model_name: str | None = None) -> Loaded:
    """A model from a checkpoint path, ``untrained:MODEL`` or ``pretrained:MODEL:TAG``.
    Raises CheckpointError or UsageError naming ``--checkpoint`` and the spec, and what was
    expected."""
    forms = "a run directory, a .pt file, untrained:MODEL or pretrained:MODEL:TAG"
    if spec.startswith("untrained:"):
        torch.manual_seed(0)
        name = spec.split(":", 1)[1]
        if not name:
            raise UsageError(f"--checkpoint {spec}: expected untrained:MODEL, MODEL an open_clip model name")
        model, tok, size = create_model(name, None, device, given=f"--checkpoint {spec}")
    elif spec.startswith("pretrained:"):
        parts = spec.split(":")
        if len(parts) != 3:
            raise UsageError(f"--checkpoint {spec}: expected pretrained:MODEL:TAG")
        model, tok, size = create_model(parts[1], parts[2], device, given=f"--checkpoint {spec}")
    elif not Path(spec).exists():
        raise UsageError(f"--checkpoint {spec}: no such file or directory; expected {forms}")
    else:
        state = read_checkpoint(spec)
        name = model_name or str(state.get("model_name"))
        hint = unknown_model(name)
        if hint is not None:
            raise CheckpointError(
                f"{spec}: checkpoint of model {name!r}, which open_clip does not know ({hint})"
            )
        model, tok, size = create_model(name, None, device)
        load_checkpoint(spec, model, name)
        model.eval()
        return Loaded(spec, model, tok, size, state.get("preprocess_cfg") or preprocess_cfg(model))
    model.eval()
    return Loaded(spec, model, tok, size, preprocess_cfg(model))


@torch.no_grad()
def evaluate(
    loaded: Loaded,
    data: str,
    device: torch.device,
    batch_size: int = 32,
    limit: int | None = None,
    per_sample: bool = False,
    warn: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Metrics of one model on the held-out corpus ``data`` (see the module docstring).

    Shards that cannot be indexed and samples that cannot be read are skipped: the result
    counts them (``skipped_shards``, the reasons; ``skipped_samples``) and ``warn`` gets one
    message for the shards (:meth:`CorpusIndex.skipped_warnings`) and one for the samples; by
    default each is a ``warning:`` line on stderr, once per process however many models are
    evaluated. ``samples`` is the number evaluated. Raises DataError if none can be read.

    With ``per_sample`` the result also holds ``per_sample``: one record per sample, in corpus
    order, with its ``key`` and, per direction and kind, ``[s(positive), [s(negative), ...]]``
    (cosines), from which every metric above can be recomputed on any subset (a bootstrap).
    Its ``image_to_caption_other_image`` scores the same captions against the image of the
    next sample (cyclically): accuracy that survives the wrong image is a text-only prior,
    not a reading of the figure (the blind control of experiments/ablation.py).
    """
    say = warn or _warn_once
    index = CorpusIndex.build(data, warn=False)
    for message in index.skipped_warnings():
        say(message)
    use = NegativeUse(("caption", "retrieval"), MAX_NEGATIVES, MAX_NEGATIVES)
    dataset = HardNegativeDataset(
        index,
        loaded.tokenizer,
        Transform.from_cfg(loaded.preprocess),
        use,
    )
    n = min(len(dataset), limit or len(dataset))
    records: list[dict[str, object]] = []
    caption_negatives: list[tuple[int, torch.Tensor, list[str]]] = []  # for the other image
    images, texts = [], []
    unreadable: list[str] = []
    for lo in range(0, n, batch_size):
        items = []
        for i in range(lo, min(n, lo + batch_size)):
            try:
                items.append(dataset[i])
            except UnreadableSample as e:
                unreadable.append(str(e))
        if not items:
            continue
        batch = collate(items)
        img = _encode_images(loaded.model, batch["image"], device)
        txt = _encode_texts(loaded.model, batch["text"], device)
        images.append(img)
        texts.append(txt)
        for b in range(len(img)):
            record: dict[str, object] = {"key": batch["key"][b]}
            pos = float(img[b] @ txt[b])
            t_mask = batch["neg_text_mask"][b]
            if t_mask.any():
                feats = _encode_texts(loaded.model, batch["neg_text"][b][t_mask], device)
                kinds = [k for k, keep in zip(batch["neg_text_kind"][b], t_mask) if keep]
                record["image_to_caption"] = _by_kind(kinds, pos, (feats @ img[b]).tolist())
                if per_sample:
                    caption_negatives.append((len(records), feats, kinds))
            i_mask = batch["neg_image_mask"][b]
            if i_mask.any():
                negs = _encode_images(loaded.model, batch["neg_image"][b][i_mask], device) @ txt[b]
                kinds = [k for k, keep in zip(batch["neg_image_kind"][b], i_mask) if keep]
                record["caption_to_image"] = _by_kind(kinds, float(txt[b] @ img[b]), negs.tolist())
            records.append(record)
    if not records:
        raise DataError(f"{data}: none of the {n} samples evaluated can be read; the first: {unreadable[0]}")
    if unreadable:
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        say(f"skipped {len(unreadable)} of {n} samples, unreadable: {unreadable[0]}{more}")
    all_i, all_t = torch.cat(images), torch.cat(texts)
    sims = all_i @ all_t.T
    target = torch.arange(len(sims))
    result = {
        "model": loaded.name,
        "samples": len(records),
        "skipped_samples": len(unreadable),
        "skipped_shards": index.skipped,
        "image_to_caption": _summary(records, "image_to_caption"),
        "caption_to_image": _summary(records, "caption_to_image"),
        "r1_image_to_text": float((sims.argmax(dim=1) == target).float().mean()),
        "r1_text_to_image": float((sims.argmax(dim=0) == target).float().mean()),
    }
    if per_sample:
        other = torch.roll(all_i, shifts=-1, dims=0)  # sample i is shown the image of i + 1
        for i, feats, kinds in caption_negatives:
            records[i]["image_to_caption_other_image"] = _by_kind(
                kinds, float(other[i] @ all_t[i]), (feats @ other[i]).tolist()
            )
        result["per_sample"] = records
    return result


_WARNED: set[str] = set()  # what _warn_once said in this process


def _warn_once(message: str) -> None:
    """``warning: message`` on stderr, unless this process said it already (``eval mmclip``
    evaluates several models on one corpus: its damage is said once)."""
    if message not in _WARNED:
        _WARNED.add(message)
        sys.stderr.write(f"warning: {message}\n")


def _encode_images(model: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return model.encode_image(x.to(device), normalize=True).float().cpu()


def _encode_texts(model: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return model.encode_text(x.to(device), normalize=True).float().cpu()


def _by_kind(kinds: list[str], pos: float, negs: list[float]) -> dict[str, tuple[float, list[float]]]:
    """One sample's scores by negative kind: ``{kind: (s(positive), [s(negative), ...])}``."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for kind, s in zip(kinds, negs):
        grouped[kind].append(s)
    return {kind: (pos, values) for kind, values in grouped.items()}


def _summary(records: list[dict[str, object]], direction: str) -> dict[str, object]:
    """Per-kind accuracy, pairwise accuracy and chance of one direction over ``records``."""
    store: dict[str, list[tuple[float, list[float]]]] = defaultdict(list)
    for record in records:
        for kind, row in record.get(direction, {}).items():  # type: ignore[attr-defined]
            store[kind].append(row)
    kinds = {}
    for kind, rows in sorted(store.items()):
        acc = np.mean([pos > max(negs) for pos, negs in rows])
        pair = np.mean([pos > s for pos, negs in rows for s in negs])
        chance = np.mean([1 / (len(negs) + 1) for _, negs in rows])
        kinds[kind] = {
            "accuracy": float(acc),
            "pairwise": float(pair),
            "chance": float(chance),
            "samples": len(rows),
        }
    overall = float(np.mean([k["accuracy"] for k in kinds.values()])) if kinds else None
    return {"kinds": kinds, "overall": overall}


def table(results: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    """A rich table with one column per model and one row per metric and kind (percent)."""
    from rich.table import Table

    t = Table(title="hard-negative evaluation (%)")
    t.add_column("metric")
    for r in results:
        t.add_column(str(r["model"]), justify="right")
    rows: list[tuple[str, list[str]]] = []
    arrows = {"image_to_caption": "image→caption", "caption_to_image": "caption→image"}
    for direction in arrows:
        kinds = sorted({k for r in results for k in r[direction]["kinds"]})  # type: ignore[index]
        for kind in kinds:
            cells = []
            for r in results:
                k = r[direction]["kinds"].get(kind)  # type: ignore[index]
                cells.append(f"{100 * k['accuracy']:.1f} ({100 * k['pairwise']:.1f})" if k else "–")
            rows.append((f"{arrows[direction]} {kind} acc (pairwise)", cells))
        rows.append((f"{arrows[direction]} overall", [_percent(r[direction]["overall"]) for r in results]))  # type: ignore[index]
    rows.append(("in-batch R@1 image→text", [f"{100 * r['r1_image_to_text']:.1f}" for r in results]))  # type: ignore[operator]
    rows.append(("in-batch R@1 text→image", [f"{100 * r['r1_text_to_image']:.1f}" for r in results]))  # type: ignore[operator]
    for name, cells in rows:
        t.add_row(name, *cells)
    return t


def _percent(share: object) -> str:
    """A share as a percentage with one decimal; ``–`` for a direction without negatives (its
    ``overall`` is ``None``: no sample to average over)."""
    return "–" if share is None else f"{100 * float(share):.1f}"  # type: ignore[arg-type]


__all__ = ["CheckpointError", "evaluate", "load", "table"]
