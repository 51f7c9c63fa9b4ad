"""Throughput with hard negatives: samples per second per core with K image and M caption
negatives (default K = M = 10, the paper's setting), plus R retrieval negatives.

Makes N positives of a recipe (default ``corpora/mmgeo-4k.toml``) with
:func:`geoforge.generate.make_sample`, then their negatives with
:func:`geoforge.negatives.add_negatives` (retrieval pool: the N positives, or with ``--pool P``
those and the next P − N of the recipe, made untimed: a ``generate`` run's pool is its shard, 1000
captions in ``mmgeo-4k``), in one process,
after a warm-up; the process is pinned to one CPU where the OS allows. Reports positive-only
and with-negatives rates, the time per kept negative, and yields (negatives kept per positive,
and the share of positives with at least 8 image and 8 caption negatives).

Rates are given per wall second and per CPU-second of the process (``time.process_time``):
on a machine shared with other jobs, a process waits for a core for a varying share of the
wall time, which the CPU time leaves out, so samples per CPU-second is the per-core figure to
compare. ``--baseline REV`` measures this tree and git revision REV side by side, in
``--rounds`` interleaved rounds (A B A B ..., each in a fresh process importing geoforge and its
plugins from its own tree; see ``side_by_side.py``), and prints each round, the medians and the
ratio A / B of samples with negatives per CPU-second. ``--breakdown`` adds one cProfile run per
tree and prints where the milliseconds of a sample go, by stage (``profile_stages.py``).
``--files`` also encodes each sample's members as a shard stores them (``Sample.files()``: the
strip of image negatives, the JSON), in the timed part: what ``generate`` pays per sample.

    .venv/bin/python benchmarks/negatives_speed.py [-n 50] [-k 10] [-m 10] [-r 10] [--json]
    .venv/bin/python benchmarks/negatives_speed.py --baseline 3777529 [--rounds 3] [--breakdown] [--files]
        [--pool 1000]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path

import profile_stages
import side_by_side
from wall_timers import add_negative_counts, at_least

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "corpora/mmgeo-4k.toml"
_IMG = "geoforge/verify/image.py"
#: The verifier before it became a package (3777529 and older).
_OLD = "geoforge/verify.py"
_VERIFY = (f"{_IMG}:verify_image|{_OLD}:verify_image", f"{_IMG}:<listcomp>")
#: Where a sample's time goes (see profile_stages.py): label, depth, function, callers.
STAGES: list[profile_stages.Stage] = [
    ("positive (make_sample)", 0, "geoforge/generate.py:make_sample", ()),
    ("sample+realise", 1, "geoforge/sampler/__init__.py:sample_spec", ("geoforge/generate.py:make_sample",)),
    ("realise", 1, "geoforge/realise.py:realise", ("geoforge/generate.py:make_sample",)),
    ("caption", 1, "geoforge/caption/write.py:make_caption", ("geoforge/generate.py:make_sample",)),
    ("layout", 1, "geoforge/render/layout.py:layout", ("geoforge/generate.py:make_sample",)),
    ("paint+PNG", 1, "geoforge/render/draw.py:paint", ("geoforge/generate.py:make_sample",)),
    ("negatives (add_negatives)", 0, "geoforge/negatives.py:add_negatives", ()),
    ("re-realise the positive", 1, "geoforge/realise.py:realise", ("geoforge/negatives.py:add_negatives",)),
    ("proposals (all plugins)", 1, "geoforge/plugins/host.py:candidates|geoforge/plugins.py:candidates", ()),
    ("move_vertex", 2, "geoforge_perturb/move_vertex.py:propose", ()),
    ("alter_relation", 2, "geoforge_perturb/alter_relation.py:propose", ()),
    ("delete_point", 2, "geoforge_perturb/delete_point.py:propose", ()),
    ("caption_rules", 2, "geoforge_perturb/caption_rules.py:propose", ()),
    ("retrieval (BM25 + ranking)", 2, "geoforge_perturb/retrieval.py:propose", ()),
    ("verify image negatives", 1, f"{_IMG}:verify_image|{_OLD}:verify_image", ()),
    ("positive's reference (layout, grey)", 2, f"{_IMG}:reference", ()),
    ("realise near the positive", 2, f"{_IMG}:_realise_near|{_OLD}:_realise_near", ()),
    ("restore marks/strokes", 2, f"{_IMG}:restore", (f"{_IMG}:verify_image",)),
    ("false marks", 2, f"{_IMG}:false_marks|{_OLD}:false_marks", _VERIFY),
    ("stated claims false (violation)", 2, f"geoforge/verify/measure.py:violation|{_OLD}:violation", _VERIFY),
    ("similarity", 2, f"{_IMG}:similarity_gap", (f"{_IMG}:verify_image",)),
    ("layout (labels)", 2, "geoforge/render/layout.py:layout", _VERIFY),
    ("paint (raster)", 2, "geoforge/render/draw.py:raster", _VERIFY),
    ("paint+PNG (older trees)", 2, "geoforge/render/draw.py:paint", _VERIFY),
    ("pixel difference", 2, f"{_IMG}:pixel_difference|{_OLD}:pixel_difference", _VERIFY),
    ("ink kept", 2, f"{_IMG}:ink_kept", (f"{_IMG}:verify_image",)),
    ("PNG encode", 2, "geoforge/render/draw.py:encode_png", (f"{_IMG}:verify_image",)),
    ("verify caption negatives", 1, f"geoforge/verify/caption.py:verify_caption|{_OLD}:verify_caption", ()),
    ("duplicate check", 1, "geoforge/negatives.py:_duplicate", ()),
]


def measure(
    n: int,
    k: int,
    m: int,
    r: int,
    recipe_path: str,
    prof: cProfile.Profile | None = None,
    files: bool = False,
    pool_size: int | None = None,
) -> dict[str, object]:
    """Make ``n`` positives of ``recipe_path`` (seed 0) and their negatives in this process,
    after a warm-up on three others (seed 1); rates and yields. ``prof`` profiles the timed
    part only; ``files`` also times encoding each sample's members (``Sample.files()``).
    ``pool_size``: the retrieval pool holds the ``n`` positives and, made before the timing,
    the next ``pool_size - n`` of the recipe (``None``: the ``n`` alone)."""
    from geoforge.generate import make_sample
    from geoforge.negatives import NegativeConfig, add_negatives, pool_entry
    from geoforge.plugins import PluginSpec
    from geoforge.sampler import load_recipe

    recipe = load_recipe(recipe_path)
    config = NegativeConfig(k, m, r)
    spec = PluginSpec()
    warm = [make_sample(recipe, 1, i) for i in range(3)]
    add_negatives(warm[0], tuple(pool_entry(s) for s in warm), config, spec, recipe.image_size, 1)
    more = [pool_entry(make_sample(recipe, 0, i)) for i in range(n, pool_size or n)]

    if prof is not None:
        prof.enable()
    start, cpu_start = time.perf_counter(), time.process_time()
    samples = [make_sample(recipe, 0, i) for i in range(n)]
    positives_s, positives_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    pool = tuple(pool_entry(s) for s in samples) + tuple(more)
    start, cpu_start = time.perf_counter(), time.process_time()
    done = [add_negatives(s, pool, config, spec, recipe.image_size, 0) for s in samples]
    if files:
        for s in done:
            s.files()
    negatives_s, negatives_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if prof is not None:
        prof.disable()

    counts = {"image": 0, "caption": 0, "retrieval": 0}
    enough = {"image": 0, "caption": 0}
    for s in done:
        record = json.loads(str(s.meta["negatives"]))
        for kind in counts:
            counts[kind] += len(record[kind])
        for kind in enough:
            enough[kind] += len(record[kind]) >= 8
    total = positives_s + negatives_s
    return {
        "positives": n,
        "pool": len(pool),
        "k_m_r": [k, m, r],
        "positives_per_s": round(n / positives_s, 2),
        "samples_with_negatives_per_s": round(n / total, 3),
        "positives_per_cpu_s": round(n / positives_cpu, 2),
        "samples_with_negatives_per_cpu_s": round(n / (positives_cpu + negatives_cpu), 3),
        "ms_per_sample": round(1000 * total / n, 1),
        "ms_per_kept_negative": round(1000 * negatives_s / max(sum(counts.values()), 1), 2),
        "negatives_per_sample": {kind: round(v / n, 2) for kind, v in counts.items()},
        "share_with_at_least_8": {kind: round(v / n, 3) for kind, v in enough.items()},
    }


def worker(args: argparse.Namespace) -> dict[str, object]:
    """One measurement in this process (of the tree on ``sys.path``), with the module files."""
    core = side_by_side.pin_one_core()
    prof = cProfile.Profile() if args.breakdown else None
    result = measure(args.n, args.k, args.m, args.r, args.recipe, prof, args.files, args.pool)
    if prof is not None:
        result["stages_s"] = profile_stages.stage_seconds(pstats.Stats(prof), STAGES)
    return {**result, "cpu": core, "modules": side_by_side.module_files()}


def _row(tree: str, k: int, result: dict[str, object]) -> None:
    print(
        f"round {k + 1} {tree}: {result['samples_with_negatives_per_cpu_s']:>7} samples per CPU-second "
        f"with negatives ({result['samples_with_negatives_per_s']} per wall second), "
        f"{result['positives_per_cpu_s']:>6} positives per CPU-second; "
        f"per sample {result['negatives_per_sample']}, "
        f"≥8: {result['share_with_at_least_8']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=side_by_side.summary_line(__doc__))
    add_negative_counts(parser, 50)
    parser.add_argument("--recipe", default=RECIPE, help="recipe TOML (relative: to each tree's root)")
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV, side by side")
    parser.add_argument("--rounds", type=at_least(1), default=3, help="interleaved rounds with --baseline")
    parser.add_argument("--breakdown", action="store_true", help="add a cProfile run: ms per stage")
    parser.add_argument("--files", action="store_true", help="also time encoding each sample's members")
    parser.add_argument(
        "--pool",
        type=int,
        metavar="P",
        help="retrieval pool of P positives, the N timed ones first (default N; a generate run's "
        "pool is its shard: 1000 in mmgeo-4k)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pool is not None and args.pool < args.n:
        parser.error(f"--pool {args.pool}: the pool holds the {args.n} timed positives; use P >= -n")
    if args.worker:
        print(json.dumps(worker(args)))
        return
    side_by_side.require_recipe(parser, args.recipe)
    passed = [
        "-n",
        str(args.n),
        "-k",
        str(args.k),
        "-m",
        str(args.m),
        "-r",
        str(args.r),
        "--recipe",
        args.recipe,
        *(["--files"] if args.files else []),
        *(["--pool", str(args.pool)] if args.pool else []),
    ]
    script = Path(__file__).resolve()
    profiled = ["--breakdown"] if args.breakdown else None
    if args.baseline is None:
        report = {"A": side_by_side.run_worker(script, ROOT, passed + (profiled or []))}
        if not args.json:
            for key, value in report["A"].items():
                if key not in ("stages_s", "modules"):
                    print(f"{key:32s} {value}")
        runs = report
    else:
        show = (lambda *a: None) if args.json else _row
        report = side_by_side.compare(
            script, passed, args.baseline, args.rounds, "samples_with_negatives_per_cpu_s", show, profiled
        )
        runs = report["profiled"]  # type: ignore[assignment]
        if not args.json:
            print(side_by_side.summary(report))
    if args.breakdown and not args.json:
        columns = {tree: r["stages_s"] for tree, r in runs.items()}  # type: ignore[index]
        profile_stages.show(STAGES, columns, {tree: args.n for tree in runs})  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
