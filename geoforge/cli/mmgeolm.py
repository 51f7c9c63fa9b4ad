"""MMGeoLM commands (need the ``[train]`` extra): ``train mmgeolm``, ``eval mmgeolm`` and
``ask``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from geoforge.cli.app import app, err, out, stopped
from geoforge.cli.options import SaveTotalLimitOption
from geoforge.cli.train import _need_train_extra, checkpoint_kept, eval_app, train_app


@train_app.command("mmgeolm")
def train_mmgeolm(
    stage: Annotated[
        str, typer.Option("--stage", help="align (projector on captions) or sft (LLM + projector on Q&A).")
    ],
    data: Annotated[
        Path, typer.Option("--data", help="Corpus directory: captions for align, Q&A (--qa) for sft.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory: checkpoint-N/, final/, log.jsonl.")],
    tower: Annotated[
        str | None,
        typer.Option("--tower", help="align: MMCLIP run, .pt, or `export mmclip --to hf` directory."),
    ] = None,
    llm: Annotated[str | None, typer.Option("--llm", help="align: a causal-LM directory.")] = None,
    init: Annotated[str | None, typer.Option("--init", help="sft: the align run (or its final/).")] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 1,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Per device.")] = 8,
    accum: Annotated[int, typer.Option("--accum", min=1, help="Gradient accumulation steps.")] = 1,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Default: 1e-3 align, 2e-5 sft (the paper's).")
    ] = None,
    warmup: Annotated[int, typer.Option("--warmup", min=0)] = 0,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")] = "auto",
    precision: Annotated[
        str, typer.Option("--precision", help="auto (bf16 on CUDA), fp32 or bf16.")
    ] = "auto",
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing")] = False,
    lora: Annotated[bool, typer.Option("--lora", help="sft: train LoRA adapters (peft) of the LLM.")] = False,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1)] = 16,
    deepspeed: Annotated[
        str | None,
        typer.Option("--deepspeed", help="zero2, zero3 or a DeepSpeed JSON config (the [deepspeed] extra)."),
    ] = None,
    save_every: Annotated[int, typer.Option("--save-every", min=0, help="Checkpoint every N steps.")] = 0,
    save_total_limit: Annotated[int | None, SaveTotalLimitOption] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from OUT's latest checkpoint-N.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    flips: Annotated[
        bool, typer.Option("--flips", help="sft: also ask each question of its flipping negatives.")
    ] = False,
    max_length: Annotated[int, typer.Option("--max-length", min=8)] = 512,
    feature_layer: Annotated[
        int, typer.Option("--feature-layer", help="Tower layer the projector reads.")
    ] = -2,
    data_workers: Annotated[int, typer.Option("--data-workers", min=0)] = 0,
    log_every: Annotated[int, typer.Option("--log-every", min=1, help="Plain log line every N steps.")] = 10,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Use the first N samples.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Train MMGeoLM: stage align, then stage sft (tower frozen). Many GPUs:
    torchrun --nproc_per_node N $(which geoforge) train mmgeolm ..."""
    _need_train_extra()
    from geoforge_train.mmgeolm.model import quiet
    from geoforge_train.mmgeolm.train import MMGeoLMConfig, train_mmgeolm

    quiet()

    config = MMGeoLMConfig(
        stage=stage,
        data=str(data),
        out=str(out_dir),
        tower=tower,
        llm=llm,
        init=init,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        accum=accum,
        lr=lr,
        warmup=warmup,
        device=device,
        precision=precision,
        gradient_checkpointing=gradient_checkpointing,
        lora=lora,
        lora_r=lora_r,
        deepspeed=deepspeed,
        save_every=save_every,
        save_total_limit=save_total_limit,
        resume=resume,
        seed=seed,
        flips=flips,
        max_length=max_length,
        feature_layer=feature_layer,
        data_workers=data_workers,
        log_every=log_every,
        limit=limit,
    )
    try:
        summary = train_mmgeolm(config)
    except KeyboardInterrupt as e:  # Typer would exit 130 silently: say what is kept
        raise typer.Exit(stopped(e, checkpoint_kept(Path(config.out)))) from None
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    out.print(
        f"{summary['stage']}: {summary['steps']} steps on {summary['examples']} examples "
        f"in {summary['seconds']} s; final loss {summary['final_loss']:.4f}; model {summary['model']}"
    )


