"""Checkpoint retention: ``--save-total-limit N`` keeps the newest N step files of a
``train mmclip`` run and never the one ``latest.pt`` or ``final.pt`` points at."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from geoforge_train.models import prune_checkpoints  # noqa: E402
from geoforge_train.train import TrainConfig, train  # noqa: E402
from trainer_support import _recipe  # noqa: E402

from geoforge.errors import UsageError  # noqa: E402
from geoforge.generate import generate_corpus  # noqa: E402


def _steps(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").glob("step-*.pt"))


def test_pruning_keeps_the_newest_and_the_pointed_at_checkpoints(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for step in (1, 2, 3, 4, 1000000):
        (folder / f"step-{step:06d}.pt").write_bytes(b"x")
    os.symlink("step-000002.pt", folder / "latest.pt")  # a resumed run's pointer, not yet moved
    assert prune_checkpoints(tmp_path, None) == []
    deleted = prune_checkpoints(tmp_path, 2)
    assert [p.name for p in deleted] == ["step-000001.pt", "step-000003.pt"]
    assert _steps(tmp_path) == ["step-000002.pt", "step-000004.pt", "step-1000000.pt"]


def test_a_run_with_save_total_limit_keeps_its_newest_checkpoints(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    generate_corpus(_recipe(), corpus, n=4, seed=0)
    config = TrainConfig(
        data=str(corpus), out=str(tmp_path / "run"), epochs=3, batch_size=4, warmup=1, device="cpu"
    )
    with pytest.raises(UsageError, match=r"^--save-total-limit 0: keep at least 1 checkpoint$"):
        train(replace(config, save_total_limit=0))
    train(replace(config, save_every=1, save_total_limit=2))
    out = tmp_path / "run"
    assert _steps(out) == ["step-000002.pt", "step-000003.pt"]
    assert os.readlink(out / "checkpoints" / "final.pt") == "step-000003.pt"
    assert os.readlink(out / "checkpoints" / "latest.pt") == "step-000003.pt"


def test_an_extended_resume_prunes_the_old_final_checkpoint(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    generate_corpus(_recipe(), corpus, n=4, seed=0)
    out = tmp_path / "run"
    config = TrainConfig(
        data=str(corpus), out=str(out), epochs=2, batch_size=4, warmup=1, device="cpu", save_total_limit=2
    )
    train(config)
    assert _steps(out) == ["step-000002.pt"]
    # Two more epochs, saving every step: the last save is the final step, and the old
    # final.pt target is the oldest once final.pt moves.
    train(replace(config, epochs=4, save_every=1, resume=True))
    assert _steps(out) == ["step-000003.pt", "step-000004.pt"]
    assert os.readlink(out / "checkpoints" / "final.pt") == "step-000004.pt"
