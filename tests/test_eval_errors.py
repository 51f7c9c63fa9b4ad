"""How evaluation and the trainer's readers meet bad input: a damaged shard or sample, an
unknown model in ``--checkpoint``, a truncated or foreign checkpoint file, and loading
messages (one line naming what is wrong and what was expected; no Python warning, no ``nan``,
no progress bar)."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from geoforge_train.data import CorpusIndex, HardNegativeDataset, NegativeUse, Transform, UnreadableSample  # noqa: E402
from geoforge_train.evaluate import table  # noqa: E402
from trainer_support import _cli, _one_line_error  # noqa: E402

from geoforge.generate import generate_corpus  # noqa: E402
from geoforge.negatives import NegativeConfig  # noqa: E402
from geoforge.sampler import Recipe  # noqa: E402

pytest_plugins = ["trainer_support"]  # the in-process `cli` fixture

#: The corpus: 6 samples in 3 shards of 2 (conftest's ``recipe``), 2 image and 2 caption
#: negatives asked per sample.
N = 6


@pytest.fixture(scope="module")
def corpus(recipe: Recipe, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval-errors") / "corpus"
    negatives = NegativeConfig(image=2, caption=2, max_checks=4)
    generate_corpus(recipe, out, n=N, seed=0, negatives=negatives)
    return out


def _with_truncated_shard(corpus: Path, out: Path) -> Path:
    """A copy of ``corpus`` whose second shard is cut to half its bytes."""
    shutil.copytree(corpus, out)
    shard = out / "shard-000001.tar"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    return out


def _with_corrupt_figure(corpus: Path, out: Path, shard: str = "shard-000000.tar", which: int = 1) -> str:
    """Copy ``corpus`` to ``out`` (unless there) and overwrite the middle of the positive PNG of
    sample ``which`` of ``shard`` (its tar headers stay whole, so it is indexed); returns its key."""
    if not out.exists():
        shutil.copytree(corpus, out)
    path = out / shard
    with tarfile.open(path) as tar:
        pngs = [m for m in tar if m.name.endswith(".png") and m.name.count(".") == 1]
    member = pngs[which]
    data = bytearray(path.read_bytes())
    data[member.offset_data + 100 : member.offset_data + member.size - 20] = b"A" * (member.size - 120)
    path.write_bytes(bytes(data))
    return member.name.split(".")[0]


def test_eval_of_a_damaged_corpus_warns_once_in_its_own_lines_and_skips_what_it_cannot_read(
    corpus: Path, tmp_path: Path
) -> None:
    """A truncated shard used to print Python's `UserWarning` line (with the source line under
    it) for each model, and a corrupt figure ended the run with "internal error: OSError"."""
    damaged = _with_truncated_shard(corpus, tmp_path / "damaged")
    key = _with_corrupt_figure(corpus, damaged)
    proc = _cli(
        *("eval", "mmclip", "--data", damaged, "--device", "cpu", "--json"),
        *("--checkpoint", "untrained:geoforge-tiny", "--checkpoint", "untrained:geoforge-tiny"),
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    shard = results[0]["skipped_shards"]
    assert len(shard) == 1 and shard[0] == f"{damaged / 'shard-000001.tar'}: unexpected end of data"
    assert proc.stderr.splitlines() == [
        f"warning: skipped shard {shard[0]}",
        f"warning: skipped 1 of {N - 2} samples, unreadable: {damaged / 'shard-000000.tar'}: sample {key} "
        "cannot be read: OSError: broken data stream when reading image file",
    ]
    for result in results:  # the 2 samples of the cut shard and the corrupt one are left out
        assert (result["samples"], result["skipped_samples"]) == (N - 3, 1)
    assert results[0]["image_to_caption"] == results[1]["image_to_caption"]  # one model twice


def test_eval_of_a_corpus_with_no_readable_sample_fails_in_one_line(
    corpus: Path, tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    """Every figure unreadable: an error, never metrics over zero samples."""
    damaged = tmp_path / "damaged"
    keys = [_with_corrupt_figure(corpus, damaged, f"shard-00000{s}.tar", j) for s in range(3) for j in (0, 1)]
    result = cli(
        "eval", "mmclip", "--checkpoint", "untrained:geoforge-tiny", "--data", damaged, "--device", "cpu"
    )
    assert _one_line_error(result, 2) == (
        f"error: {damaged}: none of the {N} samples evaluated can be read; the first: "
        f"{damaged / 'shard-000000.tar'}: sample {keys[0]} cannot be read: OSError: broken data stream when "
        "reading image file"
    )


def test_a_sample_that_cannot_be_decoded_is_an_error_naming_its_shard_and_key(
    corpus: Path, tmp_path: Path
) -> None:
    key = _with_corrupt_figure(corpus, tmp_path / "damaged", "shard-000002.tar", 0)
    dataset = HardNegativeDataset(
        CorpusIndex.build(tmp_path / "damaged"),
        lambda t: torch.zeros(len(t), 4),
        Transform(32),
        NegativeUse(),
    )
    assert dataset[3]["key"] == "00000003"
    with pytest.raises(UnreadableSample) as e:
        dataset[4]
    assert str(e.value) == (
        f"{tmp_path / 'damaged' / 'shard-000002.tar'}: sample {key} cannot be read: OSError: broken data "
        "stream when reading image file"
    )


def test_the_table_shows_a_dash_not_nan_for_a_direction_without_negatives() -> None:
    """A held-out corpus without image negatives has no caption→image accuracy: its overall is
    None in the result (null in --json and the training log; it was nan, which is not JSON),
    and the table used to print `nan`."""
    kinds = {"caption_rules": {"accuracy": 0.25, "pairwise": 0.5, "chance": 0.33, "samples": 4}}
    result = {
        "model": "m",
        "samples": 4,
        "image_to_caption": {"kinds": kinds, "overall": 0.25},
        "caption_to_image": {"kinds": {}, "overall": None},
        "r1_image_to_text": 0.5,
        "r1_text_to_image": 0.75,
    }
    from geoforge_train.evaluate import _summary

    assert _summary([{"image_to_caption": {}}], "caption_to_image") == {"kinds": {}, "overall": None}
    rows = list(zip(table([result]).columns[0].cells, table([result]).columns[1].cells))
    assert rows == [
        ("image→caption caption_rules acc (pairwise)", "25.0 (50.0)"),
        ("image→caption overall", "25.0"),
        ("caption→image overall", "–"),
        ("in-batch R@1 image→text", "50.0"),
        ("in-batch R@1 text→image", "75.0"),
    ]


def test_corpus_cache_of_a_damaged_corpus_names_the_shard_and_no_strict_option(
    corpus: Path, tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    """corpus cache has no --strict, yet its refusal of a damaged shard used to end in
    "(--strict)"."""
    damaged = _with_truncated_shard(corpus, tmp_path / "damaged")
    result = cli("corpus", "cache", damaged, "--size", "48", "--out", tmp_path / "cache")
    line = _one_line_error(result, 2)
    shard = damaged / "shard-000001.tar"
    assert line.startswith(f"error: cannot read shard {shard}: unexpected end of data ")
    assert line.endswith(" (a cache covers every shard)") and "--strict" not in line
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (
            "untrained:nomodel",
            "unknown open_clip model nomodel; expected one of the {known} names of "
            "open_clip.list_models(), such as geoforge-tiny (runs on a CPU with no download) or ViT-B-16",
        ),
        ("untrained:geoforge-tny", "unknown open_clip model geoforge-tny; did you mean geoforge-tiny?"),
        ("pretrained:geoforge-tiny", "expected pretrained:MODEL:TAG"),
        (
            "untrainde:geoforge-tiny",
            "no such file or directory; expected a run directory, a .pt file, untrained:MODEL or "
            "pretrained:MODEL:TAG",
        ),
    ],
)
def test_eval_names_the_checkpoint_spec_of_an_unknown_model_and_what_it_expects(
    corpus: Path, cli, spec: str, said: str
) -> None:  # type: ignore[no-untyped-def]
    """An unknown model in --checkpoint untrained:MODEL used to blame --model, an option eval
    does not have."""
    import open_clip

    result = cli("eval", "mmclip", "--checkpoint", spec, "--data", corpus, "--device", "cpu")
    known = len(open_clip.list_models())
    assert _one_line_error(result, 2) == f"error: --checkpoint {spec}: " + said.format(known=known)


def _small_checkpoint(path: Path) -> Path:
    """A zip archive as torch.save writes checkpoints (a few hundred bytes)."""
    torch.save({"model_name": "geoforge-tiny", "model": {"w": torch.zeros(64)}}, path)
    return path


def test_eval_of_a_truncated_checkpoint_is_one_line_naming_the_file(
    corpus: Path, tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    """A checkpoint cut short used to end in torch's multi-sentence RuntimeError about a
    "central directory" and miniz."""
    cut = _small_checkpoint(tmp_path / "cut.pt")
    size = cut.stat().st_size // 2
    cut.write_bytes(cut.read_bytes()[:size])
    result = cli("eval", "mmclip", "--checkpoint", cut, "--data", corpus, "--device", "cpu")
    assert _one_line_error(result, 2) == (
        f"error: {cut}: truncated checkpoint: the zip archive has no end after {size} bytes "
        "(a save or copy cut short?): save or copy it again"
    )


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "empty file, not a checkpoint"),
        (b"hello\n", "not a checkpoint: not the zip archive that torch.save writes"),
        (
            "tensor",
            "not a geoforge checkpoint: a PyTorch file of a Tensor without model_name and model "
            "(train mmclip writes checkpoints)",
        ),
        (
            "state dict",
            "not a geoforge checkpoint: a PyTorch file of a dict without model_name "
            "(train mmclip writes checkpoints)",
        ),
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_refused_saying_what_it_is(
    tmp_path: Path, content: bytes | str, said: str
) -> None:
    from geoforge_train.models import CheckpointError, read_checkpoint

    path = tmp_path / "x.pt"
    if content == "tensor":
        torch.save(torch.zeros(3), path)
    elif content == "state dict":
        torch.save({"model": {"w": torch.zeros(3)}}, path)
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    assert str(e.value) == f"{path}: {said}"


@pytest.fixture
def progress_bars():  # type: ignore[no-untyped-def]
    """transformers' progress bars switched on (their default), as they were put back after."""
    hf_logging = pytest.importorskip("transformers.utils.logging")
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    yield
    (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()


def test_loading_and_saving_an_mmgeolm_draws_no_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], progress_bars
) -> None:  # type: ignore[no-untyped-def]
    """transformers drew "Loading weights" and "Writing model shards" bars on stderr whenever
    a caller had not silenced it first (the trainers, eval mmgeolm and experiments load here)."""
    from geoforge_train.mmgeolm import model as mm
    from geoforge_train.mmgeolm.tiny import tiny_llm
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel
    from transformers.utils import logging as hf_logging

    tower = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
            projection_dim=16,
        )
    )
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    tower.save_pretrained(tmp_path / "tower")
    processor.save_pretrained(tmp_path / "tower")
    llm = tiny_llm(tmp_path / "llm", ["Is AD ⊥ BC? \\boxed{yes}"] * 4, hidden=32)
    capsys.readouterr()
    tower, processor = mm.load_tower(tmp_path / "tower")
    bundle = mm.assemble(tower, processor, *mm.load_llm(llm))
    mm.save(bundle, tmp_path / "model")
    loaded = mm.load(tmp_path / "model")
    err = capsys.readouterr().err
    assert "Loading weights" not in err and "Writing model shards" not in err and "it/s" not in err, err
    assert loaded.image_seq_length == 4  # (32 / 16)² patches, CLS dropped
    assert hf_logging.is_progress_bar_enabled()  # the caller's setting is left as it was