@eval_app.command("mmgeolm")
def eval_mmgeolm(
    checkpoint: Annotated[
        str, typer.Option("--checkpoint", help="An MMGeoLM run (its final/) or model directory.")
    ],
    data: Annotated[
        Path, typer.Option("--data", help="Q&A corpus directory, or a benchmark file with --format.")
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="geoforge (a --qa corpus), geoqa or mathvista.")
    ] = "geoforge",
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="The first N samples.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Accuracy per question type and relation, and paired accuracy on positive vs image-negative
    figures; GeoQA and MathVista (geometry) files with --format."""
    _need_train_extra()
    from geoforge_train.mmgeolm.data import DataError, qa_examples
    from geoforge_train.mmgeolm.evaluate import FORMATS, evaluate, read_benchmark
    from geoforge_train.mmgeolm.model import load, quiet
    from geoforge_train.mmgeolm.train import pick_device
    from rich.table import Table

    quiet()
    if fmt not in FORMATS:
        raise DataError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    dev = pick_device(device)
    examples = (
        qa_examples(data, flips=True, limit=limit) if fmt == "geoforge" else read_benchmark(data, fmt)[:limit]
    )
    result: dict[str, Any] = {"checkpoint": checkpoint, "data": str(data), "format": fmt}
    result.update(evaluate(load(checkpoint, dev), examples, dev, batch_size))
    if as_json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
        return
    table = Table(title=f"{checkpoint} on {data}")
    for col in ("", "accuracy", "n"):
        table.add_column(col)
    rows = [("overall", result["overall"])]
    rows += [
        (k, v) for group in ("by_type", "by_relation", "by_format") for k, v in result.get(group, {}).items()
    ]
    rows += [
        (f"flipped questions: {k}", result[k]) for k in ("flipped_positive", "flipped_negative", "paired")
    ]
    for name, v in rows:
        table.add_row(name, f"{v['accuracy']:.3f}" if v["n"] else "-", str(v["n"]))
    Console(highlight=False, width=120).print(table)


@app.command(rich_help_panel="Training")
def ask(
    image: Annotated[Path, typer.Argument(help="A figure (PNG, JPEG).")],
    question: Annotated[str, typer.Argument(help='The question, e.g. "Is AD ⊥ BC?".')],
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="An MMGeoLM run or model directory.")],
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 64,
) -> None:
    """Ask a trained MMGeoLM a question about a figure; prints its reply."""
    _need_train_extra()
    from geoforge_train.mmgeolm.data import Example
    from geoforge_train.mmgeolm.evaluate import answer
    from geoforge_train.mmgeolm.model import load, quiet
    from geoforge_train.mmgeolm.train import pick_device
    from PIL import Image, UnidentifiedImageError

    from geoforge.errors import UsageError

    try:
        with Image.open(image) as im:
            picture = im.convert("RGB")
    except (OSError, UnidentifiedImageError):
        raise UsageError(f"{image}: not a readable image") from None
    quiet()
    dev = pick_device(device)
    reply = answer(load(checkpoint, dev), [Example(picture, question, "")], dev, max_new_tokens)[0]
    if not reply.strip():  # say so, rather than print an empty line that reads as a hang or a bug
        err.print(
            f"warning: the model's reply is empty (its {max_new_tokens} new tokens were special "
            "tokens or whitespace): a model trained too little often answers this way "
            "(`geoforge eval mmgeolm` measures it)"
        )
    out.print(reply.strip())
