"""Generation speed: end-to-end positive samples per second on one core, with a breakdown.

Makes samples ``0 .. N-1`` of a recipe (default ``corpora/mmgeo-4k.toml``) in this process
with :func:`geoforge.generate.make_sample`, as one worker of ``geoforge generate`` does (the
sample's tar members are encoded too), after a warm-up on a few other indices. The process is
pinned to one CPU where the OS allows it. Each stage is timed by wrapping the function
``make_sample`` calls, so the time spent on figures that are drawn and then rejected is
counted in the stage where it was spent:

* ``sample+realise``: :func:`geoforge.sampler.sample_spec` and :func:`geoforge.realise.realise`;
* ``caption``: :func:`geoforge.caption.make_caption` (every style);
* ``layout``: :func:`geoforge.render.layout`;
* ``paint+PNG``: :func:`geoforge.render.draw.paint` to PNG bytes;
* ``other``: the rest (program text and hash, metadata, legibility check, JSON encoding).

Prints a table of ms per kept sample, or JSON with ``--json``.

``--baseline REV`` measures this tree and git revision REV side by side, in ``--rounds``
interleaved rounds (A B A B ..., each in a fresh process importing geoforge from its own tree;
see ``side_by_side.py``), and prints each round, the medians and the ratio A / B of samples per
second. Rates are per wall second and per CPU-second of the process (``time.process_time``,
which leaves out the time spent waiting for a core on a shared machine); the side-by-side ratio
is of samples per CPU-second.

    .venv/bin/python benchmarks/generate_speed.py [-n 200] [--recipe corpora/mmgeo-4k.toml] [--json]
    .venv/bin/python benchmarks/generate_speed.py --baseline f685a90 [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import side_by_side
from wall_timers import at_least, wall_timers

RECIPE = "corpora/mmgeo-4k.toml"
STAGES = ("sample+realise", "caption", "layout", "paint+PNG")
#: Each function make_sample calls that is timed, with its stage (see wall_timers.Target).
TIMED = (
    ("geoforge.generate", "sample_spec", "sample+realise", ()),
    ("geoforge.generate", "realise", "sample+realise", ()),
    ("geoforge.generate", "make_caption", "caption", ()),
    ("geoforge.render", "layout", "layout", ()),
    ("geoforge.render.draw", "paint", "paint+PNG", ()),
)


def run(n: int, recipe_path: str, warmup: int = 5) -> dict[str, object]:
    """Make ``n`` samples after ``warmup`` others; samples/s and ms per sample by stage."""
    from geoforge.generate import make_sample
    from geoforge.sampler import load_recipe

    recipe = load_recipe(recipe_path)
    for index in range(n, n + warmup):
        make_sample(recipe, recipe.seed, index).files()
    seconds: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    with wall_timers(TIMED, seconds):
        start, cpu_start = time.perf_counter(), time.process_time()
        for index in range(n):
            sample = make_sample(recipe, recipe.seed, index)
            sample.files()
            rejected.update(sample.meta["draws"][:-1])  # type: ignore[index]
        total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    ms = {stage: round(1000 * seconds[stage] / n, 2) for stage in STAGES}
    ms["other"] = round(1000 * total / n - sum(ms.values()), 2)
    return {
        "recipe": recipe_path,
        "samples": n,
        "image_size": recipe.image_size,
        "seconds": round(total, 3),
        "samples_per_second": round(n / total, 2),
        "samples_per_cpu_second": round(n / cpu, 2),
        "ms_per_sample": round(1000 * total / n, 2),
        "breakdown_ms_per_sample": ms,
        "rejected_figures_per_sample": round(sum(rejected.values()) / n, 2),
        "rejections": dict(rejected.most_common()),
    }


def _row(tree: str, k: int, result: dict[str, object]) -> None:
    print(
        f"round {k + 1} {tree}: {result['samples_per_cpu_second']:>7} samples per CPU-second "
        f"({result['samples_per_second']} per wall second), "
        f"{result['ms_per_sample']:>6} ms/sample {result['breakdown_ms_per_sample']}",
        flush=True,
    )


def _table(result: dict[str, object], title: str) -> None:
    print(title)
    print(f"{'stage':<24}{'ms/sample':>10}{'share':>8}")
    breakdown: dict[str, float] = result["breakdown_ms_per_sample"]  # type: ignore[assignment]
    per_sample = float(result["ms_per_sample"])  # type: ignore[arg-type]
    for stage, value in breakdown.items():
        print(f"{stage:<24}{value:>10.2f}{value / per_sample:>8.0%}")
    print(f"{'total':<24}{per_sample:>10.2f}{1:>8.0%}")
    print(
        f"{result['samples_per_second']} samples/s on one core "
        f"({result['samples_per_cpu_second']} per CPU-second); "
        f"{result['rejected_figures_per_sample']} rejected figures per kept sample"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=side_by_side.summary_line(__doc__))
    parser.add_argument("-n", type=at_least(1), default=200, help="samples to time (default 200)")
    parser.add_argument("--recipe", default=RECIPE, help="recipe TOML (relative: to each tree's root)")
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV, side by side")
    parser.add_argument("--rounds", type=at_least(1), default=3, help="interleaved rounds with --baseline")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        core = side_by_side.pin_one_core()
        print(json.dumps({**run(args.n, args.recipe), "cpu": core, "modules": side_by_side.module_files()}))
        return
    side_by_side.require_recipe(parser, args.recipe)
    script, passed = Path(__file__).resolve(), ["-n", str(args.n), "--recipe", args.recipe]
    if args.baseline is None:
        result = side_by_side.run_worker(script, side_by_side.ROOT, passed)
        if args.json:
            print(json.dumps(result, indent=2))
            return
        _table(
            result,
            f"{result['samples']} samples of {args.recipe} at {result['image_size']} px, {result['cpu']}",
        )
        return
    show = (lambda *a: None) if args.json else _row
    report = side_by_side.compare(script, passed, args.baseline, args.rounds, "samples_per_cpu_second", show)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for tree in ("A", "B"):
        rounds: list[dict[str, object]] = report["rounds"][tree]  # type: ignore[index]
        middle = sorted(rounds, key=lambda r: float(r["samples_per_second"]))[len(rounds) // 2]  # type: ignore[arg-type]
        _table(middle, f"{tree}, median round:")
    print(side_by_side.summary(report))


if __name__ == "__main__":
    main()
