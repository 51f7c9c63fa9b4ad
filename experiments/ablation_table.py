"""Tables and the goal verdict of experiments/ablation.py, from its one results file.

Usage: python experiments/ablation_table.py OUT/results.json   (writes OUT/results.md, prints it)

:func:`analyse` turns every model's per-sample scores into row means with 95% intervals
(experiments/ablation_stats.py: a bootstrap over held-out samples combined with the spread of the
training seeds), differences against (a), chance levels and the goal: (e) − (a) ≥ 15 points of
image→caption hard-negative accuracy with the interval's lower bound above 0, (d) > (a) on the
paired image test, and every row's blind accuracy (captions scored against another sample's image)
within its interval of chance. :func:`write` renders them as Markdown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from ablation_stats import (
    Interval,
    Ratio,
    bootstrap_weights,
    difference_interval,
    pooled_seed_variance,
    ratio,
    row_interval,
)

#: Row names and what each trains with (experiments/ablation.py's ROWS, plus the untrained model).
ROWS = {
    "untrained": "random init (seed 0), no training",
    "a": "in-batch only",
    "b": "+ retrieval caption negatives",
    "c": "+ rule caption negatives",
    "d": "+ image negatives",
    "e": "all of them",
}
#: Metrics: name → (per-sample direction, what, which kinds).
METRICS = {
    "i2c": ("image_to_caption", "accuracy", "caption"),
    "blind": ("image_to_caption_other_image", "accuracy", "caption"),
    "c2i": ("caption_to_image", "accuracy", "image"),
    "paired": ("caption_to_image", "pairwise", "image"),
}
GOAL_POINTS = 15.0


def _kinds(records: list[dict[str, object]], direction: str) -> list[str]:
    return sorted({k for r in records for k in r.get(direction, {})})  # type: ignore[attr-defined]


def analyse(results: dict[str, object]) -> dict[str, object]:
    """Intervals (:class:`ablation_stats.Interval`, in [0, 1]) by metric and row, per kind as
    ``METRIC:KIND``; ``diff`` by metric and row (row − (a)); ``seeds`` per-seed values; ``chance``
    by metric; ``goal``. Raises ValueError if the models were scored on different samples."""
    per_sample: dict[str, list[dict[str, object]]] = results["per_sample"]  # type: ignore[assignment]
    keys = [r["key"] for r in per_sample["untrained"]]
    for name, records in per_sample.items():
        if [r["key"] for r in records] != keys:
            raise ValueError(f"{name}: scored on other held-out samples than the untrained model")
    reference = per_sample["untrained"]
    kinds = {"caption": _kinds(reference, "image_to_caption"), "image": _kinds(reference, "caption_to_image")}
    metrics: dict[str, tuple[str, str, list[str]]] = {}
    for name, (direction, what, family) in METRICS.items():
        metrics[name] = (direction, what, kinds[family])
        metrics |= {f"{name}:{k}": (direction, what, [k]) for k in kinds[family]}
    members: dict[str, list[str]] = {"untrained": ["untrained"]}
    for name, run in results["runs"].items():  # type: ignore[attr-defined]
        members.setdefault(run["row"], []).append(name)
    rows = [row for row in ROWS if row in members]
    weights = bootstrap_weights(len(keys))
    out: dict[str, object] = {"intervals": {}, "diff": {}, "seeds": {}, "chance": {}, "samples": len(keys)}
    for metric, (direction, what, ks) in metrics.items():
        values: dict[str, tuple[list[float], list[np.ndarray]]] = {}
        for row in rows:
            ratios: list[Ratio] = [ratio(per_sample[m], direction, ks, what) for m in members[row]]
            values[row] = ([float(r.value()) for r in ratios], [r.value(weights) for r in ratios])  # type: ignore[misc]
        trained = {row: v[0] for row, v in values.items() if row != "untrained"}
        seed_var = pooled_seed_variance(trained)
        out["intervals"][metric] = {  # type: ignore[index]
            row: row_interval(*values[row], seed_var if row != "untrained" else (0.0, 0)) for row in rows
        }
        out["seeds"][metric] = trained | {"pooled_sd": float(np.sqrt(seed_var[0]))}  # type: ignore[index]
        out["diff"][metric] = {  # type: ignore[index]
            row: difference_interval(values[row], values["a"], seed_var) for row in trained if row != "a"
        }
        out["chance"][metric] = (  # type: ignore[index]
            0.5 if what == "pairwise" else float(ratio(reference, direction, ks, "chance").value())
        )
    out["goal"] = _goal(out)
    return out


def _goal(out: dict[str, object]) -> dict[str, object]:
    """The issue's three criteria, each with its numbers. The blind criterion is judged on the
    trained rows (a)–(e); ``d_above_a_paired`` compares means, ``d_above_a_clearly`` asks the
    interval's lower bound to be above 0 too."""
    diff, intervals = out["diff"], out["intervals"]
    gain: Interval = diff["i2c"]["e"]  # type: ignore[index]
    paired: Interval = diff["paired"]["d"]  # type: ignore[index]
    chance = out["chance"]["blind"]  # type: ignore[index]
    blind = {
        row: iv.contains(chance)
        for row, iv in intervals["blind"].items()  # type: ignore[index]
        if row != "untrained"
    }
    e_minus_a = 100 * gain.mean >= GOAL_POINTS and gain.low > 0
    return {
        "e_minus_a_i2c": gain,
        "e_minus_a_met": e_minus_a,
        "d_minus_a_paired": paired,
        "d_above_a_paired": paired.mean > 0,
        "d_above_a_clearly": paired.low > 0,
        "blind_within_chance": blind,
        "met": e_minus_a and paired.mean > 0 and all(blind.values()),
    }


