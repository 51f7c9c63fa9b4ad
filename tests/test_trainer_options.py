"""Trainer options researchers expect (issue 15): ``--device auto`` and bf16 by default where the
GPU supports it, ``--grad-checkpointing`` (same gradients, blocks run twice), ``--compile``
(same losses as eager, the compiling first step timed apart) and the per-step timings in the
log. The shared corpus and runs are in tests/trainer_support.py."""

from __future__ import annotations

import copy
import statistics
from contextlib import nullcontext
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

import typer  # noqa: E402
from geoforge_train import distributed  # noqa: E402
from geoforge_train.data import NegativeUse, collate  # noqa: E402
from geoforge_train.distributed import resolve_device, resolve_precision, transformer_blocks  # noqa: E402
from geoforge_train.loss import HardNegativeClipLoss  # noqa: E402
from geoforge_train.models import create_model  # noqa: E402
from geoforge_train.train import TrainConfig, _step, train  # noqa: E402
from trainer_support import CPU, _cli, _dataset, _log, _one_line_error  # noqa: E402

from geoforge.cli.app import app  # noqa: E402
from geoforge.errors import UsageError  # noqa: E402

pytest_plugins = ["trainer_support"]


def _option_defaults(command: str) -> dict[str, object]:
    group, name = command.split()
    click = typer.main.get_command(app).commands[group].commands[name]  # type: ignore[attr-defined]
    return {p.name: p.default for p in click.params}


# --- device and precision ---------------------------------------------------------------------


def test_device_and_precision_default_to_auto_in_train_and_eval() -> None:
    train_defaults = _option_defaults("train mmclip")
    assert train_defaults["device"] == "auto" and train_defaults["precision"] == "auto"
    assert _option_defaults("eval mmclip")["device"] == "auto"
    assert TrainConfig(data="d", out="o").device == "auto"


def test_auto_is_cuda_with_bf16_where_supported_and_cpu_with_fp32_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    cuda = torch.device("cuda", 0)
    for supported, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert resolve_precision("auto", cuda) == expected
        assert resolve_precision("fp32", cuda) == "fp32"  # --precision still overrides
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


def test_a_bad_precision_or_device_is_refused_by_name() -> None:
    with pytest.raises(UsageError, match=r"--precision fp16: expected auto, fp32, bf16"):
        TrainConfig(data="d", out="o", precision="fp16").check()
    with pytest.raises(UsageError, match=r"--device tpu: expected auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")


def test_the_summary_names_the_device_and_precision_auto_chose(caption_corpus: Path, tmp_path: Path) -> None:
    summary = train(
        TrainConfig(data=str(caption_corpus), out=str(tmp_path / "run"), batch_size=2, max_steps=2)
    )
    assert summary["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")
    expected = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    assert summary["precision"] == expected
    rows = _log(tmp_path / "run")
    assert summary["first_step_seconds"] == pytest.approx(rows[0]["step_seconds"], abs=1e-3)
    assert summary["step_seconds"] == pytest.approx(rows[1]["step_seconds"], abs=1e-3)


# --- gradient checkpointing -------------------------------------------------------------------


def test_grad_checkpointing_gives_the_same_gradients_and_recomputes_every_block(corpus: Path) -> None:
    """One fp32 step of geoforge-tiny with 2 caption and 1 image negatives per sample, with and
    without open_clip's set_grad_checkpointing: the same loss and gradients, and each
    transformer block starts twice per encoding with it (forward, then again in backward)."""
    torch.manual_seed(0)
    model, _, _ = create_model("geoforge-tiny", None, CPU)
    dataset = _dataset(corpus, NegativeUse(("caption",), 2, 1))
    batch = collate([dataset[i] for i in range(2)])
    assert int(batch["neg_text_mask"].sum()) == 4 and int(batch["neg_image_mask"].sum()) == 2
    losses, grads, calls = [], [], []
    for checkpointing in (False, True):
        m = copy.deepcopy(model)
        m.set_grad_checkpointing(checkpointing)
        counts = [0]
        blocks = transformer_blocks(m)
        assert len(blocks) == 8  # 4 per tower
        for block in blocks:
            block.register_forward_pre_hook(lambda *_, c=counts: c.__setitem__(0, c[0] + 1))
        optimizer = torch.optim.SGD(m.parameters(), lr=0.0)
        losses.append(float(_step(m, [batch], HardNegativeClipLoss(), optimizer, CPU, nullcontext(), 1)))
        grads.append({n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
        calls.append(counts[0])
    assert calls == [8, 16]
    assert losses[0] == losses[1]
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == len(list(model.parameters()))
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-6, atol=1e-9, msg=name)


# --- step timings and compile -----------------------------------------------------------------


def test_each_row_has_its_step_time_and_the_rate_leaves_out_the_first_step(single_run: Path) -> None:
    rows = _log(single_run)
    seconds = [r["step_seconds"] for r in rows]
    assert all(s > 0 for s in seconds)
    assert rows[0]["samples_per_s"] == pytest.approx(8 / seconds[0], rel=1e-2)
    for i in range(1, len(rows)):  # global batch 8; the rate of steps 2..i+1
        assert rows[i]["samples_per_s"] == pytest.approx(8 * i / sum(seconds[1 : i + 1]), rel=1e-2)


@pytest.mark.slow
def test_compile_trains_with_the_losses_of_eager_and_times_the_first_step_apart(
    caption_corpus: Path, tmp_path: Path
) -> None:
    """torch.compile (inductor on the CPU): about 45 s per graph on 2 cores, so slow."""
    args = dict(data=str(caption_corpus), batch_size=2, epochs=2, max_steps=3)
    args |= dict(k_text=1, text_negatives=("caption",))
    eager = train(TrainConfig(out=str(tmp_path / "eager"), **args))  # type: ignore[arg-type]
    compiled = train(TrainConfig(out=str(tmp_path / "compiled"), compile=True, **args))  # type: ignore[arg-type]
    a, b = _log(tmp_path / "eager"), _log(tmp_path / "compiled")
    diffs = [abs(x["loss"] - y["loss"]) for x, y in zip(a, b, strict=True)]
    print(
        f"compile vs eager: loss diffs {diffs}; first step {compiled['first_step_seconds']} s vs "
        f"{eager['first_step_seconds']} s, then {compiled['step_seconds']} vs {eager['step_seconds']} s"
    )
    assert len(diffs) == 3 and max(diffs) <= 1e-5  # inductor reorders float32 sums (3.6e-7 seen)
    assert compiled["first_step_seconds"] > 5 * statistics.median([r["step_seconds"] for r in b[1:]])


# --- one-line errors --------------------------------------------------------------------------


def test_fsdp_on_one_process_is_a_one_line_usage_error(caption_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--fsdp shards the model across ranks"):
        train(TrainConfig(data=str(caption_corpus), out=str(tmp_path / "run"), fsdp=True))
    line = _one_line_error(
        _cli("train", "mmclip", "--data", caption_corpus, "--out", tmp_path / "r", "--fsdp")
    )
    assert "launch it with torchrun" in line


def test_fsdp_needs_open_clip_transformer_blocks() -> None:
    with pytest.raises(UsageError, match="--fsdp: this model has no open_clip transformer blocks"):
        distributed.wrap(torch.nn.Linear(2, 2), distributed.Dist(0, 2, 0), CPU, True, "fp32")
