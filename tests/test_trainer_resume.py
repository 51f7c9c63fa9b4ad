"""The trainer refuses what would give a silently wrong run: a resumed run with other settings
than its checkpoint's, a directory without shards (naming what it ignored), a negative rate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from geoforge_train.data import DataError, shard_paths  # noqa: E402
from geoforge_train.resume import RESUME_KEEPS, check_same_run, config_json  # noqa: E402
from geoforge_train.train import TrainConfig  # noqa: E402
from trainer_support import _cli, _one_line_error  # noqa: E402

from geoforge.errors import UsageError  # noqa: E402

CONFIG = TrainConfig(data="out/corpus", out="out/run", batch_size=8, lr=5e-4)
RUN = Path("out/run")


@pytest.mark.parametrize(
    "change, option",
    [
        ({"data": "out/other"}, "--data"),
        ({"batch_size": 4}, "--batch-size"),
        ({"lr": 1e-3}, "--lr"),
        ({"rotate": 10.0}, "--rotate"),
    ],
)
def test_resume_with_other_data_batch_size_or_lr_is_refused_by_name(
    change: dict[str, object], option: str
) -> None:
    stored = config_json(CONFIG)
    with pytest.raises(
        UsageError, match=rf"^--resume: {option} .* differs from .*, which the run in out/run was"
    ):
        check_same_run(RUN, stored, config_json(replace(CONFIG, **change)), RESUME_KEEPS)  # type: ignore[arg-type]
    assert stored == config_json(CONFIG)


def test_resume_may_train_for_more_epochs_and_steps() -> None:
    check_same_run(
        RUN, config_json(CONFIG), config_json(replace(CONFIG, epochs=5, max_steps=100)), RESUME_KEEPS
    )


def test_a_directory_without_shards_names_the_files_it_ignored(tmp_path: Path) -> None:
    for name in ("data-0001.tar", "data-0002.tar", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError) as info:
        shard_paths(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: no shard-NNNNNN.tar and no sizes.json; ignored data-0001.tar, data-0002.tar, notes.txt"
    )


def test_a_negative_learning_rate_is_refused() -> None:
    with pytest.raises(UsageError, match=r"^--lr -1: the learning rate must be positive$"):
        replace(CONFIG, lr=-1.0).check()


@pytest.mark.slow
def test_a_negative_learning_rate_is_a_one_line_usage_error(tmp_path: Path) -> None:
    line = _one_line_error(
        _cli("train", "mmclip", "--data", tmp_path, "--out", tmp_path / "run", "--lr", "-1")
    )
    assert line == "error: --lr -1: the learning rate must be positive"
