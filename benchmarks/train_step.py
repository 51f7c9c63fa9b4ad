"""Training-step speed: geoforge's MMCLIP step with no negatives against open_clip's own step.

Both steps run on the same tiny model (``geoforge-tiny``, two identical copies, each with its
own AdamW built with the trainer's parameter groups and hyper-parameters) and the same
synthetic batch: B images (B, 3, 160, 160) and B random token sequences (start token, random
ids, end token, zero padding), B = 32 by default.

* ``ours``: :func:`geoforge_train.train._step`, exactly as the trainer calls it: zero_grad →
  ``encode`` (positives concatenated with the batch's valid negatives, here none) →
  :class:`~geoforge_train.loss.HardNegativeClipLoss` → backward → AdamW step → logit-scale
  clamp. The batch is the dict :func:`geoforge_train.data.collate` makes, with K = L = 0.
* ``open_clip``: what ``open_clip_train/train.py`` does per step with ``accum_freq`` 1:
  zero_grad → ``model(images, texts)`` → ``open_clip.ClipLoss`` (``cache_labels=True``, as
  ``create_loss`` builds it) → backward → the same AdamW step → logit-scale clamp.

Neither side includes data loading or the LR schedule. After warm-up, each round times
``--steps`` consecutive steps of one side then the other (the order alternates per round);
the reported figure is the median over ``--rounds`` rounds of the mean step time (and, less
sensitive to load that drifts, the median of the per-round ratios). Then the
parts our step adds are timed alone (``encode``'s concatenation and mask indexing, building
:class:`Negatives`, our loss against ``ClipLoss``), and ``collate`` of B items is timed for
reference (open_clip's DataLoader stacks its batch in the same way). Load from other processes
shifts both sides alike; compare ``uptime`` before and after. One torch thread by default:
on CPUs shared with other work, several OpenMP threads wait on each other and the step time
swings several-fold.

    .venv/bin/python benchmarks/train_step.py [-b 32] [--rounds 9] [--steps 3] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import geoforge_train  # noqa: F401  (registers geoforge-tiny)
import open_clip
import torch
from geoforge_train.data import collate
from geoforge_train.loss import HardNegativeClipLoss
from geoforge_train.models import create_model
from geoforge_train.train import _negatives, _param_groups, _step, encode
from torch import Tensor, nn

#: A collated batch, as :func:`geoforge_train.data.collate` returns it.
Batch = dict[str, Any]
#: open_clip's BPE start/end-of-text ids (open_clip.tokenizer.SimpleTokenizer).
SOT, EOT = 49406, 49407


def tokens(g: torch.Generator, n: int, ctx: int, vocab: int) -> Tensor:
    """(n, ctx) int64 token ids as open_clip's tokenizer lays them out: start token, 5 to
    ctx − 2 random ids, end token (the highest id, where the text tower pools), zeros."""
    lengths = torch.randint(5, ctx - 1, (n, 1), generator=g)
    pos = torch.arange(ctx)[None, :]
    out = torch.randint(1, min(vocab, SOT), (n, ctx), generator=g)
    out = torch.where(pos <= lengths, out, torch.zeros((), dtype=torch.long))
    out[:, 0] = SOT
    out.scatter_(1, lengths + 1, EOT)
    return out


def synthetic_items(
    b: int, k: int, l: int, size: int, ctx: int, vocab: int = 49408, seed: int = 0
) -> list[dict[str, object]]:
    """``b`` dataset items shaped as :class:`geoforge_train.data.HardNegativeDataset` makes
    them, with ``k`` caption and ``l`` image negatives each, all valid and all distinct."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(b):
        items.append(
            {
                "image": torch.randn((3, size, size), generator=g),
                "text": tokens(g, 1, ctx, vocab)[0],
                "text_id": 1_000_000 + i,
                "key": f"{i:06d}",
                "neg_text": tokens(g, k, ctx, vocab),
                "neg_text_mask": torch.ones(k, dtype=torch.bool),
                "neg_text_id": torch.arange(k, dtype=torch.long) + 2_000_000 + 100 * i,
                "neg_text_kind": ["synthetic"] * k,
                "neg_image": torch.randn((l, 3, size, size), generator=g),
                "neg_image_mask": torch.ones(l, dtype=torch.bool),
                "neg_image_id": torch.arange(l, dtype=torch.long) + 3_000_000 + 100 * i,
                "neg_image_kind": ["synthetic"] * l,
            }
        )
    return items


def synthetic_batch(b: int, k: int, l: int, size: int, ctx: int, vocab: int = 49408, seed: int = 0) -> Batch:
    """A collated batch of :func:`synthetic_items` (the dict the trainer's ``_step`` takes)."""
    return collate(synthetic_items(b, k, l, size, ctx, vocab, seed))


def optimizer_for(model: nn.Module) -> torch.optim.Optimizer:
    """AdamW with the trainer's parameter groups and defaults (open_clip's settings)."""
    return torch.optim.AdamW(_param_groups(model, 0.1), lr=5e-4, betas=(0.9, 0.98), eps=1e-6)


def ours_step(
    model: nn.Module, opt: torch.optim.Optimizer, batch: Batch, device: torch.device
) -> Callable[[], Tensor]:
    """The trainer's step, with its (disabled on CPU) autocast and accum = 1."""
    loss_fn = HardNegativeClipLoss("mmclip")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    return lambda: _step(model, [batch], loss_fn, opt, device, autocast, 1)


