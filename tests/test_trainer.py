"""The MMCLIP trainer end to end (DESIGN.md, "Trainer"): ``train mmclip`` under torchrun matches
one process on the same global batch, ``--resume`` replays the unbroken run, gradient
accumulation keeps every negative and counts the logit scale once, and bad input gets one-line
errors. The shared corpus and runs are in tests/trainer_support.py."""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from geoforge_train.data import (  # noqa: E402
    CorpusIndex,
    DataError,
    HardNegativeDataset,
    NegativeUse,
    Transform,
    collate,
    epoch_order,
)
from geoforge_train.evaluate import load  # noqa: E402
from geoforge_train.loss import HardNegativeClipLoss  # noqa: E402
from geoforge_train.models import CheckpointError, create_model  # noqa: E402
from geoforge_train.train import (  # noqa: E402
    TrainConfig,
    _step,
    train,
)
from trainer_support import (  # noqa: E402
    CPU,
    GEOFORGE,
    LOSS_TOL,
    RESUME_TOL,
    RUN_ARGS,
    SHARD,
    STEPS,
    TORCHRUN,
    WARMUP,
    WEIGHT_TOL,
    _cli,
    _dataset,
    _env,
    _log,
    _max_diff,
    _ok,
    _one_line_error,
    _weights,
)

from geoforge.errors import UsageError  # noqa: E402

# The session corpus and runs (fixtures), shared with the other trainer test module.
pytest_plugins = ["trainer_support"]


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
    for key in ("caption_duplicates", "same_token_negatives"):  # rank 0 logs the global batch's
        assert [r[key] for r in two] == [r[key] for r in one]
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
    a = torch.load(single_run / "checkpoints" / "final.pt", weights_only=True)
    b = torch.load(ckpts / "final.pt", weights_only=True)
    assert b["step"] == STEPS
    assert b["history"] == pytest.approx(a["history"], abs=RESUME_TOL)
    weight_diff = _max_diff(a["model"], b["model"])
    print(f"resume: loss max diff {diff:.3g}, weight max diff {weight_diff:.3g}")
    assert weight_diff <= RESUME_TOL


# --- 3. gradient accumulation ----------------------------------------------------------------


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
    state = torch.load(single_run / "checkpoints" / "final.pt", weights_only=True)
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
    warning = f"warning: skipped shard {summary['skipped_shards'][0]}"
    assert proc.stderr.splitlines()[0] == warning and proc.stderr.count("shard-000001.tar") == 1
    assert summary["warnings"][0] == warning.removeprefix("warning: ")
    assert "Traceback" not in proc.stderr and "UserWarning" not in proc.stderr


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
    (before 00000017.negatives.png) it used to fail mid-training with a KeyError."""
    out = tmp_path / "cut"
    shutil.copytree(corpus, out)
    shard = out / "shard-000001.tar"
    with tarfile.open(shard) as tar:
        offsets = {m.name: m.offset for m in tar}
    name = "00000018.json" if cut == "sample boundary" else "00000017.negatives.png"
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
    state = torch.load(single_run / "checkpoints" / "final.pt", weights_only=True)
    state["model_name"] = "geoforge-tinny"
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(
        CheckpointError, match=r"odd\.pt: checkpoint of model 'geoforge-tinny'.*geoforge-tiny"
    ):
        load(str(tmp_path / "odd.pt"), CPU)