def cell(iv: Interval, signed: bool = False) -> str:
    """``mean [low, high]`` in percent."""
    return f"{100 * iv.mean:{'+' if signed else ''}.1f} [{100 * iv.low:.1f}, {100 * iv.high:.1f}]"


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _head(cells: list[str]) -> list[str]:
    return [_line(cells), "|---|" + "---:|" * (len(cells) - 1)]


def _pct(values: list[float]) -> str:
    return ", ".join(f"{100 * v:.1f}" for v in values)


def render(results: dict[str, object], a: dict[str, object]) -> str:
    """The Markdown report of one results file and its :func:`analyse`."""
    iv, diff, seeds, chance = a["intervals"], a["diff"], a["seeds"], a["chance"]
    s, runs, goal = results["settings"], list(results["runs"].values()), a["goal"]
    caption_kinds = sorted(m.split(":")[1] for m in iv if m.startswith("i2c:"))
    image_kinds = sorted(m.split(":")[1] for m in iv if m.startswith("paired:"))
    lines = [
        f"# MMCLIP hard-negative ablation, size `{results['size']}`" + (" (smoke)" * results["smoke"]),
        "",
        f"`{s['model']}` trained from scratch with training seeds {', '.join(map(str, s['seeds']))} per "
        f"row, {s['steps']} steps × {s['batch']} on {s['n_train']:,} fresh positives (each seen "
        f"{s['epochs']:.1f} times), lr {s['lr']:g}, warmup {s['warmup']}; held-out corpus: "
        f"{a['samples']:,} positives from another seed. Percent, mean over seeds [95% interval: "
        "bootstrap over held-out samples combined with the seed spread, experiments/README.md].",
        "",
        *_head(
            [
                "row",
                "training",
                "image→caption",
                f"blind (chance {100 * chance['blind']:.1f})",
                "caption→image",
                "paired image test (chance 50.0)",
                "R@1 i→t",
                "loss, first → last 10",
                "s per run",
            ]
        ),
    ]
    for row in iv["i2c"]:
        members = [r for r in runs if r["row"] == row]
        names = [f"{row}/s{m['seed']}" for m in members] or [row]
        r1 = np.mean([results["metrics"][name]["r1_image_to_text"] for name in names])
        trained = ["–", "–"]
        if members:
            first, last = (np.mean([m[k] for m in members]) for k in ("loss_first10", "loss_last10"))
            trained = [f"{first:.2f} → {last:.2f}", f"{np.mean([m['wall_s'] for m in members]):.0f}"]
        metric_cells = [cell(iv[m][row]) for m in ("i2c", "blind", "c2i", "paired")]
        lines.append(_line([row, ROWS[row], *metric_cells, f"{100 * r1:.1f}", *trained]))
    lines += [
        "",
        "Per kind: image→caption accuracy with the sample's own image and with another's (blind), and "
        "the paired image test (share of (positive, image negative) pairs with s(T⁺, I⁺) > s(T⁺, I⁻)).",
        "",
        *_head(
            ["row"]
            + [f"{m} {k}" for m in ("i→c", "blind") for k in caption_kinds]
            + [f"paired {k}" for k in image_kinds]
        ),
    ]
    for row in iv["i2c"]:
        metrics = [f"{m}:{k}" for m in ("i2c", "blind") for k in caption_kinds]
        lines.append(
            _line([row] + [cell(iv[m][row]) for m in metrics + [f"paired:{k}" for k in image_kinds]])
        )
    lines += [
        "",
        "Differences against (a), points [95% interval, paired on held-out samples]:",
        "",
        *_head(
            ["row", "image→caption", "blind", "caption→image", "paired image test"]
            + [f"paired {k}" for k in image_kinds]
        ),
    ]
    for row in diff["i2c"]:
        metrics = ["i2c", "blind", "c2i", "paired"] + [f"paired:{k}" for k in image_kinds]
        lines.append(_line([f"({row}) − (a)"] + [cell(diff[m][row], signed=True) for m in metrics]))
    lines += ["", "Per seed, and the seed spread pooled over rows:", ""]
    lines += _head(["row", "image→caption per seed", "paired image test per seed"])
    lines += [
        _line([r, _pct(v), _pct(seeds["paired"][r])]) for r, v in seeds["i2c"].items() if r != "pooled_sd"
    ]
    lines.append(
        _line(["pooled sd", _pct([seeds["i2c"]["pooled_sd"]]), _pct([seeds["paired"]["pooled_sd"]])])
    )
    gain, paired = goal["e_minus_a_i2c"], goal["d_minus_a_paired"]
    blind_rows = ", ".join(f"({r}) {_yes(ok)}" for r, ok in goal["blind_within_chance"].items())
    untrained = iv["blind"]["untrained"]
    where = "within" if untrained.contains(chance["blind"]) else "outside"
    lines += [
        "",
        "## Goal",
        "",
        f"- (e) − (a), image→caption: **{cell(gain, signed=True)}** points; goal ≥ +{GOAL_POINTS:.0f} "
        f"with the lower bound above 0: {_yes(goal['e_minus_a_met'])}.",
        f"- (d) − (a), paired image test: **{cell(paired, signed=True)}** points; (d) > (a): "
        f"{_yes(goal['d_above_a_paired'])} (lower bound above 0: {_yes(goal['d_above_a_clearly'])}).",
        f"- Blind accuracy within its interval of chance ({100 * chance['blind']:.1f}): {blind_rows} "
        f"(the untrained reference, {cell(untrained)}, is {where} it).",
        f"- All three: {_yes(goal['met'])}.",
        "",
        *_corpora(results),
        "",
        "## Wall time",
        "",
        *_head(["phase", "s"]),
        *(_line([k, f"{v:.0f}"]) for k, v in results["timings"].items()),
        "",
        "## Commands",
        "",
        "```sh",
        *results["commands"],
        "```",
        "",
    ]
    return "\n".join(lines)


