"""The MMCLIP trainer end to end (DESIGN.md, "Trainer"): ``train mmclip`` under torchrun matches
one process on the same global batch, ``--resume`` replays the unbroken run, gradient
accumulation keeps every negative and counts the logit scale once, the loss without negatives
is open_clip's ``ClipLoss``, the train transform never crops, evaluation, run outputs, and
one-line errors for bad input.

One tiny corpus with image, caption and retrieval negatives is generated once per session;
one single-process run and one two-rank torchrun run of six steps (two epochs, with
augmentation) are shared by the parity, resume and run-output tests.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import pytest
import tomllib

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

import numpy as np  # noqa: E402
import typer.main  # noqa: E402
from geoforge_train.data import (  # noqa: E402
    MEAN,
    STD,
    CorpusIndex,
    DataError,
    HardNegativeDataset,
    NegativeUse,
    Transform,
    collate,
    epoch_order,
)
from geoforge_train.evaluate import Loaded, evaluate, load  # noqa: E402
from geoforge_train.loss import HardNegativeClipLoss  # noqa: E402
from geoforge_train.models import CheckpointError, create_model  # noqa: E402
from geoforge_train.train import (  # noqa: E402
    TrainConfig,
    _negatives,
    _step,
    cosine_lambda,
    encode,
    train,
)
from PIL import Image, ImageDraw  # noqa: E402
from torch import nn  # noqa: E402

from geoforge.cli import app  # noqa: E402
from geoforge.errors import UsageError  # noqa: E402
from geoforge.generate import generate_corpus  # noqa: E402
from geoforge.negatives import NegativeConfig  # noqa: E402
from geoforge.sampler.recipe import recipe_from_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GEOFORGE, TORCHRUN = BIN / "geoforge", BIN / "torchrun"
CPU = torch.device("cpu")

#: The shared corpus: 24 samples in shards of 16 and 8, with 2 image, 3 caption and
#: 2 retrieval negatives asked per sample.
N, SHARD = 24, 16
#: The shared runs: 6 steps over 2 epochs of 3 global batches of 8, with augmentation,
#: 2 caption negatives and 1 image negative per sample, checkpoints every 3 steps.
LR, WARMUP, STEPS = 5e-4, 1, 6
RUN_ARGS = (
    *("--epochs", "2", "--max-steps", str(STEPS), "--save-every", "3", "--lr", str(LR)),
    *("--k-text", "2", "--k-image", "1", "--text-negatives", "caption"),
    *("--seed", "0", "--warmup", str(WARMUP), "--rotate", "5", "--downscale", "0.9"),
)
#: Loss parity of torchrun vs one process: the same sums in another order (float32).
LOSS_TOL = 1e-5
#: Final weights of torchrun vs one process after 6 AdamW steps at lr 5e-4. Adam divides
#: each gradient by its running RMS, so a reduction-order difference of ~1e-7 relative in
#: a near-zero gradient can move that weight by up to a fraction of lr per step; 1e-4 is
#: 0.2·lr, and 4× the largest difference seen (2.3e-5).
WEIGHT_TOL = 1e-4
#: A resumed run repeats the same computations in the same order.
RESUME_TOL = 1e-6


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEOFORGE_DEBUG", "WORLD_SIZE", "RANK")}
    env["PYTHONWARNINGS"] = "ignore::FutureWarning"  # torch's all_gather deprecation notice
    return env


def _cli(*args: object, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    if not GEOFORGE.is_file():
        pytest.skip(f"no geoforge script next to {sys.executable}")
    return subprocess.run(
        [str(GEOFORGE), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=_env()
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _one_line_error(proc: subprocess.CompletedProcess[str], status: int | None = 2) -> str:
    """The single stderr line of a failed command, checking the exit status and no traceback."""
    assert proc.returncode != 0, proc.stdout
    if status is not None:
        assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def _log(run: Path) -> list[dict[str, float]]:
    return [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def _records(corpus: Path) -> list[dict[str, object]]:
    """Each sample's metadata with its negatives record decoded, in corpus order."""
    out = []
    for shard in sorted(corpus.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar:
                if m.name.endswith(".json"):
                    meta = json.loads(tar.extractfile(m).read())  # type: ignore[union-attr]
                    meta["negatives"] = json.loads(meta.get("negatives") or "{}")
                    out.append(meta)
    return out


# --- shared corpus and runs ------------------------------------------------------------------


def _recipe():  # type: ignore[no-untyped-def]
    data = tomllib.loads((ROOT / "corpora" / "smoke.toml").read_text(encoding="utf-8"))
    data["corpus"]["shard_size"] = SHARD
    return recipe_from_dict(data, "smoke.toml")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trainer") / "corpus"
    generate_corpus(_recipe(), out, n=N, seed=0, negatives=NegativeConfig(image=2, caption=3, retrieval=2))
    assert json.loads((out / "sizes.json").read_text()) == {"shard-000000.tar": 16, "shard-000001.tar": 8}
    return out


@pytest.fixture(scope="session")
def bare_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of 4 samples without any negatives."""
    out = tmp_path_factory.mktemp("trainer") / "bare"
    generate_corpus(_recipe(), out, n=4, seed=1)
    return out


@pytest.fixture(scope="session")
def caption_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of 4 samples with rule caption negatives only."""
    out = tmp_path_factory.mktemp("trainer") / "captions"
    generate_corpus(_recipe(), out, n=4, seed=2, negatives=NegativeConfig(caption=2))
    return out


@pytest.fixture(scope="session")
def runs(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The single-process run (batch 8) and the two-rank torchrun run (batch 4 per rank) on
    the same corpus and seed, launched side by side."""
    if not GEOFORGE.is_file() or not TORCHRUN.is_file():
        pytest.skip(f"no geoforge or torchrun script next to {sys.executable}")
    root = tmp_path_factory.mktemp("runs")
    train_ = [str(GEOFORGE), "train", "mmclip", "--data", str(corpus)]
    commands = {
        "single": [*train_, "--out", str(root / "single"), "--batch-size", "8", *RUN_ARGS],
        "torchrun": [
            *(str(TORCHRUN), "--nproc_per_node", "2", "--standalone"),
            *(*train_, "--out", str(root / "torchrun"), "--batch-size", "4", *RUN_ARGS),
        ],
    }
    procs = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for name, cmd in commands.items()
    }
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        _ok(subprocess.CompletedProcess(commands[name], proc.returncode, stdout, stderr))
    return {name: root / name for name in commands}


@pytest.fixture(scope="session")
def single_run(runs: dict[str, Path]) -> Path:
    return runs["single"]


@pytest.fixture(scope="session")
def torchrun_run(runs: dict[str, Path]) -> Path:
    return runs["torchrun"]


# --- 1. torchrun parity ----------------------------------------------------------------------


def test_epoch_order_gives_rank_r_the_rth_slice_of_each_global_batch() -> None:
    for n, batch, world in ((24, 4, 2), (24, 2, 3), (25, 3, 2), (7, 1, 4)):
        for epoch in range(3):
            whole = epoch_order(n, 0, epoch, 0, 1, batch * world)
            ranks = [epoch_order(n, 0, epoch, r, world, batch) for r in range(world)]
            assert len(whole) == n // (batch * world)
            assert all(len(steps) == len(whole) for steps in ranks)
            for s, global_batch in enumerate(whole):
                assert [i for r in range(world) for i in ranks[r][s]] == global_batch
            seen = [i for b in whole for i in b]
            assert len(set(seen)) == len(seen) and set(seen) <= set(range(n))
        assert epoch_order(n, 0, 0, 0, 1, batch) != epoch_order(n, 0, 1, 0, 1, batch)


def test_torchrun_two_ranks_log_the_same_losses_and_weights_as_one_process(
    single_run: Path, torchrun_run: Path
) -> None:
    one, two = _log(single_run), _log(torchrun_run)
    assert [r["step"] for r in two] == [r["step"] for r in one] == list(range(1, STEPS + 1))
    loss_diff = max(abs(a["loss"] - b["loss"]) for a, b in zip(one, two))
    assert loss_diff <= LOSS_TOL, [(a["loss"], b["loss"]) for a, b in zip(one, two)]
    assert [r["lr"] for r in two] == [r["lr"] for r in one]
    final = _weights(single_run / "checkpoints" / "final.pt")
    weight_diff = _max_diff(final, _weights(torchrun_run / "checkpoints" / "final.pt"))
    torch.manual_seed(0)  # the initial weights, as train() makes them
    moved = _max_diff(final, create_model("geoforge-tiny", None, CPU)[0].state_dict())
    print(
        f"torchrun vs one process: loss max diff {loss_diff:.3g}, weight max diff {weight_diff:.3g}"
        f" (training moved weights by up to {moved:.3g})"
    )
    assert weight_diff <= WEIGHT_TOL
    assert weight_diff < moved / 10  # the comparison means something


@pytest.mark.slow
def test_torchrun_with_accumulation_matches_one_process(
    corpus: Path, single_run: Path, tmp_path: Path
) -> None:
    """Two ranks × two micro-batches of 2 (DDP's no_sync on the first) = one batch of 8."""
    run = tmp_path / "run"
    cmd = [str(TORCHRUN), "--nproc_per_node", "2", "--standalone", str(GEOFORGE), "train", "mmclip"]
    cmd += ["--data", str(corpus), "--out", str(run), "--batch-size", "2", "--accum", "2", *RUN_ARGS]
    _ok(subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env()))
    one, two = _log(single_run), _log(run)
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(one, two, strict=True)) <= LOSS_TOL
    weights = (_weights(r / "checkpoints" / "final.pt") for r in (single_run, run))
    assert _max_diff(*weights) <= WEIGHT_TOL


# --- 2. resume -------------------------------------------------------------------------------


def test_resume_from_step_3_replays_steps_4_to_6_of_the_unbroken_run(
    corpus: Path, single_run: Path, tmp_path: Path
) -> None:
    """The unbroken run saved steps 3 and 6; a crash during step 6 would leave latest.pt at
    step 3 and log rows 1–5. Resuming must drop rows 4–5 and redo steps 4–6 exactly."""
    run = tmp_path / "run"
    shutil.copytree(single_run, run)
    ckpts = run / "checkpoints"
    shutil.copy(ckpts / "step-000003.pt", ckpts / "latest.pt")
    for name in ("final.pt", "step-000006.pt"):
        (ckpts / name).unlink()
    rows = (run / "log.jsonl").read_text().splitlines()
    (run / "log.jsonl").write_text("\n".join(rows[:5]) + "\n")

    _ok(_cli("train", "mmclip", "--data", corpus, "--out", run, "--batch-size", "8", *RUN_ARGS, "--resume"))

    unbroken, resumed = _log(single_run), _log(run)
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    diff = max(abs(a["loss"] - b["loss"]) for a, b in zip(unbroken[3:], resumed[3:]))
    assert diff <= RESUME_TOL, [(a["loss"], b["loss"]) for a, b in zip(unbroken, resumed)]
    assert [r["lr"] for r in resumed] == [r["lr"] for r in unbroken]
    a = torch.load(single_run / "checkpoints" / "final.pt", weights_only=False)
    b = torch.load(ckpts / "final.pt", weights_only=False)
    assert b["step"] == STEPS
    assert b["history"] == pytest.approx(a["history"], abs=RESUME_TOL)
    weight_diff = _max_diff(a["model"], b["model"])
    print(f"resume: loss max diff {diff:.3g}, weight max diff {weight_diff:.3g}")
    assert weight_diff <= RESUME_TOL


# --- 3. gradient accumulation ----------------------------------------------------------------


def _dataset(corpus: Path, use: NegativeUse, size: int = 160, train_: bool = True) -> HardNegativeDataset:
    tokenizer = open_clip.get_tokenizer("geoforge-tiny")
    transform = Transform(size, train=train_, rotate=5 if train_ else 0, downscale=0.9 if train_ else 1)
    return HardNegativeDataset(CorpusIndex.build(corpus), tokenizer, transform, use)


def test_accumulating_two_batches_of_2_gives_the_gradients_of_one_batch_of_4(corpus: Path) -> None:
    """Every parameter's gradient, the logit scale's included (it once got one copy of ∂L/∂s
    per micro-batch: twice the true gradient with --accum 2)."""
    torch.manual_seed(0)
    model, _, _ = create_model("geoforge-tiny", None, CPU)
    dataset = _dataset(corpus, NegativeUse(("caption",), 2, 1))
    items = [dataset[i] for i in range(4)]
    grads, losses = [], []
    for accum in (1, 2):
        m = copy.deepcopy(model)
        opt = torch.optim.SGD(m.parameters(), lr=0.0)
        micro = 4 // accum
        batches = [collate(items[j * micro : (j + 1) * micro]) for j in range(accum)]
        losses.append(float(_step(m, batches, HardNegativeClipLoss(), opt, CPU, nullcontext(), accum)))
        grads.append({n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    assert grads[0].keys() == grads[1].keys() and "logit_scale" in grads[0]
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_train_with_accum_2_matches_one_double_batch_after_one_step(corpus: Path, tmp_path: Path) -> None:
    runs = {}
    for batch, accum in ((8, 1), (4, 2)):
        out = tmp_path / f"b{batch}a{accum}"
        config = TrainConfig(
            data=str(corpus),
            out=str(out),
            batch_size=batch,
            accum=accum,
            max_steps=1,
            warmup=WARMUP,
            text_negatives=("caption",),
            k_text=2,
            k_image=1,
        )
        assert train(config)["steps"] == 1
        runs[accum] = out
    (one,), (two,) = _log(runs[1]), _log(runs[2])
    assert abs(one["loss"] - two["loss"]) <= 1e-5
    diff = _max_diff(*(_weights(runs[a] / "checkpoints" / "final.pt") for a in (1, 2)))
    assert diff <= 1e-5


# --- 4. bad input through the CLI ------------------------------------------------------------


def _damaged(corpus: Path, root: Path, how: str) -> Path:
    """A copy of the corpus with shard 1 listed but missing, or cut in half."""
    out = root / how
    shutil.copytree(corpus, out)
    if how == "missing":
        assert "shard-000001.tar" in json.loads((out / "sizes.json").read_text())
        (out / "shard-000001.tar").unlink()
    else:
        shard = out / "shard-000001.tar"
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    return out


@pytest.fixture(scope="session")
def bad_runs(
    corpus: Path, bare_corpus: Path, single_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every bad-input command, two at a time (each spends most of its time importing torch)."""
    root = tmp_path_factory.mktemp("bad")
    state = torch.load(single_run / "checkpoints" / "final.pt", weights_only=False)
    state["model_name"] = "ViT-S-32"
    torch.save(state, root / "other-model.pt")
    train_ = ("train", "mmclip", "--max-steps", "1", "--batch-size", "4")
    cases: dict[str, tuple[object, ...]] = {
        "no negatives": (*train_, "--data", bare_corpus, "--k-text", "2", "--text-negatives", "caption"),
        "missing strict": (*train_, "--data", _damaged(corpus, root, "missing"), "--strict"),
        "corrupt strict": (*train_, "--data", _damaged(corpus, root, "truncated"), "--strict"),
        "corrupt skipped": (*train_, "--data", root / "truncated", "--json"),
        "other model": ("eval", "mmclip", "--checkpoint", root / "other-model.pt", "--data", corpus),
        "cuda": (*train_, "--data", corpus, "--device", "cuda"),
        "group without negatives": (*train_, "--data", corpus, "--loss", "paper-group"),
        "unknown model": (*train_, "--data", corpus, "--model", "geoforge-tinny"),
    }
    for i, (name, args) in enumerate(cases.items()):
        if args[0] == "train":
            cases[name] = (*args, "--out", root / f"run{i}")
    with ThreadPoolExecutor(2) as pool:
        done = {name: pool.submit(_cli, *args) for name, args in cases.items()}
        return {name: f.result() for name, f in done.items()}


def test_k_text_on_a_corpus_without_negatives_exits_2(bad_runs) -> None:  # type: ignore[no-untyped-def]
    line = _one_line_error(bad_runs["no negatives"])
    assert "negatives" in line and "--caption-negatives" in line


@pytest.mark.parametrize("case", ["missing strict", "corrupt strict"])
def test_strict_fails_on_a_missing_or_corrupt_shard_naming_it(bad_runs, case: str) -> None:  # type: ignore[no-untyped-def]
    line = _one_line_error(bad_runs[case])
    assert "shard-000001.tar" in line and "--strict" in line


def test_a_corrupt_shard_is_skipped_with_a_warning_and_counted(bad_runs) -> None:  # type: ignore[no-untyped-def]
    proc = _ok(bad_runs["corrupt skipped"])
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 1 and math.isfinite(summary["final_loss"])
    assert len(summary["skipped_shards"]) == 1 and "shard-000001.tar" in summary["skipped_shards"][0]
    assert "skipping shard" in proc.stderr and "shard-000001.tar" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_eval_of_a_checkpoint_made_for_another_model_exits_2_naming_it(bad_runs) -> None:  # type: ignore[no-untyped-def]
    line = _one_line_error(bad_runs["other model"])
    assert "other-model.pt" in line and "ViT-S-32" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_exits_2(bad_runs) -> None:  # type: ignore[no-untyped-def]
    assert "--device cuda" in _one_line_error(bad_runs["cuda"])


def test_group_loss_without_negatives_exits_2(bad_runs) -> None:  # type: ignore[no-untyped-def]
    line = _one_line_error(bad_runs["group without negatives"])
    assert "--loss paper-group" in line and "--k-text" in line


def test_unknown_model_exits_2_with_a_suggestion(bad_runs) -> None:  # type: ignore[no-untyped-def]
    line = _one_line_error(bad_runs["unknown model"])
    assert "geoforge-tinny" in line and "did you mean geoforge-tiny" in line


def test_missing_shard_listed_in_sizes_json_is_skipped_and_counted(corpus: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="shard-000001.tar"):
        index = CorpusIndex.build(_damaged(corpus, tmp_path, "missing"))
    assert len(index.samples) == SHARD
    assert len(index.skipped) == 1 and "shard-000001.tar" in index.skipped[0]


@pytest.mark.parametrize("cut", ["sample boundary", "member boundary"])
def test_a_shard_cut_on_a_member_boundary_is_corrupt(corpus: Path, tmp_path: Path, cut: str) -> None:
    """tarfile reads a shard cut exactly between members as a shorter, valid archive. Cut
    before sample 18 it used to give 18 samples silently; cut between a sample's members
    (before 00000017.neg0.png) it used to fail mid-training with KeyError 'neg0.png'."""
    out = tmp_path / "cut"
    shutil.copytree(corpus, out)
    shard = out / "shard-000001.tar"
    with tarfile.open(shard) as tar:
        offsets = {m.name: m.offset for m in tar}
    name = "00000018.json" if cut == "sample boundary" else "00000017.neg0.png"
    shard.write_bytes(shard.read_bytes()[: offsets[name]])
    with pytest.warns(UserWarning, match="shard-000001.tar"):
        index = CorpusIndex.build(out)
    assert len(index.samples) == SHARD and "truncated" in index.skipped[0]
    with pytest.raises(DataError, match=r"shard-000001\.tar.*--strict"):
        CorpusIndex.build(out, strict=True)


def test_training_refuses_negatives_of_a_kind_the_corpus_lacks(
    caption_corpus: Path, bare_corpus: Path
) -> None:
    """--k-image 1 on a corpus of caption negatives only used to train silently without any
    image negative (only a corpus with no negatives at all was refused)."""
    tokenizer = open_clip.get_tokenizer("geoforge-tiny")
    index = CorpusIndex.build(caption_corpus)

    def dataset(use: NegativeUse, require_each: bool = True) -> HardNegativeDataset:
        return HardNegativeDataset(index, tokenizer, Transform(32), use, require_each=require_each)

    with pytest.raises(
        DataError, match=r"--k-image: no sample of the corpus has image negatives.*--image-neg"
    ):
        dataset(NegativeUse(("caption",), 2, 1))
    with pytest.raises(DataError, match=r"--text-negatives retrieval: no sample .* retrieval negatives"):
        dataset(NegativeUse(("caption", "retrieval"), 2, 0))
    assert dataset(NegativeUse(("caption",), 2, 0))[0]["neg_text_mask"].any()
    # evaluation takes whatever kinds a held-out corpus has
    assert len(dataset(NegativeUse(("caption", "retrieval"), 64, 64), require_each=False)) == 4
    with pytest.raises(DataError, match="corpus has none"):
        HardNegativeDataset(CorpusIndex.build(bare_corpus), tokenizer, Transform(32), NegativeUse((), 0, 1))


def test_k_text_and_text_negatives_need_each_other() -> None:
    """--k-text without a source used to train with no caption negatives at all; with
    --loss paper-group --k-text 2 every group was the positive alone, and it logged loss 0."""
    with pytest.raises(UsageError, match="--k-text 2 needs --text-negatives"):
        TrainConfig(data="d", out="o", k_text=2).check()
    with pytest.raises(UsageError, match="--text-negatives caption needs --k-text"):
        TrainConfig(data="d", out="o", text_negatives=("caption",)).check()


def test_eval_of_a_checkpoint_of_an_unknown_model_names_the_checkpoint(
    single_run: Path, tmp_path: Path
) -> None:
    state = torch.load(single_run / "checkpoints" / "final.pt", weights_only=False)
    state["model_name"] = "geoforge-tinny"
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(
        CheckpointError, match=r"odd\.pt: checkpoint of model 'geoforge-tinny'.*geoforge-tiny"
    ):
        load(str(tmp_path / "odd.pt"), CPU)


# --- 5. no negatives: open_clip's ClipLoss ---------------------------------------------------


def test_mmclip_loss_without_negatives_is_open_clip_cliploss_on_a_real_batch(corpus: Path) -> None:
    torch.manual_seed(0)
    model, _, size = create_model("geoforge-tiny", None, CPU)
    dataset = _dataset(corpus, NegativeUse(), size)
    batch = collate([dataset[i] for i in range(6)])
    f = encode(model, batch, CPU)
    assert f.neg_text is None and f.neg_image is None
    ours = HardNegativeClipLoss("mmclip")(f.image, f.text, f.scale, _negatives(batch, f, CPU), f.bias)
    ref = open_clip.ClipLoss()(f.image, f.text, f.scale)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-6)
    params = [p for p in model.parameters() if p.requires_grad]
    g_ours = torch.autograd.grad(ours, params, retain_graph=True, allow_unused=True)
    g_ref = torch.autograd.grad(ref, params, allow_unused=True)
    for a, b in zip(g_ours, g_ref):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


# --- 6. the train transform never crops ------------------------------------------------------

W, H, MARK = 240, 180, 24


def _marked_png() -> bytes:
    """White 240×180 with a black 24-px square in each corner and one in the centre."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    for x, y in (
        (0, 0),
        (W - MARK, 0),
        (0, H - MARK),
        (W - MARK, H - MARK),
        ((W - MARK) // 2, (H - MARK) // 2),
    ):
        draw.rectangle([x, y, x + MARK - 1, y + MARK - 1], fill="black")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _mark_ratios(x: torch.Tensor) -> list[float]:
    """Dark pixels of each corner quadrant (outside the central box of 30 % of the side)
    over those of the centre mark. Any uniform scaling or rotation keeps each ratio near 1;
    cutting part of a corner mark away lowers it."""
    grey = (x * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]).mean(0)
    dark = (grey < 0.5).numpy()
    s = dark.shape[0]
    v, u = np.mgrid[0:s, 0:s] - (s - 1) / 2
    central = (np.abs(u) < 0.15 * s) & (np.abs(v) < 0.15 * s)
    centre = dark[central].sum()
    assert centre > 0
    quadrants = [(u < 0) & (v < 0), (u > 0) & (v < 0), (u < 0) & (v > 0), (u > 0) & (v > 0)]
    return [float(dark[q & ~central].sum() / centre) for q in quadrants]


class _Extremes:
    """An rng whose ``uniform`` returns the given end of each range, in turn."""

    def __init__(self, *ends: str) -> None:
        self.ends = list(ends)

    def uniform(self, lo: float, hi: float) -> float:
        return lo if self.ends.pop(0) == "lo" else hi


def test_train_transform_keeps_every_corner_mark_whole() -> None:
    png = _marked_png()
    transform = Transform(96, train=True, rotate=10, downscale=0.8)
    rngs: list[object] = [np.random.default_rng(seed) for seed in range(40)]
    rngs += [_Extremes(a, b) for a in ("lo", "hi") for b in ("lo", "hi")]
    for rng in [None, *rngs]:
        ratios = _mark_ratios(transform(png, rng))  # type: ignore[arg-type]
        assert all(0.7 <= r <= 1.4 for r in ratios), ratios
    # the check would catch a crop: a 90 % centre crop leaves a quarter of each corner mark
    cropped = Image.open(io.BytesIO(png)).crop((12, 9, W - 12, H - 9))
    buf = io.BytesIO()
    cropped.save(buf, format="PNG")
    assert max(_mark_ratios(Transform(96)(buf.getvalue()))) < 0.5


# --- 7. evaluation ---------------------------------------------------------------------------


def _kinds(records: list[dict[str, object]]) -> tuple[dict[str, int], dict[str, int]]:
    """Samples with at least one caption (and retrieval) / image negative of each plugin."""
    text: dict[str, int] = {}
    image: dict[str, int] = {}
    for r in records:
        neg = r["negatives"]
        for store, found in (
            (text, {n["plugin"] for n in neg.get("caption", []) + neg.get("retrieval", [])}),  # type: ignore[union-attr]
            (image, {n["plugin"] for n in neg.get("image", [])}),  # type: ignore[union-attr]
        ):
            for kind in found:
                store[kind] = store.get(kind, 0) + 1
    return text, image


def test_evaluate_an_untrained_model_gives_rates_for_every_kind_present(corpus: Path) -> None:
    limit = 12
    result = evaluate(load("untrained:geoforge-tiny", CPU), str(corpus), CPU, batch_size=6, limit=limit)
    text, image = _kinds(_records(corpus)[:limit])
    assert text and image
    assert result["samples"] == limit
    for direction, expected in (("image_to_caption", text), ("caption_to_image", image)):
        kinds = result[direction]["kinds"]
        assert {k: v["samples"] for k, v in kinds.items()} == expected
        for v in kinds.values():
            assert 0.0 <= v["accuracy"] <= 1.0 and 0.0 <= v["pairwise"] <= 1.0
        overall = np.mean([v["accuracy"] for v in kinds.values()])
        assert result[direction]["overall"] == pytest.approx(overall)
    assert 0.0 <= result["r1_image_to_text"] <= 1.0 and 0.0 <= result["r1_text_to_image"] <= 1.0


class _OneHot(nn.Module):
    """A fake CLIP: sample i's image and caption both map to e_i, any other input (a negative)
    to a new one-hot, orthogonal to everything else; or, ``constant``, everything to one
    vector, so each negative ties with its positive."""

    def __init__(self, dataset: HardNegativeDataset, constant: bool) -> None:
        super().__init__()
        self.dim, self.constant, self.ids = 4096, constant, {}
        for i in range(len(dataset)):
            item = dataset[i]
            self.ids[self._key(item["image"])] = i  # type: ignore[arg-type]
            self.ids[self._key(item["text"])] = i  # type: ignore[arg-type]
        assert len(self.ids) == 2 * len(dataset), "positives must be distinct"
        self.fresh = len(dataset)

    @staticmethod
    def _key(x: torch.Tensor) -> bytes:
        return hashlib.sha1(x.contiguous().numpy().tobytes()).digest()

    def _encode(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        out = torch.zeros(len(x), self.dim)
        for row, sample in enumerate(x):
            if self.constant:
                out[row, 0] = 1
            elif (key := self._key(sample)) in self.ids:
                out[row, self.ids[key]] = 1
            else:
                out[row, self.fresh] = 1
                self.fresh += 1
        return out

    encode_image = encode_text = _encode


@pytest.mark.parametrize("constant", [False, True], ids=["perfect", "constant"])
def test_evaluate_scores_a_perfect_model_1_and_a_constant_one_0(corpus: Path, constant: bool) -> None:
    """Ties are not wins: a model that cannot tell a negative from its positive scores 0."""
    tokenizer = open_clip.get_tokenizer("geoforge-tiny")
    dataset = HardNegativeDataset(
        CorpusIndex.build(corpus), tokenizer, Transform(32), NegativeUse(("caption", "retrieval"), 64, 64)
    )
    model = _OneHot(dataset, constant)
    result = evaluate(Loaded("fake", model, tokenizer, 32), str(corpus), CPU, batch_size=8)
    want = 0.0 if constant else 1.0
    assert result["samples"] == N
    for direction in ("image_to_caption", "caption_to_image"):
        kinds = result[direction]["kinds"]
        assert kinds and all(v["accuracy"] == want and v["pairwise"] == want for v in kinds.values())
        assert result[direction]["overall"] == want
    r1 = 1 / N if constant else 1.0  # a constant model's argmax is always sample 0
    assert result["r1_image_to_text"] == result["r1_text_to_image"] == pytest.approx(r1)


# --- 8. run outputs and flag names -----------------------------------------------------------


def test_train_writes_a_row_per_step_a_loss_curve_and_resumable_checkpoints(single_run: Path) -> None:
    rows = _log(single_run)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert [r["epoch"] for r in rows] == [0, 0, 0, 1, 1, 1]
    factor = cosine_lambda(WARMUP, STEPS)
    for r in rows:
        assert {"loss", "lr", "logit_scale", "samples_per_s"} <= r.keys()
        assert math.isfinite(r["loss"]) and r["loss"] > 0
        # the rate the step used (it used to log the next step's: 0.0 on the last row)
        assert r["lr"] == pytest.approx(LR * factor(r["step"] - 1), rel=1e-9)
    assert rows[-1]["lr"] > 0
    with Image.open(single_run / "loss.png") as image:
        assert image.format == "PNG" and image.size == (600, 350)
    ckpts = single_run / "checkpoints"
    assert {p.name for p in ckpts.iterdir()} == {"step-000003.pt", "step-000006.pt", "latest.pt", "final.pt"}
    state = torch.load(ckpts / "step-000003.pt", weights_only=False)
    assert state["step"] == 3 and state["model_name"] == "geoforge-tiny"
    assert state["history"] == [r["loss"] for r in rows[:3]]
    assert math.exp(float(state["model"]["logit_scale"])) == pytest.approx(rows[2]["logit_scale"], rel=1e-6)
    params = sum(len(g["params"]) for g in state["optimizer"]["param_groups"])
    assert len(state["optimizer"]["state"]) == params > 0
    assert all(int(s["step"]) == 3 for s in state["optimizer"]["state"].values())
    assert state["scheduler"]["last_epoch"] == 3
    assert set(state["rng"]) == {"torch", "numpy", "python"}
    assert state["config"]["batch_size"] == 8 and state["config"]["text_negatives"] == ["caption"]
    latest = torch.load(ckpts / "latest.pt", weights_only=False)
    assert latest["step"] == STEPS and _max_diff(latest["model"], _weights(ckpts / "final.pt")) == 0


def _train_flags() -> set[str]:
    command = typer.main.get_command(app)
    mmclip = command.commands["train"].commands["mmclip"]  # type: ignore[attr-defined]
    return {o for p in mmclip.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


def test_no_train_flag_is_a_prefix_of_a_torchrun_flag_or_the_reverse() -> None:
    if not TORCHRUN.is_file():
        pytest.skip(f"no torchrun next to {sys.executable}")
    help_text = _ok(
        subprocess.run([str(TORCHRUN), "--help"], capture_output=True, text=True, timeout=120)
    ).stdout
    theirs = set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", help_text)) - {"--help"}
    ours = _train_flags() - {"--help"}
    assert {"--nproc-per-node", "--nproc_per_node", "--log-dir", "--logs-specs"} <= theirs
    assert {"--data", "--out", "--loss", "--lr", "--k-text"} <= ours
    assert not ours & {"--log", "--logs"}
    clashes = [(o, t) for o in ours for t in theirs if t.startswith(o) or o.startswith(t)]
    assert clashes == []
