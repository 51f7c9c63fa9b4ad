"""What a refused ``train mmclip`` or ``corpus cache`` leaves on disk (nothing it made; a
directory that existed before, untouched), and the warning of a ``--k-image``/``--k-text`` above
the negatives a corpus holds per sample."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from geoforge_train import cache as cache_module  # noqa: E402
from geoforge_train.cache import build_cache  # noqa: E402
from geoforge_train.data import CorpusIndex, DataError, NegativeUse, excess_negatives  # noqa: E402
from geoforge_train.train import TrainConfig, train  # noqa: E402
from trainer_support import _cli, _one_line_error, _recipe  # noqa: E402

from geoforge.errors import UsageError  # noqa: E402
from geoforge.generate import generate_corpus  # noqa: E402
from geoforge.negatives import NegativeConfig  # noqa: E402

#: geoforge-tiny's input size: a cache of it passes the size check.
SIZE = 160
WARN_IMAGE = (
    "warning: --k-image 5 but the corpus holds at most 2 image negatives per sample "
    "(the rest are masked padding)"
)
WARN_TEXT = (
    "warning: --k-text 9 but the corpus holds at most 2 caption negatives per sample "
    "(the rest are masked padding)"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 samples in one shard, 2 image and 2 caption negatives asked per sample."""
    out = tmp_path_factory.mktemp("refusals") / "corpus"
    negatives = NegativeConfig(image=2, caption=2, max_checks=4)
    generate_corpus(_recipe(), out, n=4, seed=0, negatives=negatives)
    return out


