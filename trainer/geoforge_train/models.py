"""Building open_clip models by name and saving or loading checkpoints.

Any open_clip model name works; ``geoforge-tiny`` (configs/: a ViT of about 2 M parameters
and a small text tower, 9.1 M parameters in all, most of them the token embedding of
open_clip's bundled BPE tokenizer) runs on a 2-core CPU with no download. ``pretrained``
is an open_clip tag or a local file, never needed offline.

A checkpoint is self-contained: besides the weights and the training state it holds the
model's open_clip config (``model_cfg``) and its image preprocessing (``preprocess_cfg``), and
it loads with ``torch.load(..., weights_only=True)``. A run writes each step's checkpoint once;
``latest.pt`` and ``final.pt`` are symbolic links to it.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import open_clip
import torch
from torch import nn

from geoforge.errors import GeoforgeError, UsageError


class CheckpointError(GeoforgeError):
    """A checkpoint is missing, corrupt, or was made for another model; the CLI exits with
    status 2."""

    exit_code = 2


#: Normalisation of geoforge's own configs, trained from scratch on black-on-white diagrams:
#: white maps to 0 and black to −2. With OpenAI's statistics the white background becomes a
#: constant of about +2 in every patch and a from-scratch ViT gave nearly the same features
#: for every figure (mean cosine 0.9999 between figures in the first ablation, experiments/README.md).
GEOFORGE_NORMALISATION = {"mean": (1.0, 1.0, 1.0), "std": (0.5, 0.5, 0.5)}
#: How every model's images are resized: the whole figure is kept, never cropped (its longer
#: side resized to the model's size, bicubic, centred on white). open_clip's own default crops
#: the centre (``resize_mode="shortest"``), which can cut labels away. :class:`geoforge_train.data.Transform`
#: implements exactly this.
NO_CROP = {"interpolation": "bicubic", "resize_mode": "longest", "fill_color": 255}


def preprocess_cfg(model: nn.Module) -> dict[str, Any]:
    """The model's image preprocessing as open_clip's ``preprocess_cfg`` (JSON-ready): ``size``
    [h, w] in pixels, ``mode``, per-channel ``mean`` and ``std`` (a pretrained tag's own
    statistics, or :data:`GEOFORGE_NORMALISATION` for geoforge's configs), and
    :data:`NO_CROP`'s resizing. What training, evaluation, checkpoints and exports use."""
    cfg = dict(model.visual.preprocess_cfg)  # type: ignore[union-attr,arg-type]
    size = cfg["size"]
    cfg["size"] = list(size) if isinstance(size, (tuple, list)) else [size, size]
    cfg["mean"], cfg["std"] = list(cfg["mean"]), list(cfg["std"])
    return cfg


def unknown_model(name: str) -> str | None:
    """``None`` if open_clip knows the model ``name`` (geoforge's shipped configs included),
    else what to tell the user: the closest known names, or how many there are and where to
    list them."""
    import difflib

    import geoforge_train  # noqa: F401  (registers the shipped configs)

    known = open_clip.list_models()
    if name in known:
        return None
    near = difflib.get_close_matches(name, known, n=3)
    if near:
        return f"did you mean {', '.join(near)}?"
    return (
        f"expected one of the {len(known)} names of open_clip.list_models(), such as geoforge-tiny "
        "(runs on a CPU with no download) or ViT-B-16"
    )


def create_model(
    name: str, pretrained: str | None, device: torch.device, given: str | None = None
) -> tuple[nn.Module, Any, int]:
    """``(model, tokenizer, image_size)`` for an open_clip model name.

    ``given`` is how the user asked for the model, which errors name (by default ``--model
    NAME`` and ``--pretrained TAG``, the trainer's options; ``eval mmclip`` gives its
    ``--checkpoint untrained:NAME``). Raises UsageError for an unknown model name (with
    :func:`unknown_model`'s hint) and CheckpointError if ``pretrained`` cannot be loaded.
    """
    hint = unknown_model(name)
    if hint is not None:
        where = (
            f"{given}: unknown open_clip model {name}"
            if given
            else f"--model {name}: unknown open_clip model"
        )
        raise UsageError(f"{where}; {hint}")
    quiet = logging.getLogger()
    level = quiet.level
    # open_clip logs at root level: a warning that no weights were loaded, and an error before
    # it raises for weights it cannot find (the CheckpointError below says it in one line)
    quiet.setLevel(logging.ERROR if pretrained is None else logging.CRITICAL)
    try:
        own = name.startswith("geoforge-") and pretrained is None
        force = {**NO_CROP, **(GEOFORGE_NORMALISATION if own else {})}
        model = open_clip.create_model(name, pretrained=pretrained, device=device, force_preprocess_cfg=force)
    except (RuntimeError, OSError, ValueError) as e:
        raise CheckpointError(f"{given or f'--pretrained {pretrained}'}: cannot load: {e}") from None
    finally:
        quiet.setLevel(level)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    return model, open_clip.get_tokenizer(name), int(size)


def save_checkpoint(
    out: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    config: Any,
    history: list[float],
    rng: dict[str, object],
    final: bool = False,
    data_fingerprint: str | None = None,
) -> Path:
    """Write ``out/checkpoints/step-NNNNNN.pt`` and point ``latest.pt`` (and ``final.pt`` when
    ``final``) at it with a relative symbolic link, so the weights are on disk once. The file
    holds the model's name, open_clip config (``model_cfg``) and ``preprocess_cfg``, the model,
    optimizer and scheduler state, step, loss history, RNG states (``rng``, made of tensors and
    numbers), the run config and ``data_fingerprint`` (what ``--resume`` checks the corpus
    against, :meth:`geoforge_train.data.CorpusIndex.fingerprint`); it loads with
    ``torch.load(..., weights_only=True)``. The file
    and each link are written under a temporary name and renamed.

    ``model`` may be the training module (DDP, FSDP2): the state is that of the bare model,
    gathered whole under FSDP2 (:func:`geoforge_train.distributed.full_state`), so every rank
    of a process group calls this and rank 0 alone writes."""
    import torch.distributed as dist

    from geoforge_train.distributed import full_state, unwrap
    from geoforge_train.resume import config_json

    model_state, optimizer_state = full_state(model, optimizer)
    folder, name = out / "checkpoints", f"step-{step:06d}.pt"
    if dist.is_initialized() and dist.get_rank() != 0:
        return folder / name
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "model_name": config.model,
        "model_cfg": copy.deepcopy(open_clip.get_model_config(config.model)),
        "preprocess_cfg": preprocess_cfg(unwrap(model)),
        "model": model_state,
        "optimizer": optimizer_state,
        "scheduler": scheduler.state_dict(),
        "step": step,
        "history": history,
        "rng": rng,
        "config": config_json(config),
        "data_fingerprint": data_fingerprint,
    }
    tmp = folder / f".{name}.tmp"
    torch.save(state, tmp)
    tmp.replace(folder / name)
    return link_checkpoint(out, step, final)


