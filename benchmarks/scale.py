"""How the cost of ``geoforge generate`` grows: throughput against workers, straggler wait,
and peak memory against corpus size (issue 14).

Three measurements, each a fresh ``geoforge generate`` run (a subprocess, or with ``idle`` this
process) on a recipe (default ``corpora/mmgeo-4k.toml``), printed as JSON lines with the load
average (``os.getloadavg``) before and after, since the machine may be shared:

``speed``
    samples/s at 1 and at W workers (default 2), the configurations interleaved and repeated
    (``--rounds``), from each run's manifest (``run.samples_made / run.seconds``: the whole
    run, pool start and end-of-run files included). Prints every round's ratio and the
    median ratio. On a shared machine the wall-clock ratio says as much about the other
    users as about geoforge, so each run's CPU seconds (driver and workers, from
    ``getrusage(RUSAGE_CHILDREN)``) are reported too: ``cpu_ms_per_sample`` at W workers over
    that at 1 is the work that parallelism adds, and ``W × cpu(1) / cpu(W)`` estimates the
    ratio that W idle cores would give (an upper estimate: it ignores the driver's own
    serial work).

``memory``
    peak resident memory of the run (the driver and all its child processes, sampled every
    0.1 s with psutil) at each corpus size of ``--sizes``, positives only unless negatives are
    asked: the driver's RSS, the RSS summed over the processes (which counts the pages forked
    workers share with the driver once per process) and the PSS summed (each shared page
    split between its sharers: the memory the run really holds); then the least-squares
    slope of the summed PSS in MiB per 1,000 samples, which is ~0 when generation streams.

``idle``
    the straggler wait of the local process pool: idle worker-seconds =
    ``workers × (last job end − first job start) − Σ job seconds``, measured by wrapping the
    pool's job functions (each job appends its start and end time to a file in its worker),
    per shard. ``--tree DIR`` measures another revision exported there
    (``git archive REV geoforge plugins trainer | tar -x -C DIR``), for a before/after.

``caches``
    one worker's memory growth explained: ``--n`` positives made in this process, with
    ``sys.getallocatedblocks()``, RSS and the entries of every bounded LRU cache of geoforge's
    modules at three checkpoints, then the blocks and RSS after ``cache_clear()``.

Examples (the figures in docs/scale.md)::

    .venv/bin/python benchmarks/scale.py speed --n 300 --rounds 3
    .venv/bin/python benchmarks/scale.py memory --sizes 1000 3000 10000
    .venv/bin/python benchmarks/scale.py idle --n 400 --shard-size 100 --negatives 10 10 10
    .venv/bin/python benchmarks/scale.py caches --n 3000
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


def _recipe(path: Path, shard_size: int | None, tmp: Path) -> Path:
    """``path``, or a copy of it with another ``shard_size``."""
    if shard_size is None:
        return path
    text = re.sub(r"(?m)^shard_size = .*$", f"shard_size = {shard_size}", path.read_text(encoding="utf-8"))
    copy = tmp / path.name
    copy.write_text(text, encoding="utf-8")
    return copy


def _command(recipe: Path, out: Path, n: int, workers: int, negatives: list[int]) -> list[str]:
    k, m, r = negatives
    return [
        sys.executable, "-m", "geoforge.cli", "generate", str(recipe), "--out", str(out), "--n", str(n),
        "--workers", str(workers), "--image-negatives", str(k), "--caption-negatives", str(m),
        "--retrieval-negatives", str(r), "--json",
    ]  # fmt: skip


def _run(cmd: list[str], sample_rss: bool = False) -> tuple[dict[str, Any], dict[str, float]]:
    """Run ``geoforge generate … --json``; its manifest and ``cpu_s``, the CPU seconds of the
    run and every process it started, with, if ``sample_rss``, the peak RSS in MiB of the
    driver alone and of the driver with its children (summed per sample)."""
    import resource

    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    peak = {"driver_mib": 0.0, "total_mib": 0.0, "total_pss_mib": 0.0}
    if sample_rss:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                driver = root.memory_info().rss
                total = sum(p.memory_info().rss for p in tree)
                pss = sum(p.memory_full_info().pss for p in tree)
            except psutil.Error:
                continue
            peak["driver_mib"] = max(peak["driver_mib"], driver / MIB)
            peak["total_mib"] = max(peak["total_mib"], total / MIB)
            peak["total_pss_mib"] = max(peak["total_pss_mib"], pss / MIB)
            time.sleep(0.1)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"generate failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak["cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return json.loads(stdout), {k: round(v, 1) for k, v in peak.items()}


def speed(args: argparse.Namespace, tmp: Path) -> None:
    """samples/s at 1 and ``args.workers`` workers, interleaved, ``args.rounds`` times."""
    recipe = _recipe(args.recipe, args.shard_size, tmp)
    rates: dict[int, list[float]] = {1: [], args.workers: []}
    cpu: dict[int, list[float]] = {1: [], args.workers: []}
    for r in range(args.rounds):
        for w in (1, args.workers) if r % 2 == 0 else (args.workers, 1):
            load = os.getloadavg()[0]
            manifest, used = _run(_command(recipe, tmp / f"s{r}-{w}", args.n, w, args.negatives))
            run = manifest["run"]
            rates[w].append(run["samples_made"] / run["seconds"])
            cpu[w].append(1000 * used["cpu_s"] / args.n)
            print(json.dumps({"round": r, "workers": w, "samples_per_s": round(rates[w][-1], 3),
                              "cpu_ms_per_sample": round(cpu[w][-1], 2),
                              "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
                              "idle_worker_s": run.get("idle_worker_seconds")}), flush=True)  # fmt: skip
    ratios = [b / a for a, b in zip(rates[1], rates[args.workers])]
    print(json.dumps({"n": args.n, "negatives": args.negatives, "workers": args.workers,
                      "median_samples_per_s": {w: round(statistics.median(v), 3) for w, v in rates.items()},
                      "ratios": [round(x, 3) for x in ratios],
                      "median_ratio": round(statistics.median(ratios), 3),
                      "median_cpu_ms_per_sample": {w: round(statistics.median(v), 2) for w, v in cpu.items()},
                      "ratio_on_idle_cores_estimate": round(
                          args.workers * statistics.median(cpu[1]) / statistics.median(cpu[args.workers]), 3),
                      "cpus": os.cpu_count()}))  # fmt: skip


def memory(args: argparse.Namespace, tmp: Path) -> None:
    """Peak RSS of a run at each size of ``args.sizes``, and its slope."""
    recipe = _recipe(args.recipe, args.shard_size, tmp)
    points = []
    for n in args.sizes:
        load = os.getloadavg()[0]
        manifest, peak = _run(_command(recipe, tmp / f"m{n}", n, args.workers, args.negatives), True)
        points.append((n, peak["total_pss_mib"]))
        print(json.dumps({"n": n, "workers": args.workers, "negatives": args.negatives, **peak,
                          "seconds": manifest["run"]["seconds"], "load_before": round(load, 2),
                          "load_after": round(os.getloadavg()[0], 2)}), flush=True)  # fmt: skip
    if len(points) > 1:
        mx = statistics.mean(n for n, _ in points)
        my = statistics.mean(m for _, m in points)
        slope = sum((n - mx) * (m - my) for n, m in points) / sum((n - mx) ** 2 for n, _ in points)
        print(json.dumps({"slope_mib_per_1k_samples": round(1000 * slope, 3)}))


def _spanned(f: Any, log: Path) -> Any:
    """``f``, appending ``start end`` (seconds since the epoch) to ``log.PID`` at each call."""

    @functools.wraps(f)
    def wrapper(*a: Any, **k: Any) -> Any:
        start = time.time()
        try:
            return f(*a, **k)
        finally:
            with open(f"{log}.{os.getpid()}", "a", encoding="utf-8") as fh:
                fh.write(f"{start} {time.time()}\n")

    return wrapper


def idle(args: argparse.Namespace, tmp: Path) -> None:
    """Idle worker-seconds of the local pool between its first and last job, per shard."""
    if args.tree:
        for sub in ("trainer", "plugins", ""):
            sys.path.insert(0, str(args.tree / sub))
    import geoforge.generate
    from geoforge.negatives import NegativeConfig
    from geoforge.sampler import load_recipe

    log = tmp / "spans"
    try:  # this revision: every pool job goes through one function
        import geoforge.backends.local as local

        local._timed = _spanned(local._timed, log)  # type: ignore[attr-defined]
    except ImportError:  # before issue 14: one function per stage
        for name in ("_make", "_with_negatives", "qa_chunk"):
            setattr(geoforge.generate, name, _spanned(getattr(geoforge.generate, name), log))
    recipe = load_recipe(_recipe(args.recipe, args.shard_size, tmp))
    load = os.getloadavg()[0]
    start = time.time()
    manifest = geoforge.generate.generate_corpus(
        recipe, tmp / "idle", n=args.n, seed=recipe.seed, workers=args.workers,
        negatives=NegativeConfig(*args.negatives),
    )  # fmt: skip
    wall = time.time() - start
    spans = [
        tuple(map(float, line.split())) for p in tmp.glob("spans.*") for line in p.read_text().splitlines()
    ]
    busy = sum(b - a for a, b in spans)
    span = max(b for _, b in spans) - min(a for a, _ in spans)
    shards = -(-args.n // recipe.shard_size)
    print(json.dumps({"source": geoforge.generate.__file__, "n": args.n, "shard_size": recipe.shard_size,
                      "workers": args.workers, "negatives": args.negatives, "jobs": len(spans),
                      "wall_s": round(wall, 2), "jobs_span_s": round(span, 2),
                      "busy_worker_s": round(busy, 2),
                      "idle_worker_s": round(args.workers * span - busy, 2),
                      "idle_worker_s_per_shard": round((args.workers * span - busy) / shards, 2),
                      "idle_share": round(1 - busy / (args.workers * span), 4),
                      "samples_per_s": round(args.n / wall, 3), "load_before": round(load, 2),
                      "load_after": round(os.getloadavg()[0], 2),
                      "manifest_run": manifest["run"]}))  # fmt: skip


def caches(args: argparse.Namespace, tmp: Path) -> None:
    """What one worker's memory growth is: positives made in this process, with Python's
    allocated blocks, RSS and the size of every bounded LRU cache of geoforge's modules at
    checkpoints of ``--n``, then the blocks and RSS once those caches are cleared."""
    import importlib
    import pkgutil

    import geoforge
    from geoforge.generate import make_sample
    from geoforge.sampler import load_recipe

    modules = [importlib.import_module(m.name) for m in pkgutil.walk_packages(geoforge.__path__, "geoforge.")
               if not m.name.startswith("geoforge.cli")]  # fmt: skip
    found = {f"{mod.__name__}.{name}": f for mod in modules for name, f in vars(mod).items()
             if hasattr(f, "cache_info") and getattr(f, "__module__", None) == mod.__name__}  # fmt: skip

    def rss_mib() -> float:
        status = Path("/proc/self/status").read_text()
        return round(int(status.split("VmRSS:")[1].split()[0]) / 1024, 1)

    recipe = load_recipe(args.recipe)
    marks = {max(1, args.n // 30), args.n // 3, args.n}
    for i in range(args.n):
        make_sample(recipe, recipe.seed, i)
        if i + 1 in marks:
            sizes = {k: f.cache_info().currsize for k, f in sorted(found.items()) if f.cache_info().currsize}
            print(json.dumps({"samples": i + 1, "allocated_blocks": sys.getallocatedblocks(),
                              "rss_mib": rss_mib(), "cache_entries": sizes}))  # fmt: skip
    for f in found.values():
        f.cache_clear()
    cleared = {"caches_cleared": True, "allocated_blocks": sys.getallocatedblocks(), "rss_mib": rss_mib()}
    print(json.dumps(cleared))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("speed", "memory", "idle", "caches"))
    parser.add_argument("--recipe", type=Path, default=ROOT / "corpora" / "mmgeo-4k.toml")
    parser.add_argument("--shard-size", type=int, default=None, help="Override the recipe's shard size.")
    parser.add_argument("--n", type=int, default=300, help="Samples per run (speed, idle, caches).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (speed).")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1000, 10000, 100000], help="Corpus sizes (memory)."
    )
    parser.add_argument("--negatives", type=int, nargs=3, default=[0, 0, 0], metavar=("K", "M", "R"))
    parser.add_argument("--tree", type=Path, default=None, help="Measure the source tree in DIR (idle).")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="geoforge-scale-") as tmp:
        {"speed": speed, "memory": memory, "idle": idle, "caches": caches}[args.what](args, Path(tmp))


if __name__ == "__main__":
    main()
