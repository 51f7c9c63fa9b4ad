"""Training-data throughput on the CPU: decoded training samples per second per DataLoader worker.

The samples are read exactly as ``geoforge train mmclip`` reads them: the trainer's own dataset,
batch sampler and DataLoader (:func:`geoforge_train.loader.training_dataset` and
:func:`geoforge_train.loader.training_loader`, which :func:`geoforge_train.train.train` calls),
at the model's input size (``ViT-B-16``: 224 px; ``geoforge-tiny``: 160 px), with ``--k-image``
image and ``--k-text`` caption negatives per sample (default 10 + 10, the paper's setting), from
a corpus stored at 448 px (``corpora/mmgeo-4k.toml``; made here with ``--n`` samples unless
``--data`` names one). The items are what a CUDA run's workers make (uint8 images, normalised
later on the GPU; a tree before that change: float32, normalised in the workers). No model
step runs: the figure is what the loader can feed.

For each path (``decoded``: PNGs decoded and resized by the workers; ``cache``: the pre-decoded
uint8 cache of ``geoforge corpus cache``, built here first) it reports

* ``in_process``: samples/s of the dataset and collate in this process (one core, no worker),
  the cost per sample a worker pays;
* ``workers_N``: samples/s through the DataLoader with N worker processes (``--workers``,
  default 1 and 2), after a warm-up of ``--warmup`` batches, and per worker;

and whether ``--host-workers`` workers (default 16, an H200 host) at the measured per-worker
rate feed ``--need`` samples/s (default 193, ViT-B-16 with 10 + 10 negatives on one H200,
issue 15). ``--baseline REV`` also measures the decoded path of git revision REV (a temporary
``git worktree``) in a child process, in turn with this tree's runs (one round each, ``--rounds``
times, so that a changing load affects both alike), and prints the ratios of the in-process
rates.

    .venv/bin/python benchmarks/loader_speed.py [--data DIR] [--model ViT-B-16] [--baseline REV] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TREE = Path(os.environ.get("LOADER_SPEED_TREE", ROOT))  # the tree whose trainer is measured
sys.path[:0] = [str(TREE), str(TREE / "trainer"), str(TREE / "plugins")]


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="corpus to read (default: make --n samples of --recipe)")
    parser.add_argument("--recipe", default=str(ROOT / "corpora" / "mmgeo-4k.toml"))
    parser.add_argument("--n", type=int, default=64, help="samples to make without --data (64)")
    parser.add_argument("--model", default="ViT-B-16", help="open_clip model: its input size (ViT-B-16)")
    parser.add_argument("--k-image", type=int, default=10, help="image negatives per sample (10)")
    parser.add_argument("--k-text", type=int, default=10, help="caption negatives per sample (10)")
    parser.add_argument("--batch", type=int, default=16, help="samples per batch (16)")
    parser.add_argument("--batches", type=int, default=12, help="timed batches per run (12)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first (2)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (1 2)")
    parser.add_argument("--rounds", type=int, default=3, help="repeats of each run; the median counts (3)")
    parser.add_argument("--paths", nargs="+", default=["decoded", "cache"], choices=["decoded", "cache"])
    parser.add_argument("--host-workers", type=int, default=16, help="workers of the GPU host (16)")
    parser.add_argument("--need", type=float, default=193.0, help="samples/s to feed (193)")
    parser.add_argument("--baseline", help="git revision measured side by side (decoded path)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # JSON settings of a baseline child
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- measuring one tree


def _config(args: argparse.Namespace, data: str, cache: str | None, workers: int) -> Any:
    from geoforge_train.train import TrainConfig

    extra = {"data_cache": cache} if cache else {}
    return TrainConfig(
        data=data,
        out=tempfile.mkdtemp(prefix="loader-speed-"),
        model=args.model,
        batch_size=args.batch,
        text_negatives=("caption",) if args.k_text else (),
        k_text=args.k_text,
        k_image=args.k_image,
        workers=workers,
        **extra,
    )


def _model(name: str) -> tuple[Any, dict[str, Any]]:
    import torch
    from geoforge_train.models import create_model, preprocess_cfg

    model, tokenizer, _ = create_model(name, None, torch.device("cpu"))
    return tokenizer, preprocess_cfg(model)


def _pieces(config: Any, tokenizer: Any, preprocess: dict[str, Any], batches: int) -> tuple[Any, Any, Any]:
    """The trainer's dataset, batch sampler and DataLoader for ``batches`` batches; a tree
    before geoforge_train.loader existed builds them as its train() did."""
    from geoforge_train.train import Dist, StepBatches

    try:  # (an editable install may find a module of another tree: check where it is)
        from geoforge_train import loader

        if not Path(loader.__file__).resolve().is_relative_to(TREE.resolve()):
            raise ImportError(loader.__file__)
    except ImportError:  # the baseline tree: train()'s own lines of that revision
        import torch
        from geoforge_train.data import CorpusIndex, HardNegativeDataset, NegativeUse, Transform, collate

        index = CorpusIndex.build(config.data)
        use = NegativeUse(config.text_negatives, config.k_text, config.k_image)
        transform = Transform.from_cfg(preprocess, True, config.rotate, config.downscale)
        dataset = HardNegativeDataset(index, tokenizer, transform, use, config.seed, require_each=True)

        def training_loader(dataset, sampler, workers, device):  # type: ignore[no-untyped-def]
            return torch.utils.data.DataLoader(
                dataset,
                batch_sampler=sampler,
                collate_fn=collate,
                num_workers=workers,
                pin_memory=device.type == "cuda",
                persistent_workers=workers > 0,
            )
    else:
        training_loader = loader.training_loader
        dataset = loader.training_dataset(config, tokenizer, preprocess, uint8=True)  # as for CUDA
    import torch

    spe = len(dataset) // config.batch_size
    sampler = StepBatches(len(dataset), config.seed, Dist(), config.batch_size, 1, spe, 0, batches)
    return dataset, sampler, training_loader(dataset, sampler, config.workers, torch.device("cpu"))


def _time_run(args: argparse.Namespace, data: str, cache: str | None, workers: int, tp: Any) -> float:
    """Samples/s of one run: ``workers`` 0 iterates dataset + collate in this process."""
    tokenizer, preprocess = tp
    total = args.warmup + args.batches
    config = _config(args, data, cache, workers)
    _, _, loader = _pieces(config, tokenizer, preprocess, total)
    batches = iter(loader)
    for _ in range(args.warmup):
        next(batches)
    t0 = time.perf_counter()
    for _ in range(args.batches):
        batch = next(batches)
    seconds = time.perf_counter() - t0
    assert batch["neg_image"].shape[1] == args.k_image  # the negatives were read
    del batches, loader
    return args.batches * args.batch / seconds


def measure(args: argparse.Namespace, data: str, cache: str | None) -> dict[str, float]:
    """One round of one path of this tree: samples/s in process and with each worker count."""
    import torch

    torch.set_num_threads(1)  # as in a DataLoader worker
    tp = _model(args.model)
    return {f"workers_{w}": _time_run(args, data, cache, w, tp) for w in [0, *args.workers]}


def summary(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """Medians over rounds: ``in_process`` samples/s, and per worker count samples/s and per
    worker; ``runs``: every round's figures."""
    runs = {key: [r[key] for r in rounds] for key in rounds[0]}
    out: dict[str, Any] = {"in_process": round(statistics.median(runs["workers_0"]), 1)}
    for name, rates in runs.items():
        workers = int(name.split("_")[1])
        if workers:
            rate = statistics.median(rates)
            out[name] = {"samples_per_s": round(rate, 1), "per_worker": round(rate / workers, 1)}
    out["runs"] = {k: [round(r, 1) for r in v] for k, v in runs.items()}
    return out


