"""The MMCLIP ablation (experiments/ablation.py): per-sample scores from the evaluation, the
intervals of experiments/ablation_stats.py, the goal verdict of experiments/ablation_table.py, and
the smoke path of both sizes end to end (slow)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from geoforge_train.data import CorpusIndex, HardNegativeDataset, NegativeUse, Transform  # noqa: E402
from geoforge_train.evaluate import evaluate, load  # noqa: E402
from trainer_support import CPU, ROOT  # noqa: E402

sys.path.insert(0, str(ROOT / "experiments"))
import ablation_stats as stats  # noqa: E402
import ablation_table  # noqa: E402

pytest_plugins = ["trainer_support"]


def test_per_sample_scores_give_back_the_summary_and_score_captions_on_the_next_image(corpus: Path) -> None:
    model = load("untrained:geoforge-tiny", CPU)
    result = evaluate(model, str(corpus), CPU, batch_size=5, per_sample=True)
    records = result["per_sample"]
    assert [r["key"] for r in records] == [f"{i:08d}" for i in range(24)]
    for direction in ("image_to_caption", "caption_to_image"):
        for kind, summary in result[direction]["kinds"].items():
            rows = [r[direction][kind] for r in records if kind in r.get(direction, {})]
            assert len(rows) == summary["samples"]
            assert np.mean([pos > max(negs) for pos, negs in rows]) == pytest.approx(summary["accuracy"])
            assert np.mean([pos > s for pos, negs in rows for s in negs]) == pytest.approx(
                summary["pairwise"]
            )
    # The blind control: sample i's caption and caption negatives against image i + 1.
    use = NegativeUse(("caption", "retrieval"), 64, 0)
    data = HardNegativeDataset(
        CorpusIndex.build(corpus), model.tokenizer, Transform.from_cfg(model.preprocess), use
    )
    with torch.no_grad():
        for i in (0, 23):
            item, other = data[i], data[(i + 1) % 24]
            img = model.model.encode_image(other["image"][None], normalize=True)[0]
            txt = model.model.encode_text(item["text"][None], normalize=True)[0]
            negs = model.model.encode_text(item["neg_text"][item["neg_text_mask"]], normalize=True) @ img
            scored = records[i]["image_to_caption_other_image"]
            assert sum(len(v[1]) for v in scored.values()) == len(negs)
            for pos, values in scored.values():
                assert pos == pytest.approx(float(img @ txt), abs=1e-5)
                assert all(min(abs(float(n) - v) for n in negs) < 1e-5 for v in values)
    assert "per_sample" not in evaluate(model, str(corpus), CPU, limit=3)


def test_t_quantile_matches_the_published_table() -> None:
    # Two-sided 95% points of Student's t (Abramowitz & Stegun, Table 26.10).
    for df, t in ((1, 12.706), (2, 4.303), (3, 3.182), (10, 2.228), (30, 2.042), (120, 1.980)):
        assert stats.t_quantile(df) == pytest.approx(t, abs=1e-3)
    assert stats.t_quantile(10.9) == stats.t_quantile(10)  # rounded down: wider, never narrower
    assert stats.t_quantile(math.inf) == pytest.approx(1.962, abs=1e-3)
    with pytest.raises(ValueError, match=r"df=0\.5"):
        stats.t_quantile(0.5)


def _records(outcomes: dict[str, list[tuple[float, list[float]]]]) -> list[dict[str, object]]:
    """Per-sample records with one direction, ``image_to_caption``, from per-kind score lists."""
    n = len(next(iter(outcomes.values())))
    return [
        {"key": str(i), "image_to_caption": {k: v[i] for k, v in outcomes.items() if v[i]}} for i in range(n)
    ]


def test_ratio_counts_accuracy_pairs_and_chance_per_kind() -> None:
    records = _records(
        {
            "rules": [(0.9, [0.1, 0.2]), (0.5, [0.6, 0.1]), (0.3, [0.4, 0.5])],
            "retrieval": [(0.9, [0.95]), (0.5, [0.1]), ()],  # sample 2 has none of this kind
        }
    )
    kinds = ["retrieval", "rules"]
    acc = stats.ratio(records, "image_to_caption", kinds, "accuracy")
    assert acc.num.tolist() == [[0, 1], [1, 0], [0, 0]] and acc.den.tolist() == [[1, 1], [1, 1], [0, 1]]
    assert acc.value() == pytest.approx((1 / 2 + 1 / 3) / 2)
    pairs = stats.ratio(records, "image_to_caption", kinds, "pairwise")
    assert pairs.value() == pytest.approx((1 / 2 + 3 / 6) / 2)
    chance = stats.ratio(records, "image_to_caption", kinds, "chance")
    assert chance.value() == pytest.approx((1 / 2 + 1 / 3) / 2)
    weights = np.array([[3.0, 0, 0], [0, 0, 3.0]])  # all sample 0; all sample 2 (no retrieval)
    assert acc.value(weights).tolist() == pytest.approx([(0 + 1) / 2, 0.0])
    with pytest.raises(ValueError, match="what='recall'"):
        stats.ratio(records, "image_to_caption", kinds, "recall")


def test_interval_without_seed_spread_is_the_bootstrap_standard_error_of_a_proportion() -> None:
    n, p = 400, 0.3
    hits = np.zeros((n, 1))
    hits[: int(n * p)] = 1
    r = stats.Ratio(hits, np.ones((n, 1)))
    w = stats.bootstrap_weights(n)
    assert w.shape == (stats.REPLICATES, n) and (w.sum(1) == n).all()
    iv = stats.row_interval([p] * 3, [r.value(w)] * 3, stats.pooled_seed_variance({"a": [p] * 3}))
    se = math.sqrt(p * (1 - p) / n)  # 0.0229
    assert iv.seed_sd == 0 and iv.boot_sd == pytest.approx(se, rel=0.05) and math.isinf(iv.df)
    assert (iv.high - iv.low) / 2 == pytest.approx(1.9623 * iv.boot_sd, rel=1e-4)
    assert iv.mean == pytest.approx(p)


def test_interval_without_sampling_noise_is_t_on_the_pooled_seed_spread() -> None:
    points = {"a": [0.2, 0.3, 0.4], "b": [0.5, 0.5, 0.8]}
    var, df = stats.pooled_seed_variance(points)
    assert (var, df) == (pytest.approx((0.02 + 0.06) / 4), 4)
    flat = [np.full(stats.REPLICATES, v) for v in points["a"]]  # no sampling noise
    iv = stats.row_interval(points["a"], flat, (var, df))
    assert iv.df == pytest.approx(4) and iv.boot_sd < 1e-12
    assert iv.low == pytest.approx(0.3 - 2.7764 * math.sqrt(0.02 / 3), abs=1e-4)
    diff = stats.difference_interval(
        (points["b"], [np.full(stats.REPLICATES, v) for v in points["b"]]), (points["a"], flat), (var, df)
    )
    assert diff.mean == pytest.approx(0.3)
    assert diff.high - diff.mean == pytest.approx(2.7764 * math.sqrt(0.02 * (2 / 3)), abs=1e-4)


def test_difference_of_two_models_with_the_same_outcomes_is_exactly_zero() -> None:
    rng = np.random.default_rng(1)
    r = stats.Ratio(rng.integers(0, 2, (300, 2)).astype(float), np.ones((300, 2)))
    w = stats.bootstrap_weights(300)
    same = ([r.value()] * 2, [r.value(w)] * 2)
    iv = stats.difference_interval(same, same, (0.0, 0))
    assert (iv.mean, iv.low, iv.high) == (0.0, 0.0, 0.0)


def _results(rows: dict[str, tuple[float, float]], n: int = 200) -> dict[str, object]:
    """A results file whose models win image→caption on a share ``rows[row][0]`` of the held-out
    samples and the paired image test on a share ``rows[row][1]`` (3 seeds, each one sample
    apart), with the captions at chance against another sample's image."""
    per_sample, runs, metrics = {}, {}, {}
    for row, (i2c, paired) in rows.items():
        for seed in (0, 1, 2) if row != "untrained" else (None,):
            name = row if seed is None else f"{row}/s{seed}"
            shift = 0 if seed is None else seed
            per_sample[name] = [
                {
                    "key": f"{i:04d}",
                    "image_to_caption": {"rules": [1.0 if i + shift < i2c * n else 0.0, [0.5]]},
                    "image_to_caption_other_image": {"rules": [1.0 if i % 2 else 0.0, [0.5]]},
                    "caption_to_image": {"move_vertex": [1.0 if i + shift < paired * n else 0.0, [0.5]]},
                }
                for i in range(n)
            ]
            metrics[name] = {"r1_image_to_text": 0.01}
            if seed is not None:
                runs[name] = {
                    "row": row,
                    "seed": seed,
                    "loss_first10": 2.8,
                    "loss_last10": 2.0,
                    "wall_s": 9.0,
                }
    return {"per_sample": per_sample, "runs": runs, "metrics": metrics}