def test_training_with_loader_workers_stops_at_an_unreadable_sample_in_one_line(
    corpus: Path, tmp_path: Path
) -> None:
    """In a DataLoader worker the error used to come back with the worker's whole traceback as
    its message (a dozen `error:` lines)."""
    from geoforge_train.train import TrainConfig, train

    damaged = tmp_path / "damaged"
    key = _with_corrupt_figure(corpus, damaged, "shard-000001.tar", 1)
    config = TrainConfig(
        data=str(damaged), out=str(tmp_path / "run"), max_steps=1, batch_size=N, device="cpu", workers=2
    )
    with pytest.raises(UnreadableSample) as e:
        train(config)
    assert str(e.value) == (
        f"{damaged / 'shard-000001.tar'}: sample {key} cannot be read: OSError: broken data stream when "
        "reading image file"
    )


def test_mmgeolm_scores_of_no_question_are_null_not_nan() -> None:
    """A benchmark without flipped questions (GeoQA, or the blind control's positives only)
    used to get `NaN` accuracies, which `eval mmgeolm --json` wrote as invalid JSON."""
    pytest.importorskip("transformers")
    from geoforge_train.mmgeolm.data import Example
    from geoforge_train.mmgeolm.evaluate import score

    questions = [
        Example(None, "Is AD ⊥ BC?", "", key=k, item="0", type="perception", relation="perp", answer="yes")
        for k in ("a", "b")
    ]
    report = score(questions, ["\\boxed{yes}", "\\boxed{no}"])
    assert report["overall"] == {"accuracy": 0.5, "n": 2}
    for group in ("flipped_positive", "flipped_negative", "paired"):
        assert report[group] == {"accuracy": None, "n": 0}
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_corpus_cache_of_a_corrupt_figure_names_its_shard_and_sample_in_one_line(
    corpus: Path, tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    """It used to end in "internal error: OSError: broken data stream when reading image file"."""
    damaged = tmp_path / "damaged"
    key = _with_corrupt_figure(corpus, damaged, "shard-000001.tar", 0)
    result = cli("corpus", "cache", damaged, "--size", "48", "--out", tmp_path / "cache")
    assert _one_line_error(result, 2) == (
        f"error: {damaged / 'shard-000001.tar'}: sample {key} cannot be read: OSError: broken data stream "
        "when reading image file"
    )
    assert not (tmp_path / "cache").exists()
