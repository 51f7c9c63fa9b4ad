"""What a corpus costs per core, end to end: CPU-seconds per sample of a whole ``geoforge
generate`` run with hard negatives, this tree against a git revision, side by side.

``negatives_speed.py`` times the making of positives and negatives inside one process, with
the 50 timed positives as the retrieval pool unless ``--pool`` says otherwise. This script
times the product instead: ``python -m geoforge.cli generate RECIPE --n N --workers 1
--image-negatives K --caption-negatives M --retrieval-negatives R --json`` in a subprocess,
counting the CPU-seconds of the run and of every process it starts (``getrusage
(RUSAGE_CHILDREN)`` before and after): start-up and imports, the driver, the worker, the
retrieval pool of each shard, the shards' members and the manifest. The default ``--n 1000``
is one full shard of ``corpora/mmgeo-4k.toml``, so the retrieval pool is the 1,000 captions a
run at the recipe's size draws its negatives from.

Each round runs both trees, this one (A) then ``--baseline REV`` (B), each with its own
``geoforge``, plugins and trainer on ``PYTHONPATH`` (``side_by_side.py``: the worker checks
where its modules came from); the figure compared is samples per CPU-second. At the defaults
one round takes about 70 s for this tree and 4 minutes for 3777529 (2-core VM).

    .venv/bin/python benchmarks/generate_cost.py --baseline 3777529 [--rounds 2] [-n 1000]
        [-k 10] [-m 10] [-r 10] [--seed 7] [--recipe corpora/mmgeo-4k.toml] [--json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import side_by_side
from wall_timers import add_negative_counts, at_least

ROOT = Path(__file__).resolve().parents[1]


def _cpu_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def worker(args: argparse.Namespace) -> dict[str, object]:
    """One ``geoforge generate`` run of the tree on ``sys.path`` (the subprocess inherits it), in
    a temporary directory removed afterwards; its CPU-seconds, wall seconds and rates, and
    this process's module files for :func:`side_by_side.run_worker`'s check."""
    tmp = Path(tempfile.mkdtemp(prefix="geoforge-cost-"))
    try:
        cmd = [
            sys.executable, "-m", "geoforge.cli", "generate", args.recipe, "--out", str(tmp / "corpus"),
            "--n", str(args.n), "--seed", str(args.seed), "--workers", "1",
            "--image-negatives", str(args.k), "--caption-negatives", str(args.m),
            "--retrieval-negatives", str(args.r), "--json",
        ]  # fmt: skip
        cpu, start = _cpu_children(), time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - start, _cpu_children() - cpu
        if done.returncode != 0:
            raise SystemExit(f"generate failed ({done.returncode}): {done.stderr[-2000:]}")
        made = int(json.loads(done.stdout)["run"]["samples_made"])
        if made < 1:
            raise SystemExit(f"generate made no sample: {done.stderr[-2000:]}")
        size = sum(p.stat().st_size for p in (tmp / "corpus").rglob("*") if p.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for module in side_by_side.CHECKED:  # for the module check: this process has the run's sys.path
        importlib.import_module(module)

    return {
        "samples": made,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "samples_per_cpu_s": round(made / cpu, 3),
        "cpu_ms_per_sample": round(1000 * cpu / made, 1),
        "corpus_mb": round(size / 1e6, 2),
        "modules": side_by_side.module_files(),
    }


def _row(tree: str, k: int, result: dict[str, object]) -> None:
    print(
        f"round {k + 1} {tree}: {result['samples_per_cpu_s']:>7} samples per CPU-second "
        f"({result['cpu_ms_per_sample']} CPU-ms a sample; {result['samples']} samples, "
        f"{result['wall_s']} s wall, {result['corpus_mb']} MB)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=side_by_side.summary_line(__doc__))
    add_negative_counts(parser, 1000)
    parser.add_argument(
        "--recipe", default="corpora/mmgeo-4k.toml", help="recipe TOML (relative: to each tree)"
    )
    parser.add_argument("--seed", type=at_least(0), default=7, help="corpus seed")
    parser.add_argument("--baseline", metavar="REV", help="also run git revision REV, side by side")
    parser.add_argument("--rounds", type=at_least(1), default=2, help="interleaved rounds with --baseline")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    side_by_side.require_recipe(parser, args.recipe)
    passed = ["-n", str(args.n), "-k", str(args.k), "-m", str(args.m), "-r", str(args.r)]
    passed += ["--recipe", args.recipe, "--seed", str(args.seed)]
    script = Path(__file__).resolve()
    if args.baseline is None:
        report: dict[str, object] = {"A": side_by_side.run_worker(script, ROOT, passed)}
        if not args.json:
            _row("A", 0, report["A"])  # type: ignore[arg-type]
    else:
        show = (lambda *a: None) if args.json else _row
        report = side_by_side.compare(script, passed, args.baseline, args.rounds, "samples_per_cpu_s", show)
        if not args.json:
            print(side_by_side.summary(report))
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