def open_clip_step(
    model: nn.Module, opt: torch.optim.Optimizer, batch: Batch, device: torch.device
) -> Callable[[], Tensor]:
    """open_clip_train's per-step path (accum_freq 1, no scaler, no grad clipping)."""
    loss_fn = open_clip.ClipLoss(cache_labels=True)
    images, texts = batch["image"], batch["text"]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    def step() -> Tensor:
        x, t = images.to(device, non_blocking=True), texts.to(device, non_blocking=True)
        opt.zero_grad()
        with autocast:
            image_features, text_features, logit_scale = model(x, t)[:3]
            loss = loss_fn(image_features, text_features, logit_scale)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))  # type: ignore[operator]
        return loss.detach()

    return step


def timeit(fn: Callable[[], object], n: int) -> float:
    """Mean seconds per call over ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def median_of(fn: Callable[[], object], n: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean seconds per call over ``n`` calls."""
    return statistics.median(timeit(fn, n) for _ in range(rounds))


def breakdown(model: nn.Module, batch: Batch, device: torch.device, rounds: int) -> dict[str, float]:
    """Milliseconds of the pieces our step adds or replaces, each timed alone (forward only,
    no gradient): ``encode`` without its model call; ``encode`` and ``model(...)`` whole;
    building :class:`Negatives`; our loss and ``ClipLoss`` on the same features."""
    b = batch["image"].shape[0]
    mask_t, mask_i = batch["neg_text_mask"], batch["neg_image_mask"]

    def encode_extra() -> None:  # encode's tensor work around the model call
        images, texts = batch["image"].to(device), batch["text"].to(device)
        torch.cat([images, batch["neg_image"].to(device)[mask_i.to(device)]])
        torch.cat([texts, batch["neg_text"].to(device)[mask_t.to(device)]])

    with torch.no_grad():
        feats = encode(model, batch, device)
        ours, theirs = HardNegativeClipLoss("mmclip"), open_clip.ClipLoss(cache_labels=True)
        n = 20
        out = {
            "encode_extra_ms": median_of(encode_extra, 50, rounds),
            "encode_ms": median_of(lambda: encode(model, batch, device), 1, rounds),
            "model_call_ms": median_of(lambda: model(batch["image"], batch["text"]), 1, rounds),
            "negatives_ms": median_of(lambda: _negatives(batch, feats, device), 200, rounds),
            "our_loss_ms": median_of(
                lambda: ours(feats.image, feats.text, feats.scale, _negatives(batch, feats, device)),
                n,
                rounds,
            ),
            "clip_loss_ms": median_of(lambda: theirs(feats.image, feats.text, feats.scale), n, rounds),
        }
    items = synthetic_items(b, 0, 0, batch["image"].shape[-1], batch["text"].shape[1])
    out["collate_ms"] = median_of(lambda: collate(items), 5, rounds)
    return {k: round(v * 1e3, 3) for k, v in out.items()}


def run(b: int, rounds: int, steps: int, warmup: int, device: torch.device) -> dict[str, object]:
    """Time both steps interleaved; returns medians (ms), the ratio and the breakdown."""
    torch.manual_seed(0)
    model, _, size = create_model("geoforge-tiny", None, device)
    ctx = int(model.context_length)  # type: ignore[arg-type]
    vocab = int(model.vocab_size)  # type: ignore[arg-type]
    twin = copy.deepcopy(model)
    batch = synthetic_batch(b, 0, 0, size, ctx, vocab)
    sides = {
        "ours": ours_step(model, optimizer_for(model), batch, device),
        "open_clip": open_clip_step(twin, optimizer_for(twin), batch, device),
    }
    for fn in sides.values():
        timeit(fn, warmup)
    times: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            times[name].append(timeit(sides[name], steps))
    med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    return {
        "batch": b,
        "image_size": size,
        "context_length": ctx,
        "rounds": rounds,
        "steps_per_round": steps,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "ours_ms": round(med["ours"], 2),
        "open_clip_ms": round(med["open_clip"], 2),
        "ratio": round(med["ours"] / med["open_clip"], 4),
        "ratio_paired_median": round(
            statistics.median(a / b for a, b in zip(times["ours"], times["open_clip"])), 4
        ),
        "ours_rounds_ms": [round(t * 1e3, 2) for t in times["ours"]],
        "open_clip_rounds_ms": [round(t * 1e3, 2) for t in times["open_clip"]],
        "breakdown_ms": breakdown(model, batch, device, max(3, rounds // 2)),
        "load_average": list(os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-b", "--batch", type=int, default=32, help="positives per step (default 32)")
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds, at least 7 (default 9)")
    parser.add_argument("--steps", type=int, default=3, help="steps per side per round (default 3)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up steps per side (default 3)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads; 0 keeps torch's default (default 1)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    if args.rounds < 7:
        parser.error("--rounds must be at least 7")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = list(os.getloadavg())
    result = run(args.batch, args.rounds, args.steps, args.warmup, torch.device(args.device))
    result["load_average_before"] = load_before
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"geoforge-tiny, B={result['batch']}, {result['image_size']} px, {result['threads']} threads, "
        f"{result['rounds']} rounds x {result['steps_per_round']} steps; load {load_before[0]:.1f} -> "
        f"{result['load_average'][0]:.1f}"  # type: ignore[index]
    )
    print(f"{'step':<34}{'median ms':>12}")
    print(f"{'ours (_step, no negatives)':<34}{result['ours_ms']:>12.2f}")
    print(f"{'open_clip (model -> ClipLoss)':<34}{result['open_clip_ms']:>12.2f}")
    print(f"{'ratio ours / open_clip':<34}{result['ratio']:>12.3f}   (goal <= 1.1)")
    print(f"{'  median of per-round ratios':<34}{result['ratio_paired_median']:>12.3f}")
    print("pieces (forward only, no grad):")
    for key, value in result["breakdown_ms"].items():  # type: ignore[union-attr]
        print(f"  {key:<32}{value:>12.3f}")


if __name__ == "__main__":
    main()