@pytest.fixture(scope="module")
def caches(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A good cache of ``corpus``, one of another size and a stale one (its shard's bytes edited)."""
    root = tmp_path_factory.mktemp("caches")
    build_cache(str(corpus), root / "good", SIZE)
    build_cache(str(corpus), root / "small", 48)
    shutil.copytree(root / "good", root / "stale")
    meta = json.loads((root / "stale" / "index.json").read_text())
    meta["shards"][0]["bytes"] += 512
    (root / "stale" / "index.json").write_text(json.dumps(meta))
    return {name: root / name for name in ("good", "small", "stale")}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


#: Each refused run: its settings (``{good}`` etc. name a cache, ``{missing}`` a path that does
#: not exist, ``{corpus}`` the corpus) and the words of its one-line error.
REFUSALS = {
    "stale cache": ({"data_cache": "{stale}"}, "is stale: shard 0"),
    "cache of another size": ({"data_cache": "{small}"}, "images of 48 px, but the model takes 160 px"),
    "rotate with a cache": ({"data_cache": "{good}", "rotate": 5.0}, "--rotate and --downscale need"),
    "missing cache": ({"data_cache": "{missing}"}, "no readable index.json"),
    "missing data": ({"data": "{missing}"}, "no such corpus directory or shard"),
}


def _names(corpus: Path, caches: dict[str, Path], tmp_path: Path) -> dict[str, str]:
    return {
        **{k: str(v) for k, v in caches.items()},
        "missing": str(tmp_path / "nowhere"),
        "corpus": str(corpus),
    }


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_train_leaves_no_run_directory_and_an_existing_one_untouched(
    case: str, corpus: Path, caches: dict[str, Path], tmp_path: Path
) -> None:
    settings, words = REFUSALS[case]
    names = _names(corpus, caches, tmp_path)
    chosen = {k: v.format(**names) if isinstance(v, str) else v for k, v in settings.items()}
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine\n")
    for out in (tmp_path / "new" / "run", existing):
        config = TrainConfig(
            **{"data": str(corpus), "max_steps": 1, "batch_size": 2, "device": "cpu", **chosen},
            out=str(out),
        )
        with pytest.raises(DataError, match=re.escape(words)):
            train(config)
        assert not (tmp_path / "new").exists()
        assert existing.is_dir() and _snapshot(existing) == {"notes.txt": b"mine\n"}


def test_the_cli_refuses_a_stale_cache_in_one_line_and_leaves_no_run_directory(
    corpus: Path, caches: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "new" / "run"
    proc = _cli(
        *("train", "mmclip", "--data", corpus, "--data-cache", caches["stale"], "--out", out),
        *("--max-steps", "1", "--batch-size", "2", "--device", "cpu"),
    )
    assert f"error: --data-cache {caches['stale']} is stale: shard 0" in _one_line_error(proc)
    assert not (tmp_path / "new").exists()


def test_the_cli_refuses_missing_weights_in_one_line_without_open_clips_log(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "new" / "run"
    proc = _cli(
        *("train", "mmclip", "--data", corpus, "--pretrained", tmp_path / "nope.pt", "--out", out),
        *("--max-steps", "1", "--batch-size", "2", "--device", "cpu"),
    )
    line = _one_line_error(proc, 2)  # no "ERROR:root:" line before it
    assert line.startswith(f"error: --pretrained {tmp_path / 'nope.pt'}: cannot load: "), line
    assert not (tmp_path / "new").exists()


def test_a_refused_corpus_cache_leaves_no_directory_and_an_existing_one_untouched(
    caches: dict[str, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "MISSING"
    out = tmp_path / "a" / "b" / "cache"
    line = _one_line_error(_cli("corpus", "cache", missing, "--size", SIZE, "--out", out))
    assert line == f"error: {missing}: no such corpus directory or shard"
    assert not (tmp_path / "a").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no such corpus directory"):
        build_cache(str(missing), empty, SIZE)
    assert empty.is_dir() and not any(empty.iterdir())
    # --overwrite of a real cache with a missing corpus: the old cache (and the rest) stays
    kept = tmp_path / "kept"
    shutil.copytree(caches["good"], kept)
    (kept / "notes.txt").write_text("mine\n")
    before = _snapshot(kept)
    with pytest.raises(DataError, match="no such corpus directory"):
        build_cache(str(missing), kept, SIZE, overwrite=True)
    assert _snapshot(kept) == before and "index.json" in before and "part-000000.npy" in before


def test_a_cache_that_fails_midway_removes_what_it_wrote_only_where_it_made_the_folder(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(job: tuple[Path, object, int, Path]) -> int:
        job[3].with_name(job[3].name + ".npy.tmp").write_bytes(b"partial")
        raise DataError("sample 00000000 is not greyscale")

    monkeypatch.setattr(cache_module, "_write_part", fail)
    made = tmp_path / "made" / "cache"
    with pytest.raises(DataError, match="not greyscale"):
        build_cache(str(corpus), made, SIZE)
    assert not (tmp_path / "made").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(DataError, match="not greyscale"):
        build_cache(str(corpus), existing, SIZE)
    assert [p.name for p in existing.iterdir()] == ["part-000000.npy.tmp"]  # not ours to clean


def test_the_negative_limits_come_from_the_manifest_and_none_without_one(
    corpus: Path, tmp_path: Path
) -> None:
    index = CorpusIndex.build(str(corpus))
    assert index.negative_limits() == {"image": 2, "caption": 2, "retrieval": 0}
    use = NegativeUse(("caption", "retrieval"), 3, 2)
    assert excess_negatives(index, use) == [
        "--k-text 3 but the corpus holds at most 2 caption and retrieval negatives per sample "
        "(the rest are masked padding)"
    ]
    assert excess_negatives(index, NegativeUse(("caption",), 2, 2)) == []
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(corpus / "shard-000000.tar", bare)
    assert CorpusIndex.build(str(bare)).negative_limits() is None


def test_train_warns_once_at_the_start_when_k_exceeds_the_negatives_of_the_corpus(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(name: str, k_image: int, k_text: int) -> tuple[dict[str, object], list[str]]:
        config = TrainConfig(
            data=str(corpus),
            out=str(tmp_path / name),
            max_steps=1,
            batch_size=4,
            device="cpu",
            text_negatives=("caption",),
            k_text=k_text,
            k_image=k_image,
        )
        capsys.readouterr()
        summary = train(config)
        return summary, [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]

    summary, lines = run("over", 5, 9)
    assert lines == [WARN_IMAGE, WARN_TEXT]
    assert summary["warnings"] == [w.removeprefix("warning: ") for w in lines]
    exact, quiet = run("exact", 2, 2)
    assert quiet == [] and exact["warnings"] == []
    # what the warning says: the extra columns are padding, masked, so the loss is the same
    assert summary["final_loss"] == pytest.approx(exact["final_loss"], rel=1e-5)


def test_resuming_a_finished_run_says_so_and_writes_no_checkpoint_again(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """4 samples at batch 4: one step per epoch, so 2 epochs end at step 2 whatever --max-steps."""
    config = TrainConfig(data=str(corpus), out=str(tmp_path / "run"), epochs=2, batch_size=4, device="cpu")
    train(config)
    run = tmp_path / "run"

    def files() -> dict[str, tuple[int, bytes]]:  # checkpoints, log, curve, TensorBoard events
        return {
            str(p.relative_to(run)): (p.lstat().st_mtime_ns, p.read_bytes())
            for p in run.rglob("*")
            if p.is_file()
        }

    before = files()
    assert sorted(p for p in before if p.startswith("checkpoints")) == [
        "checkpoints/final.pt",
        "checkpoints/latest.pt",
        "checkpoints/step-000002.pt",
    ]
    assert "log.jsonl" in before and "loss.png" in before
    capsys.readouterr()
    summary = train(replace(config, max_steps=8, resume=True))
    said = (
        "the run already reached its last step, 2 (--epochs 2 × 1 steps per epoch, --max-steps 8); "
        "nothing to train"
    )
    assert capsys.readouterr().err.splitlines() == [f"warning: {said}"]
    assert summary["warnings"] == [said] and summary["steps"] == 2 and summary["trained"] == 0
    assert files() == before


def test_resume_judges_the_corpus_by_its_fingerprint_not_by_how_data_is_spelt(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same corpus through another spelling of its path resumes; the same path holding a
    corpus regenerated with another seed is refused (it used to be accepted silently)."""
    mine = tmp_path / "corpus"
    shutil.copytree(corpus, mine)
    config = TrainConfig(data=str(mine), out=str(tmp_path / "run"), epochs=2, batch_size=4, device="cpu")
    train(config)
    fingerprint = CorpusIndex.build(mine).fingerprint()
    for spelt in (f"{mine}/", str(mine.resolve()), f"{mine}/./"):
        assert CorpusIndex.build(spelt).fingerprint() == fingerprint
        summary = train(replace(config, data=spelt, resume=True))  # finished: nothing to train
        assert summary["trained"] == 0
    generate_corpus(
        _recipe(),
        mine,
        n=4,
        seed=5,
        negatives=NegativeConfig(image=2, caption=2, max_checks=4),
        overwrite=True,
    )
    other = CorpusIndex.build(mine).fingerprint()
    assert other != fingerprint
    with pytest.raises(
        UsageError, match=rf"^--resume: the corpus at --data '{re.escape(str(mine))}' is not the "
    ):
        train(replace(config, resume=True, max_steps=8))
    with pytest.raises(
        UsageError, match=rf"fingerprint {other}, then {fingerprint}\); resume with the same corpus"
    ):
        train(replace(config, resume=True, max_steps=8))


def test_resuming_with_more_epochs_says_the_schedule_is_recomputed(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """4 samples at batch 4, warmup 1: planned for 2 steps, the cosine factor at step 2 is 0;
    recomputed for 4 steps it is 0.5·(1 + cos(π/3)) = 0.75, so 5e-4 · 0.75 = 0.000375."""
    config = TrainConfig(
        data=str(corpus), out=str(tmp_path / "run"), epochs=2, batch_size=4, warmup=1, device="cpu"
    )
    train(config)
    capsys.readouterr()
    summary = train(replace(config, epochs=4, resume=True))
    said = (
        "the run was planned for 2 steps and now ends at step 4: its cosine learning-rate schedule "
        "is recomputed for 4 steps (at step 2, 0.000375 on it against 0 on the planned one)"
    )
    assert said in summary["warnings"] and summary["trained"] == 2
    assert f"warning: {said}" in capsys.readouterr().err.splitlines()


def test_eval_never_replaces_a_per_sample_file_and_names_a_missing_directory(
    corpus: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "notes.jsonl"
    mine.write_text("mine\n")
    proc = _cli(
        *("eval", "mmclip", "--checkpoint", "untrained:geoforge-tiny", "--data", corpus),
        *("--device", "cpu", "--per-sample", mine),
    )
    assert _one_line_error(proc) == (
        f"error: --per-sample {mine} exists: choose another file (it is never replaced)"
    )
    assert mine.read_text() == "mine\n"
    missing = tmp_path / "no" / "scores.jsonl"
    proc = _cli(
        *("eval", "mmclip", "--checkpoint", "untrained:geoforge-tiny", "--data", corpus),
        *("--device", "cpu", "--per-sample", missing),
    )
    assert (
        _one_line_error(proc)
        == f"error: --per-sample {missing}: no directory {missing.parent} to write it in"
    )


def test_a_truncated_cache_file_is_one_line_naming_it(
    corpus: Path, caches: dict[str, Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(caches["good"], cache)
    part = sorted(cache.glob("*.npy"))[0]
    with part.open("r+b") as fh:
        fh.truncate(part.stat().st_size // 2)
    config = TrainConfig(
        data=str(corpus),
        out=str(tmp_path / "run"),
        max_steps=1,
        batch_size=2,
        device="cpu",
        data_cache=str(cache),
    )
    with pytest.raises(DataError, match=rf"^--data-cache: {re.escape(str(part))} cannot be read \("):
        train(config)


def test_sigterm_stops_training_saying_which_checkpoint_is_kept(corpus: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from trainer_support import GEOFORGE, _env

    out = tmp_path / "run"
    args = ["train", "mmclip", "--data", str(corpus), "--out", str(out), "--epochs", "500"]
    args += ["--batch-size", "2", "--device", "cpu", "--save-every", "1"]
    proc = subprocess.Popen(
        [str(GEOFORGE), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env()
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "latest.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert re.fullmatch(
        r"terminated: its last checkpoint, step-\d{6}\.pt, is kept; run the same command with --resume "
        r"to continue from it",
        err.strip().splitlines()[-1],
    ), err
