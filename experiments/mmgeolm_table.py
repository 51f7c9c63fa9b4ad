"""The results table of experiments/mmgeolm_towers.sh: per tower, perception accuracy, paired
accuracy on flipped questions, reasoning and overall accuracy on held-out Q&A, and perception
accuracy when each question is shown another sample's figure (the blind control), as the mean
and the sample standard deviation over seeds, then every run.

Usage: ``python experiments/mmgeolm_table.py OUT`` (prints Markdown).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

COLUMNS = (
    ("perception", lambda r: r["by_type"].get("perception")),
    ("paired (flipped)", lambda r: r["paired"]),
    ("flipped: positive", lambda r: r["flipped_positive"]),
    ("flipped: negative", lambda r: r["flipped_negative"]),
    ("reasoning", lambda r: r["by_type"].get("reasoning")),
    ("overall", lambda r: r["overall"]),
    ("perception, another figure", lambda r: r["blind"]),
)


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def main(out: Path) -> str:
    runs = {
        p.name.removesuffix(".eval.json"): json.loads(p.read_text())
        for p in sorted((out / "runs").glob("*.eval.json"))
    }
    for name, r in runs.items():
        blind = out / "runs" / f"{name}.blind.json"
        r["blind"] = json.loads(blind.read_text())["by_type"].get("perception") if blind.is_file() else None
    towers = sorted({name.rsplit("-s", 1)[0] for name in runs})
    lines = [
        "| tower | seeds | " + " | ".join(c for c, _ in COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(COLUMNS),
    ]
    for tower in towers:
        mine = [r for name, r in runs.items() if name.rsplit("-s", 1)[0] == tower]
        cells = [_spread([g["accuracy"] for r in mine if (g := get(r)) and g["n"]]) for _, get in COLUMNS]
        lines.append(f"| {tower} | {len(mine)} | " + " | ".join(cells) + " |")
    lines += ["", "| run | " + " | ".join(c for c, _ in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name, r in runs.items():
        cells = [
            f"{100 * g['accuracy']:.1f} (n={g['n']})" if (g := get(r)) and g["n"] else "-"
            for _, get in COLUMNS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(Path(sys.argv[1])))
