"""The data-path benchmarks run on the CPU: ``benchmarks/gpu_h200.py --smoke`` goes through every
phase but ``compiled``, its end-to-end phase included (generate, cache, train from the shards on
both data paths, ratios to the synthetic phases), and ``benchmarks/loader_speed.py`` measures
both data paths of the trainer. Both slow (a minute or more each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("open_clip")

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_gpu_h200_smoke_trains_end_to_end_from_generated_shards_on_both_data_paths(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    proc = _run("benchmarks/gpu_h200.py", "--smoke", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    phases = result["phases"]
    assert [name for name in phases] == ["eager", "negatives", "end_to_end", "open_clip"]
    assert not [name for name, p in phases.items() if "error" in p or "skipped" in p]
    e2e = phases["end_to_end"]
    assert e2e["samples"] == 16 and e2e["generate"]["samples_per_s"] > 0
    assert e2e["cache"]["size"] == 160  # geoforge-tiny's input size
    runs = {"in_batch_cache": 0, "in_batch_decoded": 0, "negatives_cache": 2, "negatives_decoded": 2}
    for key, k in runs.items():
        run = e2e[key]
        synthetic = phases["eager" if k == 0 else "negatives"]
        assert run["negatives_per_sample"] == {"text": k, "image": k}
        assert run["batch"] == synthetic["batch"] and run["timed_steps"] == 3
        assert run["synthetic_samples_per_s"] == synthetic["samples_per_s"]
        assert run["ratio_to_synthetic"] == round(run["samples_per_s"] / synthetic["samples_per_s"], 3)
    assert result["end_to_end_over_synthetic"] == {k: e2e[k]["ratio_to_synthetic"] for k in runs}


@pytest.mark.slow
def test_loader_speed_reads_the_cache_faster_than_it_decodes() -> None:
    proc = _run(
        *("benchmarks/loader_speed.py", "--model", "geoforge-tiny", "--n", 8, "--k-image", 3, "--k-text", 2),
        *("--batch", 4, "--batches", 4, "--warmup", 1, "--workers", 1, "--rounds", 1),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["input_px"] == 160 and result["k_image"] == 3
    decoded, cached = result["decoded"], result["cache"]
    assert cached["in_process"] > 2 * decoded["in_process"]  # about 7× on a quiet machine
    for part in (decoded, cached):
        assert part["workers_1"]["per_worker"] == part["workers_1"]["samples_per_s"] > 0
        assert part["host_prediction"]["samples_per_s"] == round(16 * part["workers_1"]["per_worker"], 1)
