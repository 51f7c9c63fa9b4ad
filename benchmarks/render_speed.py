"""Render speed: geoforge.render against a naive matplotlib baseline, interleaved in one run.

Realises N scenes from the JGEX problems (``corpora/alphageometry/jgex_ag_231.txt``; a few
built-in programs if that file is missing), then, scene by scene, times (a)
``geoforge.render.render(scene)`` and (b) the usual LLM-written matplotlib code:
``plt.figure()``, ``plt.plot``/``plt.text`` per segment, circle, point and label, ``savefig`` to
PNG bytes, ``plt.close()``. Both are warmed up on the first scene first. Prints ms/diagram
for each and the ratio, as a table or with ``--json``.

    .venv/bin/python benchmarks/render_speed.py [-n 200] [--size 448] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from geoforge.errors import GeoforgeError
from geoforge.program import parse_program
from geoforge.realise import realise
from geoforge.render import layout, render
from geoforge.scene import Scene

JGEX = Path(__file__).resolve().parents[1] / "corpora" / "alphageometry" / "jgex_ag_231.txt"
BUILTIN = [
    "a b c = triangle a b c; o = circle o a b c; h = midpoint h c b; d = on_line d o h, "
    "on_line d a b; e = on_tline e c c o, on_tline e a a o",
    "a b c = triangle a b c; h = foot h a b c; m = midpoint m b c; mark right a h b",
    "a b c = triangle a b c; o = circle o a b c; d = on_circle d o a; g = foot g d a b; f = foot f d a c",
    "a b c d = isquare a b c d; o = midpoint o a c; mark equal a b b c c d d a",
]


def programs() -> list[str]:
    """Program texts: the JGEX problems, or :data:`BUILTIN` if the file is missing."""
    if not JGEX.exists():
        return BUILTIN
    from geoforge.problems import read_problems

    return [p.text for p in read_problems(JGEX)]


def scenes(n: int) -> tuple[list[Scene], int]:
    """``n`` realised scenes, cycling through the programs with seeds 0, 1, ...; also the
    number of realisations that failed and were skipped."""
    texts = [parse_program(t) for t in programs()]
    out: list[Scene] = []
    failed = 0
    k = 0
    while len(out) < n and k < 4 * n:
        try:
            out.append(realise(texts[k % len(texts)], seed=k // len(texts)))
        except GeoforgeError:
            failed += 1
        k += 1
    return out, failed


def naive(scene: Scene, size: int) -> bytes:
    """The baseline: a fresh pyplot figure per diagram, one artist per element."""
    fig = plt.figure(figsize=(size / 100, size / 100), dpi=100)
    ax = fig.gca()
    for group in scene.lines:
        p, q = scene.points[group[0]], scene.points[group[-1]]
        plt.plot([p[0], q[0]], [p[1], q[1]], color="black", linewidth=1)
    for c in scene.circles:
        ax.add_patch(plt.Circle(tuple(c.center), c.radius, fill=False, color="black"))
    for name, p in scene.points.items():
        plt.plot(p[0], p[1], "ko", markersize=3)
        plt.text(p[0], p[1], f" {name}", fontsize=11)
    ax.set_aspect("equal")
    ax.axis("off")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def _ms(f: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    f(*args)
    return (time.perf_counter() - start) * 1000


def run(n: int, size: int) -> dict[str, object]:
    """Time both renderers on ``n`` scenes, interleaved; ms/diagram statistics."""
    found, failed = scenes(n)
    render(found[0], size)
    naive(found[0], size)
    ours, base, plan = [], [], []
    for scene in found:
        ours.append(_ms(render, scene, size))
        base.append(_ms(naive, scene, size))
        plan.append(_ms(layout, scene, size))

    def stats(xs: list[float]) -> dict[str, float]:
        return {"mean": round(statistics.fmean(xs), 2), "median": round(statistics.median(xs), 2)}

    return {
        "scenes": len(found),
        "failed_realisations": failed,
        "source": str(JGEX.resolve()) if JGEX.exists() else "built-in programs",
        "size": size,
        "ours_ms": stats(ours),
        "ours_layout_ms": stats(plan),
        "naive_ms": stats(base),
        "speedup_mean": round(statistics.fmean(base) / statistics.fmean(ours), 2),
        "speedup_median": round(statistics.median(base) / statistics.median(ours), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="number of diagrams (default 200)")
    parser.add_argument("--size", type=int, default=448, help="image side in pixels")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    result = run(args.n, args.size)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['scenes']} diagrams, {args.size} px, from {result['source']}")
    print(f"{'renderer':<28}{'mean ms':>10}{'median ms':>12}")
    for name, key in (
        ("geoforge.render", "ours_ms"),
        ("  of which layout", "ours_layout_ms"),
        ("naive matplotlib", "naive_ms"),
    ):
        s = json.loads(json.dumps(result[key]))
        print(f"{name:<28}{s['mean']:>10.2f}{s['median']:>12.2f}")
    print(f"{'speedup (naive / ours)':<28}{result['speedup_mean']:>9.2f}x{result['speedup_median']:>11.2f}x")


if __name__ == "__main__":
    main()
