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

    .venv/bin/python benchmarks/generate_speed.py [-n 200] [--recipe corpora/mmgeo-4k.toml] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geoforge.caption
import geoforge.generate
import geoforge.render
import geoforge.render.draw
from geoforge.generate import make_sample
from geoforge.sampler import load_recipe

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("sample+realise", "caption", "layout", "paint+PNG")
#: (module, attribute, stage) of each function make_sample calls that is timed.
TIMED = (
    (geoforge.generate, "sample_spec", "sample+realise"),
    (geoforge.generate, "realise", "sample+realise"),
    (geoforge.generate, "make_caption", "caption"),
    (geoforge.render, "layout", "layout"),
    (geoforge.render.draw, "paint", "paint+PNG"),
)


def pin_one_core() -> str:
    """Pin this process to one CPU if the OS allows it; return which, or why not."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


@contextmanager
def timed(seconds: Counter[str]) -> Iterator[None]:
    """Wrap the functions of :data:`TIMED` so their wall time adds up in ``seconds``."""
    originals = [(module, name, getattr(module, name)) for module, name, _ in TIMED]

    def wrap(f: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                seconds[stage] += time.perf_counter() - start

        return timed_call

    try:
        for (module, name, stage), (_, _, f) in zip(TIMED, originals):
            setattr(module, name, wrap(f, stage))
        yield
    finally:
        for module, name, f in originals:
            setattr(module, name, f)


def run(n: int, recipe_path: Path, warmup: int = 5) -> dict[str, object]:
    """Make ``n`` samples after ``warmup`` others; samples/s and ms per sample by stage."""
    recipe = load_recipe(recipe_path)
    for index in range(n, n + warmup):
        make_sample(recipe, recipe.seed, index).files()
    seconds: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    with timed(seconds):
        start = time.perf_counter()
        for index in range(n):
            sample = make_sample(recipe, recipe.seed, index)
            sample.files()
            rejected.update(sample.meta["draws"][:-1])  # type: ignore[index]
        total = time.perf_counter() - start
    ms = {stage: round(1000 * seconds[stage] / n, 2) for stage in STAGES}
    ms["other"] = round(1000 * total / n - sum(ms.values()), 2)
    return {
        "recipe": str(recipe_path),
        "samples": n,
        "image_size": recipe.image_size,
        "seconds": round(total, 3),
        "samples_per_second": round(n / total, 2),
        "ms_per_sample": round(1000 * total / n, 2),
        "breakdown_ms_per_sample": ms,
        "rejected_figures_per_sample": round(sum(rejected.values()) / n, 2),
        "rejections": dict(rejected.most_common()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="samples to time (default 200)")
    parser.add_argument("--recipe", type=Path, default=ROOT / "corpora" / "mmgeo-4k.toml", help="recipe TOML")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    core = pin_one_core()
    result = {**run(args.n, args.recipe), "cpu": core}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['samples']} samples of {args.recipe} at {result['image_size']} px, {core}")
    print(f"{'stage':<24}{'ms/sample':>10}{'share':>8}")
    breakdown: dict[str, float] = result["breakdown_ms_per_sample"]  # type: ignore[assignment]
    per_sample = float(result["ms_per_sample"])  # type: ignore[arg-type]
    for stage, value in breakdown.items():
        print(f"{stage:<24}{value:>10.2f}{value / per_sample:>8.0%}")
    print(f"{'total':<24}{per_sample:>10.2f}{1:>8.0%}")
    print(
        f"{result['samples_per_second']} samples/s on one core; "
        f"{result['rejected_figures_per_sample']} rejected figures per kept sample"
    )


if __name__ == "__main__":
    main()
