"""``geoforge export mmclip``: a trained MMCLIP checkpoint for plain open_clip or Hugging Face
``transformers`` (needs the ``[train]`` extra)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from geoforge.cli.app import app, out

export_app = typer.Typer(
    help="Export trained models for open_clip or Hugging Face (needs the [train] extra).",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export", rich_help_panel="Training")

#: What each target writes, and how to load it without geoforge.
TARGETS = {
    "open_clip": "open_clip.create_model_and_transforms('local-dir:{dir}')",
    "hf": "transformers.CLIPVisionModelWithProjection.from_pretrained('{dir}') and "
    "AutoImageProcessor.from_pretrained('{dir}', backend='pil')",
}


@export_app.command("mmclip")
def export_mmclip(
    run: Annotated[str, typer.Argument(help="Run directory (its final or latest checkpoint) or a .pt file.")],
    to: Annotated[
        str, typer.Option("--to", help="open_clip (local-dir) or hf (CLIPVisionModelWithProjection).")
    ],
    directory: Annotated[Path, typer.Argument(help="Directory to write.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Write into a directory that is not empty.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Export an MMCLIP checkpoint: open_clip weights (safetensors) and config with geoforge's
    preprocessing, or the image tower as a Hugging Face CLIPVisionModelWithProjection with its
    CLIPImageProcessor."""
    from geoforge.errors import UsageError

    if to not in TARGETS:
        raise UsageError(f"--to {to}: expected {' or '.join(TARGETS)}")
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a directory")
    if directory.is_dir() and any(directory.iterdir()) and not overwrite:
        raise UsageError(f"{directory} is not empty: pass --overwrite to write into it")
    try:
        from geoforge_train.export import export_hf, export_open_clip
        from geoforge_train.models import read_checkpoint
    except ImportError as e:
        raise UsageError(f"export needs the [train] extra (pip install -e '.[train]'): {e}") from None
    state = read_checkpoint(run)
    directory.mkdir(parents=True, exist_ok=True)
    files = (export_open_clip if to == "open_clip" else export_hf)(state, directory)
    load = TARGETS[to].format(dir=directory)
    if as_json:
        summary = {"to": to, "step": state.get("step"), "files": [str(f) for f in files], "load": load}
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    names = ", ".join(f.name for f in files)
    out.print(f"exported {state.get('model_name')} at step {state.get('step')} to {directory}: {names}")
    out.print(f"load it with {load}")