def _corpora(results: dict[str, object]) -> list[str]:
    """The commit, machine and the two corpora: who made them and what they hold."""
    head, dirty = results["commit"]["head"], results["commit"]["dirty"]  # type: ignore[index]
    m = results["machine"]
    where = f"{m['cores']} cores ({m['cpu']})" + (f", GPU {m['gpu']}" if "gpu" in m else "")  # type: ignore[index]
    lines = [
        "## Corpora and commit",
        "",
        f"HEAD `{head}`"
        + (f"; uncommitted changes in {', '.join(dirty)}" if dirty else ", clean")
        + f"; {where}, Python {m['python']}; device `{results['device']}`; started {results['started']}.",
        "",
        *_head(
            [
                "corpus",
                "positives",
                "seed",
                "made by commit",
                "negatives asked (image, caption, retrieval)",
                "accepted",
                "mean per sample",
                "s",
            ]
        ),
    ]
    for name, c in results["corpora"].items():  # type: ignore[attr-defined]
        asked = ", ".join(str(c["negatives_asked"][k]) for k in ("image", "caption", "retrieval"))
        accepted = ", ".join(f"{k.split(': ')[1]} {v:,}" for k, v in sorted(c["accepted"].items()))
        means = ", ".join(f"{k} {v}" for k, v in c["mean_per_sample"].items())
        row = [name, f"{c['positives']:,}", str(c["seed"]), f"`{c['git_sha'][:12]}`", asked, accepted, means]
        lines.append(_line([*row, f"{c['seconds']:.0f}"]))
    return lines


def write(results_file: Path) -> str:
    """Analyse ``results_file``, write ``results.md`` next to it and return its text."""
    results = json.loads(results_file.read_text())
    text = render(results, analyse(results))
    results_file.with_name("results.md").write_text(text)
    return text


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python experiments/ablation_table.py OUT/results.json")
    print(write(Path(sys.argv[1])))
