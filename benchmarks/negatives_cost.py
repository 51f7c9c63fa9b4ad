"""What hard negatives cost per training step: measured against a prediction from tower FLOPs.

One ``geoforge-tiny`` model and the trainer's step (:func:`geoforge_train.train._step`, AdamW,
``mmclip`` loss) on synthetic batches of B positives, each with K caption and L image
negatives (all valid, all distinct), for every K in ``--k`` and L in ``--l``. After a warm-up
of every setting, each round runs one step of every setting in turn (so load from other
processes drifts over all of them alike); the reported time is the median over rounds.

Prediction: every image (positive or negative) is one forward and backward of the visual
tower and every caption one of the text tower, so with ``F_v`` and ``F_t`` the forward FLOPs
of one image and one caption (counted with :class:`torch.utils.flop_counter.FlopCounterMode`,
attention through the math SDPA kernel so that it is counted too)::

    FLOPs(K, L) = B·(1 + L)·F_v + B·(1 + K)·F_t
    predicted(K, L) = measured(0, 0) · FLOPs(K, L) / FLOPs(0, 0)

(backward is about twice the forward for both towers, so it cancels in the ratio). The
parts of a step that do not grow with negatives, mostly the AdamW update over the 6.3 M-entry
token embedding, make the real cost grow more slowly; the ``fixed`` column separates them:
``fixed + (measured(0, 0) − fixed) · FLOPs ratio``, with ``fixed`` the measured time of
``optimizer.step()`` + ``zero_grad``. Finally a least-squares fit of the measured times,
``const + ms_per_image · images + ms_per_caption · captions``, gives the marginal cost of one
image and one caption and each tower's achieved FLOP rate.

    .venv/bin/python benchmarks/negatives_cost.py [-b 8] [--k 0 5 10] [--l 0 5 10] [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from itertools import product
from typing import Any

import torch
from geoforge_train.models import create_model
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from train_step import Batch, optimizer_for, ours_step, synthetic_batch, timeit


def tower_flops(model: nn.Module, batch: Batch) -> tuple[int, int]:
    """Forward FLOPs of one image through the visual tower and one caption through the text
    tower (attention included: the math SDPA kernel is forced while counting)."""
    out = []
    with torch.no_grad():
        for fn, x in ((model.encode_image, batch["image"][:1]), (model.encode_text, batch["text"][:1])):
            with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
                fn(x)  # type: ignore[operator]
            out.append(counter.get_total_flops())
    return out[0], out[1]


def fixed_cost(model: nn.Module, opt: torch.optim.Optimizer, step: Callable[[], object], n: int) -> float:
    """Seconds of ``opt.step()`` + ``opt.zero_grad()`` alone, with gradients in place."""
    step()
    grads = [p.grad.clone() if p.grad is not None else None for p in model.parameters()]

    def update() -> None:
        for p, g in zip(model.parameters(), grads):
            p.grad = g
        opt.step()
        opt.zero_grad(set_to_none=True)

    return statistics.median(timeit(update, 3) for _ in range(n))


def marginal_costs(rows: list[dict[str, Any]], f_v: int, f_t: int) -> dict[str, float]:
    """Least-squares fit ``measured_ms ≈ const + ms_per_image · images + ms_per_caption ·
    texts`` over all settings, and what it implies: each tower's training FLOP rate
    (3 × forward FLOPs per ms) and the cost of a caption relative to an image, measured and
    by FLOPs."""
    x = torch.tensor([[1.0, r["images"], r["texts"]] for r in rows], dtype=torch.float64)
    y = torch.tensor([[r["measured_ms"]] for r in rows], dtype=torch.float64)
    const, per_image, per_caption = torch.linalg.lstsq(x, y).solution.flatten().tolist()
    return {
        "const_ms": round(const, 1),
        "ms_per_image": round(per_image, 2),
        "ms_per_caption": round(per_caption, 2),
        "visual_gflop_per_s": round(3 * f_v / per_image / 1e6, 2),
        "text_gflop_per_s": round(3 * f_t / per_caption / 1e6, 2),
        "caption_over_image_measured": round(per_caption / per_image, 3),
        "caption_over_image_flops": round(f_t / f_v, 3),
    }


def run(b: int, ks: list[int], ls: list[int], rounds: int, device: torch.device) -> dict[str, object]:
    """Measure every (K, L); return per-setting medians, FLOPs and predictions."""
    torch.manual_seed(0)
    model, _, size = create_model("geoforge-tiny", None, device)
    ctx, vocab = int(model.context_length), int(model.vocab_size)  # type: ignore[arg-type]
    opt = optimizer_for(model)
    settings = list(product(ks, ls))
    if (0, 0) not in settings:
        settings.insert(0, (0, 0))
    steps = {kl: ours_step(model, opt, synthetic_batch(b, *kl, size, ctx, vocab), device) for kl in settings}
    f_v, f_t = tower_flops(model, synthetic_batch(1, 0, 0, size, ctx, vocab))
    for fn in steps.values():
        fn()
    times: dict[tuple[int, int], list[float]] = {kl: [] for kl in settings}
    for r in range(rounds):
        for kl in settings if r % 2 == 0 else settings[::-1]:
            times[kl].append(timeit(steps[kl], 1))
    fixed = fixed_cost(model, opt, steps[(0, 0)], max(3, rounds))
    base = statistics.median(times[(0, 0)])
    flops0 = b * (f_v + f_t)
    rows = []
    for k, l in settings:
        flops = b * ((1 + l) * f_v + (1 + k) * f_t)
        measured = statistics.median(times[(k, l)])
        predicted = base * flops / flops0
        predicted_fixed = fixed + (base - fixed) * flops / flops0
        rows.append(
            {
                "k_text": k,
                "l_image": l,
                "images": b * (1 + l),
                "texts": b * (1 + k),
                "gflops_forward": round(flops / 1e9, 3),
                "flops_ratio": round(flops / flops0, 3),
                "measured_ms": round(measured * 1e3, 1),
                "measured_ratio": round(measured / base, 3),
                "predicted_ms": round(predicted * 1e3, 1),
                "measured_over_predicted": round(measured / predicted, 3),
                "predicted_with_fixed_ms": round(predicted_fixed * 1e3, 1),
                "measured_over_predicted_with_fixed": round(measured / predicted_fixed, 3),
                "rounds_ms": [round(t * 1e3, 1) for t in times[(k, l)]],
            }
        )
    fit = marginal_costs(rows, f_v, f_t)
    return {
        "batch": b,
        "image_size": size,
        "context_length": ctx,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "visual_gflops_per_image": round(f_v / 1e9, 4),
        "text_gflops_per_caption": round(f_t / 1e9, 4),
        "fixed_ms": round(fixed * 1e3, 1),
        "fit": fit,
        "rows": rows,
        "load_average": list(os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-b", "--batch", type=int, default=8, help="positives per step (default 8)")
    parser.add_argument("--k", type=int, nargs="+", default=[0, 5, 10], help="caption negatives per sample")
    parser.add_argument("--l", type=int, nargs="+", default=[0, 5, 10], help="image negatives per sample")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads; 0 keeps torch's default (default 1)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = list(os.getloadavg())
    start = time.perf_counter()
    result = run(args.batch, args.k, args.l, args.rounds, torch.device(args.device))
    result["load_average_before"] = load_before
    result["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"geoforge-tiny, B={result['batch']}, {result['threads']} thread(s), {result['rounds']} rounds; "
        f"F_v={result['visual_gflops_per_image']} GFLOP/image, F_t={result['text_gflops_per_caption']} "
        f"GFLOP/caption; fixed (AdamW) {result['fixed_ms']} ms; load {load_before[0]:.1f} -> "
        f"{result['load_average'][0]:.1f}"  # type: ignore[index]
    )
    fit = result["fit"]
    print(
        f"fit: {fit['const_ms']} ms + {fit['ms_per_image']} ms/image + {fit['ms_per_caption']} ms/caption; "
        f"caption/image cost {fit['caption_over_image_measured']} measured, "
        f"{fit['caption_over_image_flops']} by FLOPs; {fit['visual_gflop_per_s']} (visual) and "
        f"{fit['text_gflop_per_s']} (text) GFLOP/s"
    )
    head = ("K", "L", "FLOPs x", "measured ms", "x", "predicted ms", "meas/pred", "pred+fixed", "meas/pred")
    print("{:>3}{:>4}{:>9}{:>13}{:>7}{:>14}{:>11}{:>12}{:>11}".format(*head))
    for r in result["rows"]:  # type: ignore[union-attr]
        print(
            f"{r['k_text']:>3}{r['l_image']:>4}{r['flops_ratio']:>9.2f}{r['measured_ms']:>13.1f}"
            f"{r['measured_ratio']:>7.2f}{r['predicted_ms']:>14.1f}{r['measured_over_predicted']:>11.3f}"
            f"{r['predicted_with_fixed_ms']:>12.1f}{r['measured_over_predicted_with_fixed']:>11.3f}"
        )


if __name__ == "__main__":
    main()
