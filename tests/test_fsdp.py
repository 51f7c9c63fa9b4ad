"""FSDP2 (``train mmclip --fsdp``, issue 14): two gloo ranks with the towers sharded by
``fully_shard`` take the steps of DDP (the shared torchrun run of tests/trainer_support.py, same
corpus, seed, global batch, hard negatives and augmentation), write the checkpoint DDP writes,
and resume."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from geoforge_train.evaluate import load  # noqa: E402
from trainer_support import (  # noqa: E402
    CPU,
    GEOFORGE,
    LOSS_TOL,
    RESUME_TOL,
    RUN_ARGS,
    STEPS,
    TORCHRUN,
    WEIGHT_TOL,
    _env,
    _log,
    _max_diff,
    _ok,
)

pytest_plugins = ["trainer_support"]


def _torchrun(corpus: Path, run: Path, *extra: str) -> None:
    cmd = [str(TORCHRUN), "--nproc-per-node", "2", "--standalone", str(GEOFORGE), "train", "mmclip"]
    cmd += ["--data", str(corpus), "--out", str(run), "--batch-size", "4", *RUN_ARGS, *extra]
    _ok(subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=_env()))


@pytest.fixture(scope="module")
def fsdp_run(corpus: Path, torchrun_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared torchrun run's command with --fsdp (after it, not beside it: 2 cores)."""
    run = tmp_path_factory.mktemp("fsdp") / "run"
    _torchrun(corpus, run, "--fsdp")
    return run


def test_fsdp_two_ranks_log_the_losses_and_weights_of_ddp(torchrun_run: Path, fsdp_run: Path) -> None:
    ddp, fsdp = _log(torchrun_run), _log(fsdp_run)
    assert [r["step"] for r in fsdp] == [r["step"] for r in ddp] == list(range(1, STEPS + 1))
    loss_diff = max(abs(a["loss"] - b["loss"]) for a, b in zip(ddp, fsdp, strict=True))
    weights = [
        torch.load(r / "checkpoints" / "final.pt", weights_only=True) for r in (torchrun_run, fsdp_run)
    ]
    weight_diff = _max_diff(weights[0]["model"], weights[1]["model"])
    print(
        f"FSDP2 vs DDP over {STEPS} steps: loss max diff {loss_diff:.3g}, weight max diff {weight_diff:.3g}"
    )
    assert loss_diff <= LOSS_TOL, [(a["loss"], b["loss"]) for a, b in zip(ddp, fsdp)]
    assert [r["lr"] for r in fsdp] == [r["lr"] for r in ddp]
    assert weight_diff <= WEIGHT_TOL


def test_an_fsdp_checkpoint_is_the_file_ddp_writes(torchrun_run: Path, fsdp_run: Path) -> None:
    """Gathered whole on rank 0: the same keys, shapes and optimizer layout, so eval, export
    and --resume with or without --fsdp read it."""
    ddp, fsdp = (
        torch.load(r / "checkpoints" / "step-000003.pt", weights_only=True) for r in (torchrun_run, fsdp_run)
    )
    assert {k: v.shape for k, v in fsdp["model"].items()} == {k: v.shape for k, v in ddp["model"].items()}
    assert fsdp["optimizer"]["param_groups"] == ddp["optimizer"]["param_groups"]
    assert fsdp["optimizer"]["state"].keys() == ddp["optimizer"]["state"].keys()
    for i, state in ddp["optimizer"]["state"].items():
        assert int(fsdp["optimizer"]["state"][i]["step"]) == int(state["step"]) == 3
        for key in ("exp_avg", "exp_avg_sq"):
            assert fsdp["optimizer"]["state"][i][key].shape == state[key].shape
            torch.testing.assert_close(fsdp["optimizer"]["state"][i][key], state[key], rtol=1e-4, atol=1e-7)
    assert fsdp["config"]["fsdp"] is True and ddp["config"]["fsdp"] is False
    loaded = load(str(fsdp_run), CPU)  # eval's loader: the final checkpoint, whole
    assert _max_diff(loaded.model.state_dict(), _final(fsdp_run)) == 0


def _checkpoint(run: Path, name: str) -> dict[str, object]:
    return torch.load(run / "checkpoints" / name, weights_only=True)


def _final(run: Path) -> dict[str, torch.Tensor]:
    return _checkpoint(run, "final.pt")["model"]  # type: ignore[return-value]


@pytest.mark.slow
def test_fsdp_resume_from_step_3_replays_steps_4_to_6(corpus: Path, fsdp_run: Path, tmp_path: Path) -> None:
    """The optimizer state goes back into its shards (set_optimizer_state_dict)."""
    run = tmp_path / "run"
    shutil.copytree(fsdp_run, run)
    ckpts = run / "checkpoints"
    shutil.copy(ckpts / "step-000003.pt", ckpts / "latest.pt")
    for name in ("final.pt", "step-000006.pt"):
        (ckpts / name).unlink()
    _torchrun(corpus, run, "--fsdp", "--resume")
    unbroken, resumed = _log(fsdp_run), _log(run)
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(unbroken[3:], resumed[3:])) <= RESUME_TOL
    assert _max_diff(_final(fsdp_run), _final(run)) <= RESUME_TOL
