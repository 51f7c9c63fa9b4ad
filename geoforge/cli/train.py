"""Commands that need the ``[train]`` extra: ``train mmclip`` and ``eval mmclip``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from geoforge.cli.app import app, counted, stopped
from geoforge.cli.options import SaveTotalLimitOption

train_app = typer.Typer(
    help="Train models on geoforge corpora (needs the [train] extra).", no_args_is_help=True
)
eval_app = typer.Typer(help="Evaluate trained models (needs the [train] extra).", no_args_is_help=True)
app.add_typer(train_app, name="train", rich_help_panel="Training")
app.add_typer(eval_app, name="eval", rich_help_panel="Training")


def _need_train_extra() -> None:
    """Raise UsageError naming the install step if torch/open_clip are missing."""
    from geoforge.errors import UsageError

    try:
        import geoforge_train  # noqa: F401
    except ImportError as e:
        raise UsageError(f"training needs the [train] extra (pip install -e '.[train]'): {e}") from None


@train_app.command("mmclip")
def train_mmclip(
    data: Annotated[
        list[str],
        typer.Option(
            "--data",
            help="Corpus directory, shard or brace pattern (out/c{0..3}); repeatable, or join with ::.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Run directory: checkpoints, log.jsonl, loss.png.")],
    model: Annotated[str, typer.Option("--model", help="open_clip model name.")] = "geoforge-tiny",
    pretrained: Annotated[
        str | None, typer.Option("--pretrained", help="open_clip tag or local file.")
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 1,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, help="Stop after this many steps.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Per rank and micro-batch.")] = 32,
    accum: Annotated[int, typer.Option("--accum", min=1, help="Micro-batches per optimiser step.")] = 1,
    lr: Annotated[float, typer.Option("--lr")] = 5e-4,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 0.1,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Warmup steps.")] = 10,
    loss: Annotated[str, typer.Option("--loss", help="mmclip, paper-group or siglip-group.")] = "mmclip",
    text_negatives: Annotated[
        list[str] | None, typer.Option("--text-negatives", help="caption and/or retrieval; repeatable.")
    ] = None,
    k_text: Annotated[int, typer.Option("--k-text", min=0, help="Caption negatives per sample.")] = 0,
    k_image: Annotated[int, typer.Option("--k-image", min=0, help="Image negatives per sample.")] = 0,
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="auto (bf16 on GPUs that support it, else fp32), fp32 or bf16 (autocast; "
            "open_clip's amp_bf16).",
        ),
    ] = "auto",
    device: Annotated[
        str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")
    ] = "auto",
    grad_checkpointing: Annotated[
        bool,
        typer.Option(
            "--grad-checkpointing",
            help="Recompute each transformer block in the backward pass: less memory, more compute "
            "(open_clip's --grad-checkpointing).",
        ),
    ] = False,
    compile_model: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the model (open_clip's --torchcompile); the first step, which "
            "compiles, is timed apart.",
        ),
    ] = False,
    fsdp: Annotated[
        bool,
        typer.Option(
            "--fsdp",
            help="Shard weights, gradients and optimizer state across ranks with FSDP2 instead of "
            "DDP (under torchrun).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    data_workers: Annotated[
        int, typer.Option("--data-workers", min=0, help="DataLoader worker processes.")
    ] = 0,
    data_cache: Annotated[
        str | None,
        typer.Option("--data-cache", help="Pre-decoded images of --data (geoforge corpus cache)."),
    ] = None,
    save_every: Annotated[int, typer.Option("--save-every", min=0, help="Checkpoint every N steps.")] = 0,
    save_total_limit: Annotated[int | None, SaveTotalLimitOption] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from OUT/checkpoints/latest.pt.")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on a missing or corrupt shard.")] = False,
    rotate: Annotated[
        float, typer.Option("--rotate", min=0, help="Max rotation (degrees) at train time.")
    ] = 0.0,
    downscale: Annotated[
        float, typer.Option("--downscale", min=0.1, max=1.0, help="Min downscale factor.")
    ] = 1.0,
    log_every: Annotated[
        int,
        typer.Option("--log-every", min=0, help="A progress line every N steps when not on a terminal."),
    ] = 10,
    val_data: Annotated[
        list[str] | None, typer.Option("--val-data", help="Held-out corpus evaluated during training.")
    ] = None,
    val_every: Annotated[
        int, typer.Option("--val-every", min=0, help="Evaluate on --val-data every N steps (0: at the end).")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Train an MMCLIP vision encoder (any open_clip model) with verified hard negatives.

    Many processes: torchrun --nproc-per-node N $(which geoforge) train mmclip ...; several
    machines: docs/distributed.md.
    """
    _need_train_extra()
    from geoforge_train.train import TrainConfig, train

    config = TrainConfig(
        data="::".join(data),
        out=str(out),
        model=model,
        pretrained=pretrained,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        accum=accum,
        lr=lr,
        weight_decay=weight_decay,
        warmup=warmup,
        loss=loss,
        text_negatives=tuple(text_negatives or ()),
        k_text=k_text,
        k_image=k_image,
        precision=precision,
        device=device,
        seed=seed,
        workers=data_workers,
        data_cache=data_cache,
        save_every=save_every,
        save_total_limit=save_total_limit,
        resume=resume,
        strict=strict,
        rotate=rotate,
        downscale=downscale,
        log_every=log_every,
        val_data="::".join(val_data) if val_data else None,
        val_every=val_every,
        grad_checkpointing=grad_checkpointing,
        compile=compile_model,
        fsdp=fsdp,
    )
    try:
        summary = train(config, lines=sys.stderr if as_json else sys.stdout)
    except KeyboardInterrupt as e:  # Typer would exit 130 silently: say what is kept
        raise typer.Exit(stopped(e, checkpoint_kept(out))) from None
    if int(os.environ.get("RANK", "0")) == 0:
        if as_json:
            sys.stdout.write(json.dumps(summary) + "\n")
        else:
            out_console = Console(highlight=False, width=120)
            if summary["trained"] == 0:  # a resumed run already at its last step (warned above)
                out_console.print(f"nothing to train; checkpoint {summary['checkpoint']}")
            else:
                _print_trained(out_console, summary, out, compile_model)


