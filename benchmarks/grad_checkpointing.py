"""Memory per positive of the MMCLIP training step, with and without gradient checkpointing.

The trainer's step (:func:`geoforge_train.train._step`: ``encode`` → hard-negative loss →
backward → optimizer, as ``train mmclip`` runs it) on open_clip ``ViT-B-16`` (random init,
nothing downloaded) with ``--negatives`` image and caption negatives per positive (default
10 + 10, the paper's setting), on a synthetic batch (``gpu_h200.device_batch``), once plainly
and once with open_clip's ``set_grad_checkpointing()`` (``train mmclip --grad-checkpointing``).

What is counted: the peak of the bytes held by torch tensors during one step, over what was
held when the step began. The weights and the batch, which exist before, are not counted; the
activations kept for backward, the recomputed ones, temporaries and the new gradients are.
The optimizer is SGD with learning rate 0, whose in-place update allocates nothing, so the
peak is that of the forward and backward passes: AdamW's state (twice the weights) and its
update's temporaries depend neither on the batch nor on checkpointing.

On the CPU the peak is read from ``torch.profiler.profile(profile_memory=True)``: each
allocation event of torch's CPU allocator carries the allocator's running total
(``total_allocated``), and the peak is its maximum over the step less its value before the
first event. On CUDA (``--device cuda``) it is ``torch.cuda.max_memory_allocated()`` less
``torch.cuda.memory_allocated()`` at the start. Both count bytes of live tensors, not the
process's RSS (which the allocator's caching blurs), so the CPU figure predicts the GPU one.
A saved-tensors hook is not used: it would miss the recomputation's temporaries and the block
inputs that checkpointing keeps.

Each setting is measured at the two ``--batches`` (default 1 and 2 positives) after a warm-up
step; another, unprofiled step gives the step time (noisy on a shared CPU: compare the two
settings as a ratio and note the load). **GB per positive** is the slope between the two
batches: what each added positive, with its images and captions, costs. The intercept (the
gradients and other per-step constants) is reported apart, and ``gb_per_positive_at_120``
adds its share at the batch of 120 at which issue 15 measured 0.88 GB per positive on an H200
(bf16).

    .venv/bin/python benchmarks/grad_checkpointing.py [--model ViT-B-16] [--negatives 10] \\
        [--batches 1 2] [--precision bf16|fp32] [--device cpu|cuda] [--threads N] [--json]

``--precision bf16`` (default) is bf16 autocast, as the trainer runs on GPUs that support it.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from typing import Any

import geoforge_train  # noqa: F401  (registers geoforge-tiny)
import torch
from geoforge_train.loss import HardNegativeClipLoss
from geoforge_train.models import create_model
from geoforge_train.train import _step
from gpu_h200 import device_batch

GB = 1e9


def _events(nodes: list[Any]) -> Iterator[Any]:
    for node in nodes:
        yield node
        yield from _events(node.children)


def peak_bytes(step: Callable[[], object], device: torch.device) -> int:
    """Peak bytes of live tensors during ``step()`` over those live when it began (see the
    module docstring for how each device counts)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - start)
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    tree = prof.profiler.kineto_results.experimental_event_tree()  # type: ignore[union-attr]
    allocations = sorted(
        (e for e in _events(tree) if e.tag == _EventType.Allocation and e.extra_fields.device.type == "cpu"),
        key=lambda e: e.start_time_ns,
    )
    if not allocations:
        return 0
    first = allocations[0].extra_fields
    before = first.total_allocated - first.alloc_size
    return int(max(e.extra_fields.total_allocated for e in allocations) - before)


def one_step(args: argparse.Namespace, checkpointing: bool, b: int) -> tuple[int, float]:
    """``(peak bytes, seconds)`` of one step at batch ``b``, after a warm-up step. Run in a
    fresh process each (:func:`measure`): the profiler's allocation table outlives a profile,
    and entries left by an earlier one would skew a later one's running total."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model, _, size = create_model(args.model, None, device)
    model.set_grad_checkpointing(checkpointing)  # type: ignore[operator]
    batch = device_batch(b, args.negatives, size, int(model.context_length), int(model.vocab_size), device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    bf16 = args.precision == "bf16"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    step = functools.partial(
        _step, model, [batch], HardNegativeClipLoss("mmclip"), optimizer, device, autocast, 1
    )
    step()  # warm-up
    t0 = time.perf_counter()
    step()
    seconds = time.perf_counter() - t0
    return peak_bytes(step, device), seconds


def measure(args: argparse.Namespace) -> dict[str, object]:
    """Peak bytes per setting and batch (each in a fresh process), the slope per positive
    and the step times."""
    result: dict[str, object] = {
        "model": args.model,
        "device": args.device,
        "precision": args.precision,
        "negatives": args.negatives,
        "batches": args.batches,
        "threads": args.threads or torch.get_num_threads(),
    }
    spawn = multiprocessing.get_context("spawn")
    for checkpointing in (False, True):
        peaks, seconds = [], []
        for b in args.batches:
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                peak, took = pool.submit(one_step, args, checkpointing, b).result()
            peaks.append(peak)
            seconds.append(took)
            print(
                f"grad checkpointing {'on ' if checkpointing else 'off'} batch {b}: peak "
                f"{peak / GB:.3f} GB, step {took:.1f} s",
                file=sys.stderr,
            )
        lo, hi = args.batches
        slope = (peaks[1] - peaks[0]) / (hi - lo)
        intercept = peaks[0] - slope * lo
        result["on" if checkpointing else "off"] = {
            "peak_gb": [round(p / GB, 4) for p in peaks],
            "gb_per_positive": round(slope / GB, 4),
            "intercept_gb": round(intercept / GB, 4),
            "gb_per_positive_at_120": round((slope + intercept / 120) / GB, 4),
            "step_seconds": [round(s, 2) for s in seconds],
        }
    off: Any = result["off"]
    on: Any = result["on"]
    result["cut"] = round(off["gb_per_positive"] / on["gb_per_positive"], 2)
    result["cut_at_120"] = round(off["gb_per_positive_at_120"] / on["gb_per_positive_at_120"], 2)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-16", help="open_clip model (ViT-B-16)")
    parser.add_argument("--negatives", type=int, default=10, help="image and caption negatives each (10)")
    parser.add_argument("--batches", type=int, nargs=2, default=[1, 2], help="two batch sizes (1 2)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--device", default="cpu", help="cpu (profiler) or cuda (max_memory_allocated)")
    parser.add_argument("--threads", type=int, help="torch threads on the CPU (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    if args.batches[1] <= args.batches[0]:
        parser.error("--batches: the second must be larger than the first")
    result = measure(args)
    if args.json:
        print(json.dumps(result))
        return
    k = result["negatives"]
    print(f"{result['model']}, {k} + {k} negatives per positive, {result['precision']}:")
    for key, label in (("off", "without"), ("on", "with")):
        r: Any = result[key]
        print(
            f"  {label:>7} grad checkpointing: {r['gb_per_positive']:.3f} GB per positive "
            f"(+ {r['intercept_gb']:.3f} GB per step; {r['gb_per_positive_at_120']:.3f} GB per "
            f"positive at a batch of 120), steps {r['step_seconds']} s"
        )
    print(f"  cut: {result['cut']}x per positive, {result['cut_at_120']}x at a batch of 120")


if __name__ == "__main__":
    main()
