"""Building open_clip models by name and saving or loading checkpoints.

Any open_clip model name works; ``geoforge-tiny`` (configs/: a ViT of about 2 M parameters
and a small text tower, 9.1 M parameters in all, most of them the token embedding of
open_clip's bundled BPE tokenizer) runs on a 2-core CPU with no download. ``pretrained``
is an open_clip tag or a local file, never needed offline.
"""

from __future__ import annotations

import logging
import shutil
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
#: for every figure (mean cosine 0.9999 between figures in experiments/ablation_cpu.sh).
GEOFORGE_NORMALISATION = {"mean": (1.0, 1.0, 1.0), "std": (0.5, 0.5, 0.5)}


def normalisation(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` per channel the model's images are normalised with: open_clip's
    preprocessing config (a pretrained tag's own statistics), or
    :data:`GEOFORGE_NORMALISATION` for geoforge's configs."""
    cfg = getattr(getattr(model, "visual", None), "preprocess_cfg", None) or {}
    return tuple(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))), tuple(
        cfg.get("std", (0.26862954, 0.26130258, 0.27577711))
    )


def create_model(name: str, pretrained: str | None, device: torch.device) -> tuple[nn.Module, Any, int]:
    """``(model, tokenizer, image_size)`` for an open_clip model name.

    Raises UsageError for an unknown model name (listing close names) and CheckpointError if
    ``pretrained`` cannot be loaded.
    """
    import geoforge_train  # noqa: F401  (registers the shipped configs)

    known = open_clip.list_models()
    if name not in known:
        import difflib

        near = difflib.get_close_matches(name, known, n=3)
        raise UsageError(
            f"--model {name}: unknown open_clip model"
            + (f"; did you mean {', '.join(near)}?" if near else "")
        )
    quiet = logging.getLogger()
    level = quiet.level
    if pretrained is None:  # open_clip warns at root level that no weights were loaded
        quiet.setLevel(logging.ERROR)
    try:
        force = GEOFORGE_NORMALISATION if name.startswith("geoforge-") and pretrained is None else None
        model = open_clip.create_model(name, pretrained=pretrained, device=device, force_preprocess_cfg=force)
    except (RuntimeError, OSError, ValueError) as e:
        raise CheckpointError(f"--pretrained {pretrained}: cannot load: {e}") from None
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
) -> Path:
    """Write ``out/checkpoints/step-NNNNNN.pt`` (and ``latest.pt``; ``final.pt`` when
    ``final``): model, optimizer and scheduler state, step, loss history, RNG states and the
    run config. Written to a temporary name and renamed."""
    from geoforge_train.train import config_json

    folder = out / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "model_name": config.model,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "history": history,
        "rng": rng,
        "config": config_json(config),
    }
    names = [f"step-{step:06d}.pt", "latest.pt"] + (["final.pt"] if final else [])
    first = folder / f".{names[0]}.tmp"
    torch.save(state, first)  # serialised once; the other names get copies
    for name in names[1:]:
        tmp = folder / f".{name}.tmp"
        shutil.copyfile(first, tmp)
        tmp.replace(folder / name)
    first.replace(folder / names[0])
    return folder / names[0]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file or run directory (its ``checkpoints/final.pt``, else
    ``latest.pt``) on CPU. Raises CheckpointError if missing or unreadable."""
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
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read checkpoint: {type(e).__name__}: {e}") from None


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