def checkpoint_kept(out: Path) -> str:
    """What a training run stopped in ``out`` keeps, and how to go on from it."""
    latest = out / "checkpoints" / "latest.pt"
    if not latest.is_file():
        return "no checkpoint was written yet (--save-every N writes one every N steps)"
    return (
        f"its last checkpoint, {latest.resolve().name}, is kept; run the same command with --resume "
        "to continue from it"
    )


def _print_trained(console: Console, summary: dict[str, Any], out: Path, compiled: bool) -> None:
    """What a training run did: steps, time, device, final loss, step times, where it wrote."""
    console.print(
        f"trained {counted(summary['trained'], 'step')} in {summary['seconds']} s on {summary['device']} "
        f"({summary['precision']}); final loss {summary['final_loss']:.4f}"
    )
    if summary["step_seconds"] is not None:
        console.print(
            f"first step {summary['first_step_seconds']} s"
            + (" (compilation included)" if compiled else "")
            + f", then {summary['step_seconds']} s per step (median)"
        )
    console.print(f"checkpoint {summary['checkpoint']}; log {out / 'log.jsonl'}; curve {out / 'loss.png'}")


@eval_app.command("mmclip")
def eval_mmclip(
    checkpoint: Annotated[
        list[str],
        typer.Option(
            "--checkpoint", help="Run dir, .pt file, untrained:MODEL or pretrained:MODEL:TAG; repeatable."
        ),
    ],
    data: Annotated[
        list[str], typer.Option("--data", help="Held-out corpus with negatives (as train's --data).")
    ],
    device: Annotated[
        str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")
    ] = "auto",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Evaluate the first N samples.")] = None,
    per_sample: Annotated[
        Path | None,
        typer.Option(
            "--per-sample", help="Also write every sample's scores, one JSON line per model and sample."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Hard-negative accuracy (per kind, both directions) and in-batch R@1 of models, side by side.

    --per-sample FILE writes one JSON line per model and sample: its key and, per direction and
    negative kind, [score of the positive, [scores of the negatives]] (also the captions scored
    against another sample's image), for bootstrap intervals and paired tests.
    """
    _need_train_extra()
    from geoforge_train.distributed import resolve_device
    from geoforge_train.evaluate import evaluate, load, table

    if per_sample is not None:
        from geoforge.errors import UsageError

        if per_sample.exists():
            raise UsageError(f"--per-sample {per_sample} exists: choose another file (it is never replaced)")
        if not per_sample.parent.is_dir():
            raise UsageError(f"--per-sample {per_sample}: no directory {per_sample.parent} to write it in")
    dev = resolve_device(device)
    results = [
        evaluate(load(spec, dev), "::".join(data), dev, limit=limit, per_sample=per_sample is not None)
        for spec in checkpoint
    ]
    if per_sample is not None:
        with per_sample.open("w") as fh:
            for r in results:
                for record in r.pop("per_sample"):  # type: ignore[attr-defined]
                    fh.write(json.dumps({"model": r["model"]} | record) + "\n")
    if as_json:
        sys.stdout.write(json.dumps(results, indent=1) + "\n")
        return
    Console(highlight=False, width=160).print(table(results))
