"""The ``geoforge`` command line (Typer + rich).

Quiet success, loud failure: a command prints what the user needs (a progress bar while it
works, one summary table at the end), ``--json`` prints machine-readable output and nothing
else on stdout, and an error is one line on stderr. Exit status: 0 success, 1 failed run,
2 bad usage or bad input. ``--debug`` shows tracebacks. Heavy imports (numpy, matplotlib)
happen inside the commands so ``--help`` is fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="geoforge",
    help="Fine-grained geometry diagrams: realise, render and check diagram programs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)
_state = {"debug": bool(os.environ.get("GEOFORGE_DEBUG"))}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"geoforge {version('geoforge')}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """geoforge: diagram programs → verified figures, captions and hard negatives."""
    _state["debug"] = _state["debug"] or debug


def _load_program(arg: str, problem: str | None):  # type: ignore[no-untyped-def]
    """A Program from DSL text, a one-program file, or one problem of a problem file."""
    from geoforge.errors import ProgramError
    from geoforge.problems import read_problems
    from geoforge.program import parse_program

    path = Path(arg)
    looks_like_path = "=" not in arg and (path.suffix or os.sep in arg)
    if not path.is_file():
        if looks_like_path:
            raise ProgramError(f"no such file: {arg}")
        if problem is not None:
            raise ProgramError("--problem needs a problem file, not program text")
        return parse_program(arg, source="<argument>")
    lines = [
        ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")
    ]
    if len(lines) == 1 and problem is None:
        return parse_program(lines[0], source=f"{path}:1")
    problems = read_problems(path)
    if problem is None:
        if len(problems) == 1:
            problem = problems[0].name
        else:
            names = ", ".join(p.name for p in problems[:3])
            raise ProgramError(
                f"{path} holds {len(problems)} problems: choose one with --problem NAME "
                f"or --problem INDEX (1-based), e.g. {names}"
            )
    if problem.isdigit():
        index = int(problem)
        if not 1 <= index <= len(problems):
            raise ProgramError(f"--problem {index}: {path} holds problems 1 to {len(problems)}")
        chosen = problems[index - 1]
    else:
        matches = [p for p in problems if p.name == problem]
        if not matches:
            raise ProgramError(f"no problem named {problem!r} in {path}")
        chosen = matches[0]
    return parse_program(chosen.text, source=chosen.source)


@app.command()
def render(
    program: Annotated[str, typer.Argument(help="Program text, a program file, or a problem file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file to write.")] = Path("diagram.png"),
    svg: Annotated[bool, typer.Option("--svg", help="Also write an SVG beside the PNG.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Realisation seed.")] = 0,
    size: Annotated[int, typer.Option("--size", min=64, max=4096, help="Image side in pixels.")] = 448,
    problem: Annotated[
        str | None,
        typer.Option("--problem", help="Problem name or 1-based index in a problem file."),
    ] = None,
) -> None:
    """Realise a diagram program and render it to PNG (and SVG)."""
    from geoforge.realise import realise

    scene = realise(_load_program(program, problem), seed=seed)
    from geoforge.render import save

    for path in save(scene, output, size=size, svg=svg):
        out.print(f"wrote {path}")


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="Problem file in AlphaGeometry's format.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per problem on stdout.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="First realisation seed.")] = 0,
    attempts: Annotated[
        int,
        typer.Option("--attempts", min=1, help="Realisations tried before a goal counts as failed."),
    ] = 32,
) -> None:
    """Realise every problem of FILE and check its goal numerically."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from geoforge.problems import check_problem, read_problems

    problems = read_problems(file)
    start = time.perf_counter()
    results = []
    with Progress(
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as bar:
        task = bar.add_task("check", total=len(problems))
        for p in problems:
            results.append(check_problem(p, seed=seed, attempts=attempts))
            bar.advance(task)
    elapsed = time.perf_counter() - start
    failed = [r for r in results if r.status != "ok"]
    if as_json:
        for r in results:
            sys.stdout.write(json.dumps(r.to_json()) + "\n")
    else:
        table = Table()
        table.add_column("status")
        table.add_column("problems", justify="right")
        for status in ("ok", "goal_failed", "unrealisable", "invalid"):
            n = sum(r.status == status for r in results)
            if n or status == "ok":
                table.add_row(status, str(n))
        resampled = sum(r.status == "ok" and r.attempts_used > 1 for r in results)
        if resampled:
            table.caption = f"{resampled} goal(s) held only after re-sampling a branch choice"
        out.print(f"{file}: {len(problems)} problems checked in {elapsed:.2f} s")
        out.print(table)
        for r in failed:
            out.print(f"[red]{r.status}[/red] {r.name}: {r.reason}")
    if failed:
        raise typer.Exit(1)


@app.command()
def constructions(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the constructions programs can use, with their signatures and facts."""
    from rich.table import Table

    from geoforge.constructions import REGISTRY

    rows = [
        {
            "name": c.name,
            "signature": c.signature,
            "source": c.source,
            "preconditions": [f.text() for f in c.preconditions],
            "facts": [f.text() for f in c.facts],
            "doc": c.doc,
        }
        for c in sorted(REGISTRY.values(), key=lambda c: c.name)
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    table = Table(title=f"{len(rows)} constructions")
    for col in ("signature", "source", "doc"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["signature"], r["source"], r["doc"])
    out.print(table)


@app.command()
def generate(
    recipe: Annotated[Path, typer.Argument(help="Recipe TOML, e.g. corpora/smoke.toml.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Corpus directory to write.")],
    n: Annotated[int | None, typer.Option("--n", min=1, help="Samples (default: the recipe's).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Corpus seed (default: the recipe's).")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing corpus.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    image_negatives: Annotated[
        int, typer.Option("--image-negatives", min=0, help="Verified image negatives per sample (paper: 10).")
    ] = 0,
    caption_negatives: Annotated[
        int,
        typer.Option(
            "--caption-negatives", min=0, help="Verified rule caption negatives per sample (paper: 10)."
        ),
    ] = 0,
    retrieval_negatives: Annotated[
        int,
        typer.Option(
            "--retrieval-negatives", min=0, help="Retrieved caption negatives per sample (paper: ≤ 30)."
        ),
    ] = 0,
    plugin: PluginOption = None,
    no_plugin: NoPluginOption = None,
) -> None:
    """Generate a WebDataset corpus of diagrams, exact captions and verified hard negatives."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from geoforge.generate import generate_corpus
    from geoforge.negatives import NegativeConfig, host_for
    from geoforge.plugins import PluginSpec
    from geoforge.sampler import load_recipe

    spec = load_recipe(recipe)
    negatives = NegativeConfig(image_negatives, caption_negatives, retrieval_negatives)
    plugin_spec = PluginSpec.from_cli(plugin or [], no_plugin or [])
    if negatives.any:
        for message in host_for(plugin_spec).messages:
            sys.stderr.write(f"warning: {message}\n")
    total = n or spec.samples
    with Progress(
        TextColumn("generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[progress.data.speed]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    ) as bar:
        task = bar.add_task("generate", total=total, rate="")

        def tick() -> None:
            bar.advance(task)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:6.1f} samples/s" if speed else "")

        manifest = generate_corpus(
            spec,
            out,
            n=total,
            seed=spec.seed if seed is None else seed,
            workers=workers,
            resume=resume,
            overwrite=overwrite,
            on_sample=tick,
            negatives=negatives,
            plugins=plugin_spec,
        )
    if as_json:
        sys.stdout.write(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return
    counts = manifest["counts"]
    run = manifest["run"]
    table = Table(title=f"{out}: {counts['samples']} samples in {manifest['shards']} shards")
    table.add_column("")
    table.add_column("count", justify="right")
    for family, k in counts["families"].items():
        table.add_row(f"family {family}", str(k))
    for reason, k in counts["rejections"].items():
        table.add_row(f"rejected: {reason}", str(k))
    table.add_row("seconds", f"{run['seconds']:.1f}")
    table.add_row("samples/s", f"{run['samples_per_second']}")
    out_console = Console(highlight=False, width=110)
    out_console.print(table)
    if "negatives" in counts:
        out_console.print(_negatives_table(counts["negatives"]))
    from geoforge.tokens import LongCaptions

    long = LongCaptions(**manifest["long_captions"]).warning()
    if long:
        sys.stderr.write(f"warning: {long}\n")


def _negatives_table(stats: dict) -> object:  # type: ignore[type-arg]
    """Yield and rejection reasons per plugin, from the manifest's negatives totals."""
    from collections import defaultdict

    from rich.table import Table

    table = Table(title="hard negatives: accepted and rejected per plugin")
    for col in ("plugin", "accepted", "rejected: reason (count)"):
        table.add_column(col)
    accepted: dict[str, int] = defaultdict(int)
    for key, n in stats["accepted"].items():
        accepted[key.split(": ", 1)[1]] += n
    reasons: dict[str, list[str]] = defaultdict(list)
    for key, n in stats["rejections"].items():
        name, reason = key.split(": ", 1)
        reasons[name].append(f"{reason} ({n})")
    for name in sorted(set(accepted) | set(reasons)):
        table.add_row(name, str(accepted.get(name, 0)), "; ".join(reasons.get(name, [])))
    for key, n in stats["failures"].items():
        table.add_row(f"[red]{key}[/red]", "", f"failed {n} times")
    share = ", ".join(f"{k} {v:.0%}" for k, v in stats["at_least_8"].items())
    how = "; ".join(
        f"{kind} " + ", ".join(f"{h} {v:.0%}" for h, v in shares.items())
        for kind, shares in stats["how_false"].items()
        if shares
    )
    kept = "" if stats["question_kept"] is None else f"; questions kept {stats['question_kept']:.0%}"
    table.caption = (
        f"samples with ≥ 8 negatives: {share}; mean pixel difference {stats['mean_pixel_diff']:.4f}\n"
        f"false by: {how}\nimage negatives with restored true marks or strokes "
        f"{stats['restored_share']:.0%}{kept}"
    )
    return table


@app.command()
def show(
    target: Annotated[str, typer.Argument(help="Corpus directory, shard, or DIR/KEY.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG contact sheet to write.")] = Path(
        "sheet.png"
    ),
    n: Annotated[int, typer.Option("--n", min=1, help="Samples to show.")] = 12,
    columns: Annotated[int, typer.Option("--columns", min=1, help="Samples per row.")] = 4,
    negatives: Annotated[
        int, typer.Option("--negatives", min=0, help="Image negatives shown beside each positive.")
    ] = 4,
) -> None:
    """Write a contact sheet of corpus samples with their captions, each positive beside its
    hard negatives when the corpus has them."""
    from geoforge.sheet import contact_sheet, select

    records = select(target, n)
    output.write_bytes(contact_sheet(records, columns, negatives=negatives))
    out.print(f"wrote {output} ({len(records)} samples)")


PluginOption = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="Plugin file (PATH.py) or module to load; repeatable."),
]
NoPluginOption = Annotated[
    list[str] | None,
    typer.Option("--no-plugin", help="Plugin or perturbation name to skip, built-ins included; repeatable."),
]


@app.command()
def plugins(
    plugin: PluginOption = None,
    no_plugin: NoPluginOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the plugins geoforge loads, their versions, sources and what they register."""
    from rich.table import Table

    from geoforge.plugins import PluginHost, PluginSpec

    host = PluginHost(PluginSpec.from_cli(plugin or [], no_plugin or []))
    if as_json:
        sys.stdout.write(json.dumps([p.to_json() for p in host.plugins], indent=1) + "\n")
        return
    table = Table(title=f"{len(host.plugins)} plugins")
    for col in ("name", "version", "source", "registers", "status"):
        table.add_column(col)
    for p in host.plugins:
        registers = "; ".join(f"{k}: {', '.join(v)}" for k, v in p.registers.items())
        table.add_row(p.name, p.version, p.source, registers, "[red]failed[/red]" if p.error else "ok")
    Console(highlight=False, width=120).print(table)
    for message in host.messages:
        sys.stderr.write(message + "\n")


train_app = typer.Typer(
    help="Train models on geoforge corpora (needs the [train] extra).", no_args_is_help=True
)
eval_app = typer.Typer(help="Evaluate trained models (needs the [train] extra).", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")


def _need_train_extra() -> None:
    """Raise UsageError naming the install step if torch/open_clip are missing."""
    from geoforge.errors import UsageError

    try:
        import geoforge_train  # noqa: F401
    except ImportError as e:
        raise UsageError(f"training needs the [train] extra (pip install -e '.[train]'): {e}") from None


@train_app.command("mmclip")
def train_mmclip(
    data: Annotated[Path, typer.Option("--data", help="Training corpus directory (geoforge generate).")],
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
    precision: Annotated[str, typer.Option("--precision", help="fp32 or bf16 (autocast).")] = "fp32",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")] = "cpu",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    data_workers: Annotated[
        int, typer.Option("--data-workers", min=0, help="DataLoader worker processes.")
    ] = 0,
    save_every: Annotated[int, typer.Option("--save-every", min=0, help="Checkpoint every N steps.")] = 0,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Train an MMCLIP vision encoder (any open_clip model) with verified hard negatives.

    Many processes: torchrun --nproc_per_node N $(which geoforge) train mmclip ...
    """
    _need_train_extra()
    from geoforge_train.train import TrainConfig, train

    config = TrainConfig(
        data=str(data),
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
        save_every=save_every,
        resume=resume,
        strict=strict,
        rotate=rotate,
        downscale=downscale,
    )
    summary = train(config)
    if int(os.environ.get("RANK", "0")) == 0:
        if as_json:
            sys.stdout.write(json.dumps(summary) + "\n")
        else:
            out_console = Console(highlight=False, width=120)
            loss_text = f"{summary['final_loss']:.4f}"
            out_console.print(
                f"trained {summary['steps']} steps in {summary['seconds']} s; final loss {loss_text}"
            )
            out_console.print(
                f"checkpoint {summary['checkpoint']}; log {out / 'log.jsonl'}; curve {out / 'loss.png'}"
            )
            for skipped in summary["skipped_shards"]:
                sys.stderr.write(f"warning: skipped shard {skipped}\n")


@eval_app.command("mmclip")
def eval_mmclip(
    checkpoint: Annotated[
        list[str],
        typer.Option(
            "--checkpoint", help="Run dir, .pt file, untrained:MODEL or pretrained:MODEL:TAG; repeatable."
        ),
    ],
    data: Annotated[Path, typer.Option("--data", help="Held-out corpus with negatives.")],
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")] = "cpu",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Evaluate the first N samples.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Hard-negative accuracy (per kind, both directions) and in-batch R@1 of models, side by side."""
    _need_train_extra()
    from geoforge_train.evaluate import evaluate, load, table
    from geoforge_train.train import resolve_device

    dev = resolve_device(device)
    results = [evaluate(load(spec, dev), str(data), dev, limit=limit) for spec in checkpoint]
    if as_json:
        sys.stdout.write(json.dumps(results, indent=1) + "\n")
        return
    Console(highlight=False, width=160).print(table(results))


def main() -> None:
    """Entry point: run the app, turning geoforge errors into one-line messages."""
    from geoforge.errors import GeoforgeError

    try:
        app()
    except GeoforgeError as e:
        if _state["debug"]:
            raise
        sys.stderr.write(f"error: {e}\n")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as e:
        if _state["debug"]:
            raise
        sys.stderr.write(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback)\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
