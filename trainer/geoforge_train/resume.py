"""What ``train mmclip --resume`` and ``train mmgeolm --resume`` check: that the run they
continue was trained with the same settings and on the same corpus, as the run recorded them."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from geoforge.errors import UsageError

if TYPE_CHECKING:
    from geoforge_train.mmgeolm.train import MMGeoLMConfig
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
    run: Path,
    stored: dict[str, object],
    now: dict[str, object],
    keeps: dict[str, str],
    stored_data: str | None = None,
    data: str | None = None,
) -> None:
    """Raise UsageError naming the option when the config ``now`` (JSON-ready, as
    :func:`config_json` gives) differs from the ``stored`` config of the run in ``run`` that
    ``--resume`` continues, in a key of ``keeps`` (config key → option: :data:`RESUME_KEEPS`
    for ``train mmclip``, ``geoforge_train.mmgeolm.train.RESUME_KEEPS`` for ``train
    mmgeolm``); keys the stored config lacks (older runs) are not compared, and the stored
    config is never rewritten. The corpus (key ``data``) is judged by its fingerprint
    (``stored_data`` then, ``data`` now; :meth:`geoforge_train.data.CorpusIndex.fingerprint`),
    not by how ``--data`` spells its path, where the run recorded one (runs before
    2026-12-05 compare the normalised paths)."""
    if stored_data is not None and data is not None:
        if stored_data != data:
            raise UsageError(
                f"--resume: the corpus at --data {now['data']!r} is not the one the run in "
                f"{run} was trained on (its shards or manifest differ: "
                f"fingerprint {data}, then {stored_data}); resume with the same corpus or choose "
                "another --out"
            )
        stored, now = {**stored, "data": None}, {**now, "data": None}
    elif isinstance(stored.get("data"), str):
        stored = {**stored, "data": _normalised(str(stored["data"]))}
        now = {**now, "data": _normalised(str(now["data"]))}
    for key, option in keeps.items():
        if key in stored and stored[key] != now[key]:
            raise UsageError(
                f"--resume: {option} {now[key]!r} differs from {stored[key]!r}, which the run in "
                f"{run} was trained with; resume with the same settings or choose another --out"
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


def config_json(config: TrainConfig | MMGeoLMConfig) -> dict[str, object]:
    """A run config (a dataclass) as the JSON data it is stored as: tuples become lists, so
    a stored config compares equal to the config it was made from."""
    data: dict[str, object] = json.loads(json.dumps(asdict(config)))
    return data
