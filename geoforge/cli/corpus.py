"""Commands on corpora and plugins: ``generate``, ``show`` and ``plugins``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from geoforge.cli import llm as llm_options
from geoforge.cli.app import _state, app, counted, err, out, stopped
from geoforge.cli.options import (
    NoPluginOption,
    OverwriteOption,
    PluginOption,
    StrictPluginsOption,
    check_plugins,
    writable,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


@app.command(rich_help_panel="Corpora and plugins")
def generate(
    ctx: typer.Context,
    recipe: Annotated[Path, typer.Argument(help="Recipe TOML, e.g. corpora/smoke.toml.")],
    out: Annotated[
        str,
        typer.Option(
            "--out", "-o", help="Corpus directory to write: a path, or an fsspec URL (s3://, gs://, file://)."
        ),
    ],
    n: Annotated[int | None, typer.Option("--n", min=1, help="Samples (default: the recipe's).")] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Corpus seed (default: the recipe's).")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (ray: CPUs of a local Ray instance).")
    ] = 1,
    backend: Annotated[
        str, typer.Option("--backend", help="What runs the shards: local (process pool) or ray (Ray tasks).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", help="Ray cluster to join (auto, ray://HOST:10001); default: start a local one."
        ),
    ] = None,
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
    retrieval_pool: Annotated[
        str,
        typer.Option(
            "--retrieval-pool",
            help="Where retrieval negatives come from: shard (its own shard) or corpus (an index of every "
            "positive caption, built in a first pass into OUT/retrieval).",
        ),
    ] = "shard",
    qa: Annotated[
        bool,
        typer.Option(
            "--qa", help="Also write perception and reasoning Q&A with exact answers (KEY.json `qa`)."
        ),
    ] = False,
    plugin: PluginOption = None,
    no_plugin: NoPluginOption = None,
    strict_plugins: StrictPluginsOption = False,
    llm_model: llm_options.LLMModel = None,
    llm_base_url: llm_options.LLMBaseURL = None,
    llm_backend: llm_options.LLMBackend = "openai",
    llm_api_key_env: llm_options.LLMKeyEnv = "OPENAI_API_KEY",
    llm_concurrency: llm_options.LLMConcurrency = 4,
    llm_budget: llm_options.LLMBudget = None,
    llm_cache: llm_options.LLMCache = None,
    llm_timeout: llm_options.LLMTimeout = 60.0,
    llm_per_positive: llm_options.LLMPerPositive = 4,
    llm_allow_swap: llm_options.LLMAllowSwap = False,
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
    from geoforge.plugins import ENV_VAR, PluginSpec
    from geoforge.qa import QAConfig
    from geoforge.sampler import load_recipe

    spec = load_recipe(recipe)
    negatives = NegativeConfig(image_negatives, caption_negatives, retrieval_negatives)
    negatives, llm = llm_options.apply_llm_options(
        ctx,
        negatives,
        model=llm_model,
        base_url=llm_base_url,
        backend=llm_backend,
        api_key_env=llm_api_key_env,
        concurrency=llm_concurrency,
        budget=llm_budget,
        cache=llm_cache,
        timeout=llm_timeout,
        per_positive=llm_per_positive,
        allow_swap=llm_allow_swap,
    )
    # With --strict-plugins the first plugin failure of the run stops it (the corpus stays
    # incomplete); loading failures are checked here, before anything is written.
    plugin_spec = PluginSpec.from_cli(plugin or [], no_plugin or [], strict=strict_plugins)
    if no_plugin and not negatives.any:
        host_for(plugin_spec).check_disabled()  # a misspelt name is an error whatever the run
    if negatives.any or plugin or os.environ.get(ENV_VAR):  # a plugin asked for that fails to load is said
        check_plugins(host_for(plugin_spec), strict_plugins)
    if negatives.any:
        third = [p for p in host_for(plugin_spec).plugins if p.source != "built-in" and not p.error]
        if third:  # they shape the corpus: say so, once
            names = ", ".join(f"{p.name} {p.version} ({p.source} {p.origin})" for p in third)
            sys.stderr.write(f"note: third-party plugins active: {names}; --no-plugin NAME skips one\n")
    total = n or spec.samples
    if out.startswith("memory://") and backend != "ray":  # ray refuses it: one process's memory
        sys.stderr.write(f"warning: --out {out} lives in this process's memory and is gone when it exits\n")
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
        try:  # Typer would exit 130 silently: say what is kept and how to go on
            manifest = generate_corpus(
                spec,
                out,
                n=total,
                seed=spec.seed if seed is None else seed,
                workers=workers,
                resume=resume,
                overwrite=overwrite,
                on_progress=overall_rate(bar, task),
                negatives=negatives,
                plugins=plugin_spec,
                qa=QAConfig() if qa else None,
                backend=backend,
                ray_address=ray_address,
                retrieval_pool=retrieval_pool,
                on_status=(lambda line: err.print(line, markup=False)) if err.is_terminal else None,
            )
        except KeyboardInterrupt as e:
            kept = f"the complete shards in {out} are kept; run the same command with --resume to continue"
            raise typer.Exit(stopped(e, kept)) from None
        if manifest.get("nothing_to_do"):
            bar.update(task, completed=total)
            shards = counted(manifest["shards"], "shard")
            err.print(f"{out} is complete ({shards}): nothing to do", markup=False)
        rate = manifest["run"]["samples_per_second"]  # the bar ends on the summary's rate
        bar.update(task, rate=f"{rate:6.1f} samples/s" if rate is not None else "")
    if llm is not None:
        sys.stderr.write(llm_options.llm_summary(llm) + "\n")
    if _state["debug"] and negatives.any:  # what failed inside a plugin, in this process
        for trace in host_for(plugin_spec).tracebacks.values():
            sys.stderr.write(trace)
    if as_json:
        sys.stdout.write(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return
    counts = manifest["counts"]
    run = manifest["run"]
    title = f"{out}: {counted(counts['samples'], 'sample')} in {counted(manifest['shards'], 'shard')}"
    table = Table(title=title)
    table.add_column("")
    table.add_column("count", justify="right")
    for family, k in counts["families"].items():
        table.add_row(f"family {family}", str(k))
    for reason, k in counts["rejections"].items():
        table.add_row(f"rejected: {reason}", str(k))
    if manifest.get("qa"):
        qa_counts = manifest["qa"]["counts"]
        for relation, k in qa_counts["by_relation"].items():
            table.add_row(f"Q&A {relation}", str(k))
        table.add_row("Q&A flipped by an image negative", str(qa_counts["flipped"]))
    table.add_row("seconds", f"{run['seconds']:.1f}")
    table.add_row("samples/s", f"{run['samples_per_second']}")
    out_console = Console(highlight=False, width=110)
    out_console.print(table)
    if "negatives" in counts:
        from geoforge.generate import asked_negatives
        from geoforge.negatives import makers

        serving = {k: [p.name for p in v] for k, v in makers(negatives, host_for(plugin_spec)).items()}
        seconds = run.get("plugin_seconds")
        asked = asked_negatives(negatives)
        kept = len(run.get("resumed_shards") or ())
        out_console.print(_negatives_table(counts["negatives"], serving, asked, seconds, kept))
        from geoforge.negatives import OPTIONS

        stats = counts["negatives"]
        for key, times in stats["failures"].items():  # on stderr too: `> log` keeps only the table
            name, _, where = key.partition(": ")
            message = stats.get("errors", {}).get(key, "")
            sys.stderr.write(
                f"warning: {name} failed {counted(times, 'time')} {where}"
                + (f": {message}" if message else "")
                + "\n"
            )
        for kind, want in asked.items():  # a whole kind missing is easy to miss in the table
            if want and not counts["negatives"]["mean_per_sample"].get(kind):
                one = f"{'an' if kind == 'image' else 'a'} {kind} negative"
                sys.stderr.write(
                    f"warning: {OPTIONS[kind]} {want}: no sample got {one}; the table above says what "
                    "each plugin proposed and why it was rejected\n"
                )
    from geoforge.tokens import LongCaptions

    long = LongCaptions(**manifest["long_captions"]).warning()
    if long:
        sys.stderr.write(f"warning: {long}\n")


def overall_rate(bar: Progress, task: TaskID) -> Callable[[int], None]:
    """The ``on_progress`` of a run shown by ``bar``: advance ``task`` and show the rate since
    the run began (samples done / seconds elapsed). Rich's own speed is that of its last 30 s
    of updates, so it leaves out a slow start (Ray's) and overstates the rate."""

    def tick(k: int) -> None:
        bar.advance(task, k)
        state = next(t for t in bar.tasks if t.id == task)
        elapsed = state.elapsed or 0.0
        rate = state.completed / elapsed if elapsed > 0 else 0.0
        bar.update(task, rate=f"{rate:6.1f} samples/s" if rate else "")

    return tick


def _negatives_table(
    stats: dict,  # type: ignore[type-arg]
    serving: dict[str, list[str]] | None = None,
    asked: dict[str, int] | None = None,
    seconds: dict[str, float] | None = None,
    untimed: int = 0,
) -> object:
    """Yield and rejection reasons per plugin, from the manifest's negatives totals; each
    plugin failure once, with its first message. ``serving``: the perturbations that make each
    kind, in turn order (:func:`geoforge.negatives.makers`), and ``asked`` the negatives asked
    per kind: a perturbation with neither a candidate nor a failure gets a row that says why it
    may have had no turn (the ones before it filled the kind first) and how to run it alone.
    ``seconds``: the run's ``plugin_seconds`` (``"name: propose"`` and ``"name: verify"``
    worker-seconds), shown per plugin so that a slow one is named; ``untimed``: the shards a
    resumed run kept, which the counts cover and the seconds do not (the legend says so)."""
    from collections import defaultdict

    from rich.markup import escape
    from rich.table import Table

    table = Table(title="hard negatives: accepted and rejected per plugin")
    columns = ["plugin", "accepted", "rejected: reason (count)"]
    if seconds:
        columns.insert(2, "s propose + verify")
    for col in columns:
        table.add_column(col, justify="right" if col.startswith("s ") else "left")

    timed: set[str] = set()

    def row(shown: str, name: str, got: str, why: str) -> None:
        """One row; ``name`` is the perturbation whose seconds it shows, on its first row only
        (``""``: none)."""
        cells = [shown, got, why]
        if seconds:
            if name in timed:
                name = ""
            timed.add(name)
            spent = [seconds.get(f"{name}: {stage}") for stage in ("propose", "verify")]
            ran = any(s is not None for s in spent)
            cells.insert(2, " + ".join(f"{s or 0:.2f}" for s in spent) if ran else "")
        table.add_row(*cells)

    accepted: dict[str, int] = defaultdict(int)
    for key, n in stats["accepted"].items():
        accepted[key.split(": ", 1)[1]] += n
    reasons: dict[str, list[str]] = defaultdict(list)
    for key, n in stats["rejections"].items():
        name, reason = key.split(": ", 1)
        reasons[name].append(f"{reason} ({n})")
    for name in sorted(set(accepted) | set(reasons)):
        row(escape(name), name, str(accepted.get(name, 0)), "; ".join(reasons.get(name, [])))
    failed = {key.split(": ", 1)[0] for key in stats["failures"]}
    for kind, names in (serving or {}).items():
        want = (asked or {}).get(kind, 0)
        for i, name in enumerate(names if want else []):
            if name in accepted or name in reasons or name in failed:
                continue
            before = names[:i]
            why = "it proposed nothing for any sample"
            if before:
                skip = " ".join(f"--no-plugin {b}" for b in before)
                why = (
                    f"no candidate: it proposed nothing, or {', '.join(before)} filled the "
                    f"{counted(want, kind + ' negative')} of each sample before its turn; {skip} runs "
                    "it alone"
                )
            row(f"[yellow]{escape(name)}[/yellow]", name, "0", escape(why))
    for key, n in stats["failures"].items():
        message = escape(stats.get("errors", {}).get(key, ""))
        text = f"failed {counted(n, 'time')}" + (f": {message}" if message else "")
        row(f"[red]{escape(key)}[/red]", key.split(": ", 1)[0], "", text)
    # a sample gets at most the K it asked: count those with min(8, K), kinds not asked left out
    enough = stats.get("at_least_k", stats["at_least_8"])
    thresholds = stats.get("at_least_k_threshold", dict.fromkeys(enough, 8))
    share = ", ".join(f"{k} ≥ {thresholds[k]}: {v:.0%}" for k, v in enough.items() if thresholds[k]) or "none"
    how = "; ".join(
        f"{kind} " + ", ".join(f"{h} {v:.0%}" for h, v in shares.items())
        for kind, shares in stats["how_false"].items()
        if shares
    )
    kept = "" if stats["question_kept"] is None else f"; questions kept {stats['question_kept']:.0%}"
    lines = [f"samples with ≥ min(8, K) negatives: {share}", f"false by: {how or 'no negative kept'}"]
    if seconds:
        lines.append(
            "s propose + verify: worker-seconds in the perturbation's code, and in the verifier on "
            "its candidates"
            + (
                f", in the shards this run made (not the {counted(untimed, 'shard')} --resume kept)"
                if untimed
                else ""
            )
        )
    if thresholds.get("image", 0) > 0:  # image negatives asked: what their figures show
        lines[0] += f"; mean pixel difference {stats['mean_pixel_diff']:.4f}"
        lines.append(f"image negatives with restored true marks or strokes {stats['restored_share']:.0%}")
    table.caption = "\n".join(lines) + kept
    return table


@app.command(rich_help_panel="Corpora and plugins")
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
    overwrite: OverwriteOption = False,
) -> None:
    """Write a contact sheet of corpus samples with their captions, each positive beside its
    hard negatives when the corpus has them."""
    from geoforge.sheet import contact_sheet, select

    writable(output, overwrite, (".png",))
    records = select(target, n)
    output.write_bytes(contact_sheet(records, columns, negatives=negatives))
    out.print(f"wrote {output} ({counted(len(records), 'sample')})")


@app.command(rich_help_panel="Corpora and plugins")
def plugins(
    plugin: PluginOption = None,
    no_plugin: NoPluginOption = None,
    strict_plugins: StrictPluginsOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the plugins geoforge loads, their distributions, versions, sources and what they
    register; a plugin that failed is listed with its error."""
    from rich.table import Table

    from geoforge.plugins import PluginFailure, PluginHost, PluginSpec

    host = PluginHost(PluginSpec.from_cli(plugin or [], no_plugin or []))
    host.check_disabled()
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
        sys.stderr.write(f"warning: {message}\n")
    if strict_plugins and host.messages:
        raise PluginFailure(f"{len(host.messages)} plugin failure(s) with --strict-plugins")
