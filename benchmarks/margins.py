"""What the verifier's incidence and similarity margins mean on the image.

A point off its line by a share ``s`` of the figure size (the diagonal of the points' bounding
box, :attr:`geoforge.scene.Scene.scale`) is ``s · scale · pixels-per-unit`` pixels off on the
rendered figure. This script lays out N positives of a recipe (default
``corpora/mmgeo-4k.toml``) at the recipe's image size and reports, for each share, the
distance in pixels (median and 10th percentile over the figures) and in stroke widths, next to
the stroke width itself. The verifier's default margin, 3% (:class:`geoforge.verify.Margins`),
should be several stroke widths: an offset of one or two stroke widths reads as a drawing error.

    .venv/bin/python benchmarks/margins.py [-n 200] [--recipe corpora/mmgeo-4k.toml] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from geoforge.generate import make_sample
from geoforge.program import parse_program
from geoforge.realise import realise
from geoforge.render import layout
from geoforge.sampler import load_recipe
from geoforge.verify import DEFAULT_MARGINS

ROOT = Path(__file__).resolve().parents[1]
SHARES = (0.005, 0.01, 0.02, 0.03, 0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="figures to lay out")
    parser.add_argument("--recipe", default=str(ROOT / "corpora" / "mmgeo-4k.toml"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    px_per_share, strokes = [], []
    for index in range(args.n):
        sample = make_sample(recipe, args.seed, index)
        scene = realise(parse_program(str(sample.meta["program"])), seed=int(sample.meta["realise_seed"]))
        plan = layout(scene, recipe.image_size)
        px_per_share.append(plan.scale * scene.scale)
        strokes.append(plan.stroke_px)
    size = np.array(px_per_share)
    stroke = float(np.median(strokes))
    rows = {
        f"{s:.3f}": {
            "median_px": round(float(np.median(size * s)), 2),
            "p10_px": round(float(np.percentile(size * s, 10)), 2),
            "median_strokes": round(float(np.median(size * s)) / stroke, 2),
        }
        for s in SHARES
    }
    out = {
        "figures": args.n,
        "image_size": recipe.image_size,
        "stroke_px": round(stroke, 3),
        "figure_size_px_median": round(float(np.median(size)), 1),
        "incidence_margin": DEFAULT_MARGINS.incidence,
        "shares": rows,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"{args.n} figures at {recipe.image_size} px; stroke {stroke:.2f} px; figure size "
        f"(bounding-box diagonal) median {out['figure_size_px_median']} px"
    )
    print(f"{'share':>7} {'median px':>10} {'p10 px':>8} {'strokes':>8}")
    for share, r in rows.items():
        mark = "  ← default margin" if float(share) == DEFAULT_MARGINS.incidence else ""
        print(f"{share:>7} {r['median_px']:>10} {r['p10_px']:>8} {r['median_strokes']:>8}{mark}")


if __name__ == "__main__":
    main()
