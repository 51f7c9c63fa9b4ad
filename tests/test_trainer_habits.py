"""Trainer habits open_clip users expect: a plain progress line every ``--log-every`` steps when
stdout is a pipe (nohup, SLURM, ``| cat``), several ``--data`` sources and brace patterns,
held-out evaluation with ``--val-data``/``--val-every`` in the log and TensorBoard, and
checkpoints written once (``latest.pt``/``final.pt`` link to the step's file) and loadable with
``weights_only=True``. The shared corpora are in tests/trainer_support.py."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from geoforge_train.data import CorpusIndex, DataError, shard_paths  # noqa: E402
from trainer_support import GEOFORGE, _env, _log, _ok  # noqa: E402

pytest_plugins = ["trainer_support"]

#: 4 steps of batch 4 (2 epochs of 8 samples), a line every 2 steps, evaluation on the
#: held-out corpus every 2 steps, a checkpoint every 2 steps.
STEPS, EVERY = 4, 2


@pytest.fixture(scope="module")
def habits_run(
    bare_corpus: Path, caption_corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``geoforge train mmclip ... | cat``: stdout is a pipe. Two corpora of 4 samples, one
    named by a brace pattern."""
    if not GEOFORGE.is_file():
        pytest.skip("no geoforge script next to the interpreter")
    out = tmp_path_factory.mktemp("habits") / "run"
    data = f"{bare_corpus}/shard-{{000000..000000}}.tar::{caption_corpus}"
    cmd = [str(GEOFORGE), "train", "mmclip", "--data", data, "--out", str(out), "--batch-size", "4"]
    cmd += ["--epochs", "2", "--warmup", "1", "--log-every", str(EVERY), "--save-every", str(EVERY)]
    cmd += ["--val-data", str(caption_corpus), "--val-every", str(EVERY)]
    proc = _ok(subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env()))
    return out, proc


def test_a_piped_run_prints_a_progress_line_every_log_every_steps(habits_run) -> None:  # type: ignore[no-untyped-def]
    _, proc = habits_run
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("step ")]
    assert [ln.split()[1] for ln in lines] == ["2/4", "4/4"], proc.stdout
    rows = _log(habits_run[0])
    for line, row in zip(lines, (rows[1], rows[3])):
        want = rf"step {row['step']}/4 \(\d+%\) epoch {row['epoch']} loss {row['loss']:.4f} lr .* samples/s"
        assert re.fullmatch(want, line), line
    assert "\x1b[" not in proc.stdout and "━" not in proc.stdout + proc.stderr  # no bar in a pipe


def test_held_out_metrics_every_val_every_steps_in_the_log_tensorboard_and_stdout(habits_run) -> None:  # type: ignore[no-untyped-def]
    out, proc = habits_run
    rows = _log(out)
    keys = ("val_image_to_caption", "val_caption_to_image", "val_r1_image_to_text", "val_r1_text_to_image")
    assert [r["step"] for r in rows if "val_samples" in r] == [2, 4]
    for row in rows:
        if "val_samples" in row:
            assert row["val_samples"] == 4
            assert row["val_caption_to_image"] is None  # the held-out corpus has no image negatives
            assert 0.0 <= row["val_image_to_caption"] <= 1.0 and 0.0 <= row["val_r1_image_to_text"] <= 1.0
        else:
            assert not set(keys) & row.keys()
    assert len([ln for ln in proc.stdout.splitlines() if ln.startswith("val at step ")]) == 2
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert "val/image_to_caption" in scalars and "val/caption_to_image" not in scalars
    assert [e.step for e in events.Scalars("val/r1_text_to_image")] == [2, 4]
    assert [e.value for e in events.Scalars("val/image_to_caption")] == pytest.approx(
        [r["val_image_to_caption"] for r in rows if "val_samples" in r]
    )


def test_a_run_keeps_one_copy_of_each_checkpoint(habits_run) -> None:  # type: ignore[no-untyped-def]
    out, _ = habits_run
    ckpts = out / "checkpoints"
    files = {p.name for p in ckpts.iterdir() if not p.is_symlink()}
    links = {p.name: os.readlink(p) for p in ckpts.iterdir() if p.is_symlink()}
    assert files == {"step-000002.pt", "step-000004.pt"}
    assert links == {"latest.pt": "step-000004.pt", "final.pt": "step-000004.pt"}
    state = torch.load(ckpts / "final.pt", weights_only=True)  # no pickled code needed
    assert state["step"] == STEPS and state["model_cfg"] == open_clip.get_model_config("geoforge-tiny")
    assert state["preprocess_cfg"] == {
        "size": [160, 160],
        "mode": "RGB",
        "mean": [1.0, 1.0, 1.0],
        "std": [0.5, 0.5, 0.5],
        "interpolation": "bicubic",
        "resize_mode": "longest",
        "fill_color": 255,
    }
    assert state["config"]["data"].endswith("captions") and "{000000..000000}" in state["config"]["data"]


def test_data_takes_brace_patterns_and_several_sources(
    bare_corpus: Path, caption_corpus: Path, tmp_path: Path
) -> None:
    spec = f"{bare_corpus}/shard-{{000000..000000}}.tar::{caption_corpus}"
    shard = "shard-000000.tar"
    assert shard_paths(spec) == [(bare_corpus / shard, None), (caption_corpus / shard, 4)]  # sizes.json's
    assert len(CorpusIndex.build(spec).samples) == 8
    (tmp_path / "c0").symlink_to(bare_corpus)
    (tmp_path / "c1").symlink_to(caption_corpus)
    assert len(CorpusIndex.build(f"{tmp_path}/c{{0..1}}").samples) == 8
    with pytest.raises(DataError, match=r"c7: no such corpus directory or shard"):
        CorpusIndex.build(f"{tmp_path}/c{{0,7}}")


def test_val_every_needs_val_data() -> None:
    from geoforge_train.train import TrainConfig

    from geoforge.errors import UsageError

    with pytest.raises(UsageError, match="--val-every 5 needs --val-data"):
        TrainConfig(data="d", out="o", val_every=5).check()


def test_resuming_the_finished_run_on_the_command_line_trains_and_writes_nothing(habits_run) -> None:  # type: ignore[no-untyped-def]
    out, proc = habits_run
    assert re.search(r"^trained 4 steps in ", proc.stdout, re.M), proc.stdout
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    cmd = [str(GEOFORGE), "train", "mmclip", *proc.args[3:], "--resume"]
    again = _ok(subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env()))
    assert again.stdout.strip() == f"nothing to train; checkpoint {out / 'checkpoints' / 'final.pt'}"
    assert "warning: the run already reached its last step, 4" in again.stderr
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()} == before
