"""Where a sample with hard negatives spends its time, by wall-clock timers instead of cProfile.

``negatives_speed.py --breakdown`` profiles with cProfile, which slows Python-heavy code more
than numpy- and matplotlib-heavy code and so shifts the shares. This script wraps the
functions below with ``time.perf_counter`` timers (a few microseconds per call), makes N
positives of a recipe and their K = M = R negatives in one process after a warm-up (the
workload of ``negatives_speed.py``), and prints for each function the milliseconds per sample,
the calls per sample and the milliseconds per call. Timed functions nest (``layout`` calls
``place``; ``verify_image`` calls most of the others), so the rows do not add up; ``propose
NAME`` is the time spent inside each plugin's generator.

    .venv/bin/python benchmarks/negatives_timers.py [-n 40] [-k 10] [-m 10] [-r 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wall_timers import add_negative_counts, wall_timers

ROOT = Path(__file__).resolve().parents[1]
#: (module, function, other modules that imported the function by name).
TIMED = [
    ("geoforge.generate", "make_sample", ()),
    ("geoforge.verify.image", "verify_image", ("geoforge.negatives", "geoforge.verify")),
    ("geoforge.verify.image", "_realise_near", ()),
    ("geoforge.verify.image", "restore", ()),
    ("geoforge.verify.image", "reference", ()),
    ("geoforge.verify.measure", "violation", ("geoforge.verify.image",)),
    ("geoforge.render", "layout", ()),
    ("geoforge.render.place", "place", ("geoforge.render.layout",)),
    ("geoforge.render.draw", "raster", ()),
    ("geoforge.render.draw", "encode_png", ()),
    ("geoforge.scene", "drawing", ("geoforge.realise", "geoforge.verify.image")),
    ("geoforge.program", "_validate", ()),
    ("geoforge.verify.caption", "verify_caption", ("geoforge.negatives", "geoforge.verify")),
    ("geoforge.negatives", "_duplicate", ()),
]

seconds: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)


def install() -> None:
    """Wrap each plugin's candidate stream (the functions of :data:`TIMED` are wrapped by
    :func:`wall_timers.wall_timers` in :func:`measure`)."""
    from geoforge.plugins import PluginHost

    candidates = PluginHost.candidates

    def timed_candidates(self: PluginHost, plugin: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        stream = candidates(self, plugin, *args, **kwargs)
        label = f"propose {plugin.name}"
        try:
            while True:
                start = time.perf_counter()
                try:
                    item = next(stream)
                except StopIteration:
                    return
                finally:
                    seconds[label] += time.perf_counter() - start
                calls[label] += 1
                yield item
        finally:
            stream.close()

    PluginHost.candidates = timed_candidates  # type: ignore[method-assign]


def measure(n: int, k: int, m: int, r: int, recipe_path: str) -> dict[str, Any]:
    """Time ``n`` positives (seed 0) and their negatives after a warm-up on three (seed 1)."""
    install()
    targets = [
        (module, name, f"{module.rsplit('.', 1)[-1]}.{name}", importers) for module, name, importers in TIMED
    ]
    with wall_timers(targets, seconds, calls):  # before the imports below, which bind names
        from geoforge.generate import make_sample
        from geoforge.negatives import NegativeConfig, add_negatives, pool_entry
        from geoforge.plugins import PluginSpec
        from geoforge.sampler import load_recipe

        recipe = load_recipe(recipe_path)
        config, spec = NegativeConfig(k, m, r), PluginSpec()
        warm = [make_sample(recipe, 1, i) for i in range(3)]
        add_negatives(warm[0], tuple(pool_entry(s) for s in warm), config, spec, recipe.image_size, 1)
        seconds.clear()
        calls.clear()
        cpu = time.process_time()
        samples = [make_sample(recipe, 0, i) for i in range(n)]
        pool = tuple(pool_entry(s) for s in samples)
        for s in samples:
            add_negatives(s, pool, config, spec, recipe.image_size, 0)
        cpu = time.process_time() - cpu
    rows = {
        label: {
            "ms_per_sample": round(1000 * seconds[label] / n, 2),
            "calls_per_sample": round(calls[label] / n, 2),
            "ms_per_call": round(1000 * seconds[label] / max(calls[label], 1), 3),
        }
        for label in sorted(seconds, key=lambda x: -seconds[x])
    }
    return {"positives": n, "k_m_r": [k, m, r], "cpu_ms_per_sample": round(1000 * cpu / n, 1), "timers": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_negative_counts(parser, 40)
    parser.add_argument("--recipe", default=str(ROOT / "corpora" / "mmgeo-4k.toml"), help="recipe TOML")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    result = measure(args.n, args.k, args.m, args.r, args.recipe)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(
        f"{result['cpu_ms_per_sample']} CPU-ms per sample (positive and negatives), K M R = {result['k_m_r']}"
    )
    print(f"{'timer':28s} {'ms/sample':>10s} {'calls/sample':>13s} {'ms/call':>9s}")
    for label, row in result["timers"].items():
        ms, n, each = row["ms_per_sample"], row["calls_per_sample"], row["ms_per_call"]
        print(f"{label:28s} {ms:10.2f} {n:13.2f} {each:9.3f}")


if __name__ == "__main__":
    main()
