"""What ``train mmclip --resume`` checks: that the run it continues was trained with the same
settings and on the same corpus, as its checkpoint records them."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from geoforge.errors import UsageError

if TYPE_CHECKING:
    from geoforge_train.train import TrainConfig

#: Settings a resumed run must keep (config key → option).
RESUME_KEEPS = {
    "data": "--data",
    "batch_size": "--batch-size",
    "accum": "--accum",
    "lr": "--lr",
    "weight_decay": "--weight-decay",
    "warmup": "--warmup",
    "loss": "--loss",
    "text_negatives": "--text-negatives",
    "k_text": "--k-text",
    "k_image": "--k-image",
    "seed": "--seed",
    "rotate": "--rotate",
    "downscale": "--downscale",
}


def check_same_run(
    checkpoint: Path,
    stored: dict[str, object],
    config: TrainConfig,
    stored_data: str | None = None,
    data: str | None = None,
) -> None:
    """Raise UsageError naming the option when ``config`` differs from the ``stored`` config of
    the run that ``--resume`` continues (:data:`RESUME_KEEPS`); the stored config is never
    rewritten. The corpus is judged by its fingerprint (``stored_data`` then, ``data`` now;
    :meth:`geoforge_train.data.CorpusIndex.fingerprint`), not by how ``--data`` spells its
    path, where the checkpoint has one (runs before 2026-12-05 compare the normalised paths)."""
    now = config_json(config)
    if stored_data is not None and data is not None:
        if stored_data != data:
            raise UsageError(
                f"--resume: the corpus at --data {config.data!r} is not the one the run in "
                f"{checkpoint.parent.parent} was trained on (its shards or manifest differ: "
                f"fingerprint {data}, then {stored_data}); resume with the same corpus or choose "
                "another --out"
            )
        stored, now = {**stored, "data": None}, {**now, "data": None}
    elif isinstance(stored.get("data"), str):
        stored = {**stored, "data": _normalised(str(stored["data"]))}
        now = {**now, "data": _normalised(config.data)}
    for key, option in RESUME_KEEPS.items():
        if key in stored and stored[key] != now[key]:
            raise UsageError(
                f"--resume: {option} {now[key]!r} differs from {stored[key]!r}, which the run in "
                f"{checkpoint.parent.parent} was trained with; resume with the same settings or choose "
                "another --out"
            )


def planned_steps(stored: dict[str, object], steps_per_epoch: int) -> int | None:
    """The steps the run of the ``stored`` config was planned for (its ``--epochs`` and
    ``--max-steps`` at ``steps_per_epoch``), or ``None`` if it does not say."""
    epochs, cap = stored.get("epochs"), stored.get("max_steps")
    if not isinstance(epochs, int) or not (cap is None or isinstance(cap, int)):
        return None
    return min(cap or steps_per_epoch * epochs, steps_per_epoch * epochs)


def _normalised(data: str) -> str:
    """``--data`` with each ``::``-joined source's path normalised (``out/c/`` is ``out/c``)."""
    return "::".join(os.path.normpath(source) for source in data.split("::"))


def config_json(config: TrainConfig) -> dict[str, object]:
    """The config as JSON-ready data."""
    data = asdict(config)
    data["text_negatives"] = list(config.text_negatives)
    return data
