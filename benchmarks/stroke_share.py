"""Which image candidates the verifier rejects, by how much of the figure they move.

Makes N positives of a recipe (default ``corpora/mmgeo-4k.toml``, seed 0) and their K image
negatives (no caption or retrieval negatives), and records, for every candidate of
``move_vertex``, ``alter_relation`` and ``delete_point`` that the verifier judged, the share of the positive's
stroke length (lines end to end, circle circumferences) that holds a point the change moves
(the changed clause's points and everything built on them), computed here from the scene, not
with ``geoforge.scene.stroke_share``. Prints, per plugin and share bin, the candidates judged,
those kept and the main rejection reasons, then the candidates judged per positive and the
yield. ``--baseline REV`` prints the same for git revision REV (its own plugins' order), so a
change of the order shows as fewer candidates judged for the same yield.

    .venv/bin/python benchmarks/stroke_share.py [-n 80] [-k 10] [--baseline REV] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

import side_by_side

ROOT = Path(__file__).resolve().parents[1]
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)
REASONS = (
    "positive caption not false by the margin",
    "moves most of the figure",
    "needs a new framing",
    "not visibly different",
)


def _share(positive: object, clause: int) -> float:
    from geoforge.edit import dependents

    program, scene = positive.program, positive.scene  # type: ignore[attr-defined]
    moved = dependents(program, set(program.clauses[clause - 1].points))
    total = share = 0.0
    for group in scene.lines:
        ends = scene.points[group[0]] - scene.points[group[-1]]
        length = math.hypot(float(ends[0]), float(ends[1]))
        total += length
        share += length * any(p in moved for p in group)
    for c in scene.circles:
        length = 2 * math.pi * c.radius
        total += length
        share += length * (c.center_name in moved or any(p in moved for p in c.on))
    return share / total if total else 0.0


def worker(n: int, k: int, recipe: str) -> dict[str, object]:
    """The counts for the tree on ``sys.path``: per plugin, per share bin, per verdict."""
    import geoforge.negatives as negatives
    from geoforge.generate import make_sample
    from geoforge.negatives import NegativeConfig, add_negatives, pool_entry
    from geoforge.plugins import PluginSpec
    from geoforge.sampler import load_recipe

    judged: Counter[tuple[str, int, str]] = Counter()
    calls = Counter[str]()
    verify = negatives.verify_image

    def recorded(positive, candidate, png, plugin, *args, **kwargs):  # type: ignore[no-untyped-def]
        verdict = verify(positive, candidate, png, plugin, *args, **kwargs)
        calls[plugin] += 1
        if plugin in ("move_vertex", "alter_relation", "delete_point") and candidate.clause:
            share = _share(positive, candidate.clause)
            at = next(i for i in range(len(BINS) - 1) if share < BINS[i + 1])
            judged[(plugin, at, verdict.reason or "kept")] += 1
        return verdict

    negatives.verify_image = recorded
    r = load_recipe(recipe)
    samples = [make_sample(r, 0, i) for i in range(n)]
    pool = tuple(pool_entry(s) for s in samples)
    done = [add_negatives(s, pool, NegativeConfig(k, 0, 0), PluginSpec(), r.image_size, 0) for s in samples]
    kept = [len(json.loads(str(s.meta["negatives"]))["image"]) for s in done]
    return {
        "judged": [[p, b, reason, c] for (p, b, reason), c in sorted(judged.items())],
        "judged_per_positive": {p: round(c / n, 2) for p, c in sorted(calls.items())},
        "all_judged_per_positive": round(sum(calls.values()) / n, 2),
        "kept_per_positive": round(sum(kept) / n, 2),
        "share_with_at_least_8": round(sum(x >= min(8, k) for x in kept) / n, 3),
        "modules": side_by_side.module_files(),
    }


def show(label: str, result: dict[str, object]) -> None:
    print(f"== {label}")
    rows: dict[tuple[str, int], Counter[str]] = {}
    for plugin, at, reason, count in result["judged"]:  # type: ignore[attr-defined]
        rows.setdefault((plugin, at), Counter())[reason] += count
    short = ("kept", "not false", "most ink", "framing", "not visible")
    print(f"{'plugin':15s} {'share moved':12s} {'judged':>6s} " + " ".join(f"{s:>11s}" for s in short))
    for (plugin, at), c in sorted(rows.items()):
        values = [c["kept"], *(c[r] for r in REASONS)]
        span = f"[{BINS[at]:.1f}, {min(BINS[at + 1], 1.0):.1f})"
        print(f"{plugin:15s} {span:12s} {sum(c.values()):6d} " + " ".join(f"{v:11d}" for v in values))
    print(
        f"judged per positive {result['all_judged_per_positive']} {result['judged_per_positive']}; "
        f"kept {result['kept_per_positive']}; ≥ 8 kept: {result['share_with_at_least_8']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=80, help="positives (default 80)")
    parser.add_argument("-k", type=int, default=10, help="image negatives per positive")
    parser.add_argument("--recipe", default="corpora/mmgeo-4k.toml", help="recipe (relative: to each tree)")
    parser.add_argument("--baseline", metavar="REV", help="also count git revision REV")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.n, args.k, args.recipe)))
        return
    passed = ["-n", str(args.n), "-k", str(args.k), "--recipe", args.recipe]
    script = Path(__file__).resolve()
    report = {"this tree": side_by_side.run_worker(script, ROOT, passed)}
    if args.baseline:
        with side_by_side.checkout(args.baseline) as tree:
            report[args.baseline] = side_by_side.run_worker(script, tree, passed)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
        return
    for label, result in report.items():
        show(label, result)


if __name__ == "__main__":
    main()
