"""Build results.md for experiments/ablation_cpu.sh from its JSON outputs.

Usage: python experiments/ablation_table.py OUT

Reads OUT/eval.json (the merged output of ``geoforge eval mmclip --json``), OUT/blind.json
(experiments/blind_check.py, optional), OUT/runs/*/summary.json
(``geoforge train mmclip --json``), OUT/runs/*/flags.txt, OUT/timings.tsv and OUT/settings.tsv, and
writes OUT/results.md: one row per model, image→caption hard-negative accuracy overall and per
kind, caption→image overall, in-batch R@1 and training seconds, then the phase timings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROWS = [
    ("untrained", "untrained:geoforge-tiny", "random init (seed 0), no training"),
    ("a", "runs/a", "in-batch only"),
    ("b", "runs/b", "+ retrieval caption negatives"),
    ("c", "runs/c", "+ rule caption negatives"),
    ("d", "runs/d", "+ image negatives"),
    ("e", "runs/e", "all of them"),
]


def model_key(name: str, out: Path) -> str:
    """The row key of an evaluated model: ``untrained:...`` or its run directory under OUT."""
    return "untrained:geoforge-tiny" if name.startswith("untrained:") else str(Path(name).relative_to(out))


def train_seconds(summary: dict[str, object], run: Path) -> str:
    """Seconds of the training loop (from the run's summary) and of the whole command."""
    if "seconds" not in summary:
        return "–"
    wall = run / "wall_seconds.txt"
    return f"{float(summary['seconds']):.0f} / " + (wall.read_text().strip() if wall.is_file() else "–")


def loss_curve(log: Path) -> str:
    """Mean training loss over the first, middle and last 10 steps of a run's log.jsonl."""
    if not log.is_file():
        return "–"
    losses = [json.loads(line)["loss"] for line in log.read_text().splitlines() if line.strip()]
    if not losses:
        return "–"
    mid = len(losses) // 2

    def mean(xs: list[float]) -> str:
        return f"{sum(xs) / len(xs):.2f}"

    return f"{mean(losses[:10])} → {mean(losses[max(0, mid - 5) : mid + 5])} → {mean(losses[-10:])}"


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def main(out: Path) -> None:
    results = json.loads((out / "eval.json").read_text())
    by_model = {}
    for r in results:
        by_model[model_key(str(r["model"]), out)] = r
    blind_file = out / "blind.json"
    blind = {}
    if blind_file.is_file():
        for r in json.loads(blind_file.read_text()):
            blind[model_key(str(r["model"]), out)] = r
    i2t_kinds = sorted({k for r in results for k in r["image_to_caption"]["kinds"]})
    t2i_kinds = sorted({k for r in results for k in r["caption_to_image"]["kinds"]})
    settings = dict(
        line.split("\t", 1) for line in (out / "settings.tsv").read_text().splitlines() if "\t" in line
    )
    timings = [line.split("\t") for line in (out / "timings.tsv").read_text().splitlines() if line]

    head = (
        ["row", "training", "i→c overall"]
        + [f"i→c {k}" for k in i2t_kinds]
        + (["i→c overall, other image", "image-image cos"] if blind else [])
        + ["c→i overall"]
        + [f"c→i {k}" for k in t2i_kinds]
        + ["R@1 i→t", "R@1 t→i", "loss: first 10 → middle 10 → last 10 steps", "train s (loop / wall)"]
    )
    lines = [
        "# Hard-negative ablation of geoforge-tiny (CPU)",
        "",
        "Accuracy in percent on the held-out corpus: a sample counts when its positive beats every",
        "negative of that kind (`overall` is the mean over kinds). i→c: image→caption, c→i:",
        "caption→image. R@1: in-batch retrieval over the whole held-out set. *other image*: the",
        "same image→caption test with the image of another held-out sample (experiments/blind_check.py);",
        "accuracy that survives the wrong image is a text-only prior, not a reading of the figure.",
        "*image-image cos*: mean cosine between the image features of two different held-out",
        "samples (1.0: every figure is mapped to the same point). For reference, a loss of ln(batch)",
        "(2.77 for a batch of 16) is what a model that cannot tell the batch's pairs apart gets.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|",
    ]
    overall = {}
    for row, key, what in ROWS:
        r = by_model.get(key)
        if r is None:
            continue
        flags = what
        flag_file = out / key / "flags.txt"
        if flag_file.is_file() and flag_file.read_text().strip():
            flags += f" (`{flag_file.read_text().strip()}`)"
        summary_file = out / key / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        i2t, t2i = r["image_to_caption"], r["caption_to_image"]
        overall[row] = i2t["overall"]
        cells = (
            [row, flags, pct(i2t["overall"])]
            + [pct(i2t["kinds"].get(k, {}).get("accuracy")) for k in i2t_kinds]
            + (
                [
                    pct(blind[key]["overall"]["other"]) if key in blind else "–",
                    f"{blind[key]['image_cosine']:.4f}" if key in blind else "–",
                ]
                if blind
                else []
            )
            + [pct(t2i["overall"])]
            + [pct(t2i["kinds"].get(k, {}).get("accuracy")) for k in t2i_kinds]
            + [pct(r["r1_image_to_text"]), pct(r["r1_text_to_image"])]
            + [
                loss_curve(out / key / "log.jsonl"),
                train_seconds(summary, out / key),
            ]
        )
        lines.append("| " + " | ".join(cells) + " |")
    samples = {r["samples"] for r in results}
    lines += ["", f"Held-out samples: {', '.join(map(str, sorted(samples)))}."]
    if "a" in overall and "e" in overall:
        gap = 100 * (overall["e"] - overall["a"])
        verdict = "met" if gap >= 15 else f"missed by {15 - gap:.1f} points"
        lines.append(f"(e) − (a), image→caption overall: **{gap:+.1f} points** (goal ≥ +15: {verdict}).")
    lines += ["", "## Settings", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in settings.items()]
    lines += ["", "## Wall time", "", "| phase | seconds |", "|---|---:|"]
    lines += [f"| {p} | {s} |" for p, s in timings]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print((out / "results.md").read_text())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python experiments/ablation_table.py OUT")
    main(Path(sys.argv[1]))