def test_goal_is_met_only_with_a_15_point_gain_a_paired_gain_and_blind_rows_at_chance() -> None:
    shares = {"untrained": (0.5, 0.5), "a": (0.3, 0.6), "b": (0.35, 0.6), "c": (0.4, 0.6), "d": (0.3, 0.7)}
    met = ablation_table.analyse(_results(shares | {"e": (0.5, 0.7)}))
    gain = met["goal"]["e_minus_a_i2c"]
    assert gain.mean == pytest.approx(0.2) and gain.low > 0
    assert met["goal"]["d_minus_a_paired"].mean == pytest.approx(0.1)
    assert met["chance"]["blind"] == 0.5 and met["chance"]["paired"] == 0.5
    assert met["goal"]["d_above_a_clearly"]  # (d) wins a superset of (a)'s pairs: a clear gain
    assert list(met["goal"]["blind_within_chance"]) == ["a", "b", "c", "d", "e"]
    assert all(met["goal"]["blind_within_chance"].values()) and met["goal"]["met"]
    short = ablation_table.analyse(_results(shares | {"e": (0.4, 0.7)}))
    assert short["goal"]["e_minus_a_i2c"].mean == pytest.approx(0.1)
    assert not short["goal"]["e_minus_a_met"] and not short["goal"]["met"]


def _smoke(size: str, out: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "experiments/ablation.py", "--size", size, "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "## Goal" in proc.stdout and (out / "results.md").read_text() == proc.stdout.rstrip("\n") + "\n"
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("size", ["cpu", "gpu"])
def test_the_smoke_path_of_each_size_runs_every_row_and_seed_and_writes_the_table(
    size: str, tmp_path: Path
) -> None:
    results = _smoke(size, tmp_path / "out")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    assert results["commit"]["head"] == head.strip()
    assert {c["git_sha"] for c in results["corpora"].values()} == {head.strip()}
    assert sorted(results["runs"]) == [f"{r}/s{s}" for r in "abcde" for s in (0, 1, 2)]
    assert {r["summary"]["steps"] for r in results["runs"].values()} == {2}
    assert len(results["per_sample"]) == 16 and {len(v) for v in results["per_sample"].values()} == {16}
    workers = {"cpu": "0", "gpu": "2"}[size]
    trains = [c for c in results["commands"] if " train mmclip " in c]
    assert len(trains) == 15 and all(f"--data-workers {workers} " in c for c in trains)
    again = subprocess.run(
        [
            sys.executable,
            "experiments/ablation.py",
            "--size",
            size,
            "--smoke",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "is not empty" in again.stderr