def link_checkpoint(out: Path, step: int, final: bool = False) -> Path:
    """Point ``out/checkpoints/latest.pt`` (and ``final.pt`` when ``final``) at the written
    ``step-NNNNNN.pt`` with relative symbolic links, each made under a temporary name and
    renamed; returns the step's path. Rank 0 alone writes in a process group."""
    import torch.distributed as dist

    folder, name = out / "checkpoints", f"step-{step:06d}.pt"
    if dist.is_initialized() and dist.get_rank() != 0:
        return folder / name
    for pointer in ["latest.pt"] + (["final.pt"] if final else []):
        if (folder / pointer).is_symlink() and os.readlink(folder / pointer) == name:
            continue  # already there (a resumed run that had nothing to train)
        link = folder / f".{pointer}.tmp"
        link.unlink(missing_ok=True)
        os.symlink(name, link)
        link.replace(folder / pointer)
    return folder / name


def prune_checkpoints(out: Path, keep: int | None) -> list[Path]:
    """Delete all but the newest ``keep`` of ``out/checkpoints/step-NNNNNN.pt`` (``--save-total-limit``,
    as transformers' ``save_total_limit``), never one that ``latest.pt`` or ``final.pt``
    points at; ``None`` keeps every checkpoint. Rank 0 alone deletes in a process group.
    Returns the deleted paths, oldest first."""
    import torch.distributed as dist

    if keep is None or (dist.is_initialized() and dist.get_rank() != 0):
        return []
    folder = out / "checkpoints"
    steps = sorted(folder.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    pointed = {os.readlink(folder / n) for n in ("latest.pt", "final.pt") if (folder / n).is_symlink()}
    old = [p for p in steps[: max(len(steps) - keep, 0)] if p.name not in pointed]
    for path in old:
        path.unlink()
    return old


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file or run directory (its ``checkpoints/final.pt``, else
    ``latest.pt``) on CPU. Raises CheckpointError, one line naming the file, if it is missing,
    empty, truncated (a zip archive without its end, as a save or copy cut short leaves it), not
    a PyTorch file, or not a geoforge checkpoint (no ``model_name`` and ``model``)."""
    path = Path(path)
    if path.is_dir():
        for name in ("final.pt", "latest.pt"):
            if (path / "checkpoints" / name).is_file():
                path = path / "checkpoints" / name
                break
        else:
            raise CheckpointError(f"{path}: no checkpoints/final.pt or checkpoints/latest.pt")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    damage = _damage(path)
    if damage:
        raise CheckpointError(f"{path}: {damage}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: not a weights-only checkpoint (written by geoforge before checkpoints became "
            "self-contained?): train it again"
        ) from None
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(f"{path}: cannot read checkpoint: {type(e).__name__}: {first}") from None
    missing = [k for k in ("model_name", "model") if not isinstance(state, dict) or k not in state]
    if missing:
        what = "a dict" if isinstance(state, dict) else f"a {type(state).__name__}"
        raise CheckpointError(
            f"{path}: not a geoforge checkpoint: a PyTorch file of {what} without {' and '.join(missing)} "
            "(train mmclip writes checkpoints)"
        )
    return state


def _damage(path: Path) -> str | None:
    """What is wrong with the file ``path`` that no checkpoint could be read from it, judged by
    its bytes: empty, a zip archive (what ``torch.save`` writes) cut short, or not a zip archive
    at all; ``None`` if it is a whole zip archive."""
    import zipfile

    size = path.stat().st_size
    if size == 0:
        return "empty file, not a checkpoint"
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":
        return "not a checkpoint: not the zip archive that torch.save writes"
    if not zipfile.is_zipfile(path):
        return (
            f"truncated checkpoint: the zip archive has no end after {size} bytes (a save or copy cut "
            "short?): save or copy it again"
        )
    return None


def load_checkpoint(
    path: str | Path, model: nn.Module, model_name: str, optimizer: Any = None, scheduler: Any = None
) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (and optimizer/scheduler). Raises CheckpointError if it
    was made for another model than ``model_name`` or does not fit its parameters."""
    state = read_checkpoint(path)
    if state.get("model_name") != model_name:
        raise CheckpointError(f"{path}: checkpoint of model {state.get('model_name')!r}, not {model_name!r}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: does not fit model {model_name}: {str(e).splitlines()[0]}") from None
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    return state
