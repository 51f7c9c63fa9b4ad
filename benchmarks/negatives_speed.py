"""Throughput with hard negatives: samples per second per core with K image and M caption
negatives (default K = M = 10, the paper's setting), plus R retrieval negatives.

Makes N positives of a recipe (default ``corpora/mmgeo-4k.toml``) with
:func:`geoforge.generate.make_sample`, then their negatives with
:func:`geoforge.negatives.add_negatives` (retrieval pool: the N positives), in this process,
after a warm-up; the process is pinned to one CPU where the OS allows. Reports positive-only
and with-negatives rates, the time per kept negative, and yields.

    .venv/bin/python benchmarks/negatives_speed.py [-n 50] [-k 10] [-m 10] [-r 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from geoforge.generate import make_sample
from geoforge.negatives import NegativeConfig, add_negatives, pool_entry
from geoforge.plugins import PluginSpec
from geoforge.sampler import load_recipe

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="positives (default 50)")
    parser.add_argument("-k", type=int, default=10, help="image negatives per positive")
    parser.add_argument("-m", type=int, default=10, help="caption negatives per positive")
    parser.add_argument("-r", type=int, default=10, help="retrieval negatives per positive")
    parser.add_argument("--recipe", default=str(ROOT / "corpora" / "mmgeo-4k.toml"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    recipe = load_recipe(args.recipe)
    config = NegativeConfig(args.k, args.m, args.r)
    spec = PluginSpec()
    warm = [make_sample(recipe, 1, i) for i in range(3)]
    add_negatives(warm[0], tuple(pool_entry(s) for s in warm), config, spec, recipe.image_size, 1)

    start = time.perf_counter()
    samples = [make_sample(recipe, 0, i) for i in range(args.n)]
    positives_s = time.perf_counter() - start
    pool = tuple(pool_entry(s) for s in samples)
    start = time.perf_counter()
    done = [add_negatives(s, pool, config, spec, recipe.image_size, 0) for s in samples]
    negatives_s = time.perf_counter() - start

    counts = {"image": 0, "caption": 0, "retrieval": 0}
    enough = {"image": 0, "caption": 0}
    for s in done:
        record = json.loads(str(s.meta["negatives"]))
        for kind in counts:
            counts[kind] += len(record[kind])
        for kind in enough:
            enough[kind] += len(record[kind]) >= 8
    total = positives_s + negatives_s
    result = {
        "positives": args.n,
        "k_m_r": [args.k, args.m, args.r],
        "positives_per_s": round(args.n / positives_s, 2),
        "samples_with_negatives_per_s": round(args.n / total, 3),
        "ms_per_kept_negative": round(1000 * negatives_s / max(sum(counts.values()), 1), 2),
        "negatives_per_sample": {k: round(v / args.n, 2) for k, v in counts.items()},
        "share_with_at_least_8": {k: round(v / args.n, 3) for k, v in enough.items()},
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for key, value in result.items():
        print(f"{key:32s} {value}")


if __name__ == "__main__":
    main()