# --------------------------------------------------------------------------- the run


def _corpus(args: argparse.Namespace, root: Path) -> str:
    if args.data:
        return args.data
    from geoforge.generate import generate_corpus
    from geoforge.negatives import NegativeConfig
    from geoforge.sampler import load_recipe

    out = root / "corpus"
    config = NegativeConfig(image=args.k_image, caption=args.k_text)
    generate_corpus(load_recipe(args.recipe), out, n=args.n, seed=0, negatives=config, workers=2)
    return str(out)


def _cache(data: str, size: int, root: Path) -> str:
    from geoforge_train.cache import build_cache

    out = root / f"cache-{size}"
    build_cache(data, out, size)
    return str(out)


def _baseline(args: argparse.Namespace, rev: str, data: str, root: Path) -> dict[str, Any]:
    tree = root / "baseline"
    if not tree.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
            check=True,
            capture_output=True,
        )
    settings = {k: v for k, v in vars(args).items() if k not in ("baseline", "child", "json")}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(settings | {"data": data})]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=os.environ | {"LOADER_SPEED_TREE": str(tree)}
    )
    if done.returncode:
        raise RuntimeError(f"baseline {rev} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.child:
        child = argparse.Namespace(**json.loads(args.child))
        print(json.dumps(measure(child, child.data, None)))  # one round
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loader-speed-") as tmp:
        root = Path(tmp)
        data = _corpus(args, root)
        _, preprocess = _model(args.model)
        size = int(preprocess["size"][0])
        result: dict[str, Any] = {
            "model": args.model,
            "input_px": size,
            "k_image": args.k_image,
            "k_text": args.k_text,
            "batch": args.batch,
            "load_before": os.getloadavg()[0],
            "cpu_count": os.cpu_count(),
        }
        caches = {p: _cache(data, size, root) if p == "cache" else None for p in args.paths}
        rounds: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.rounds):  # the trees and paths in turn, so that load drifts alike
            if args.baseline:
                rounds.setdefault("baseline", []).append(_baseline(args, args.baseline, data, root))
            for path, cache in caches.items():
                rounds.setdefault(path, []).append(measure(args, data, cache))
        for path, runs in rounds.items():
            result[path] = summary(runs)
        if args.baseline:
            result["baseline"]["revision"] = args.baseline
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(root / "baseline")],
                capture_output=True,
            )
    for path in ("baseline", *args.paths):
        part = result.get(path)
        if not part:
            continue
        best = max(v["per_worker"] for k, v in part.items() if k.startswith("workers_"))
        host = best * args.host_workers
        part["host_prediction"] = {
            "per_worker": best,
            "workers": args.host_workers,
            "samples_per_s": round(host, 1),
            "need": args.need,
            "feeds": host >= args.need,
        }
    if args.baseline:
        base = result["baseline"]["in_process"]
        result["speedup_in_process"] = {p: round(result[p]["in_process"] / base, 2) for p in args.paths}
    result["load_after"] = os.getloadavg()[0]
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
