"""The ``geoforge corpus`` command group: tools for corpora on disk (``corpus verify``,
``corpus cache``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from geoforge.cli.app import app, counted

corpus_app = typer.Typer(help="Check corpora on disk and cache their decoded images.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus", rich_help_panel="Corpora and plugins")


@corpus_app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(help="Corpus directory (geoforge generate --out).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a corpus: members adjacent and complete per sample, sizes.json and manifest.json
    in agreement with the shards, no temporary file left, every sample's JSON readable and its
    negatives' files present. Exit 1 with the list of problems, 0 with a summary."""
    from geoforge.corpus_check import verify_corpus

    report = verify_corpus(directory)
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=1) + "\n")
    elif report.ok:
        sys.stdout.write(
            f"{directory}: ok, {counted(report.samples, 'sample')} in {counted(report.shards, 'shard')}, "
            f"{report.negatives} image negatives\n"
        )
    else:
        for problem in report.problems:
            sys.stderr.write(f"problem: {problem}\n")
        sys.stderr.write(f"{directory}: {len(report.problems)} problem(s)\n")
    if not report.ok:
        raise typer.Exit(1)


@corpus_app.command("cache")
def cache(
    data: Annotated[
        list[str],
        typer.Argument(help="Corpus directory, shard or brace pattern, as train mmclip's --data."),
    ],
    size: Annotated[
        int, typer.Option("--size", min=16, help="The model's input size in px (ViT-B-16: 224).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Cache directory to write.")],
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes, one shard each.")] = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the cache in --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the cache index as JSON.")] = False,
) -> None:
    """Decode every figure and image negative once, resized to --size, into memory-mapped uint8
    arrays that `train mmclip --data-cache OUT` reads instead of the PNGs (same tensors; no
    --rotate/--downscale). Needs the [train] extra. A cache of other shards is refused."""
    from geoforge.errors import UsageError

    try:
        from geoforge_train.cache import build_cache
    except ImportError as e:
        raise UsageError(f"corpus cache needs the [train] extra (pip install -e '.[train]'): {e}") from None
    meta = build_cache("::".join(data), out, size, workers=workers, overwrite=overwrite)
    if as_json:
        sys.stdout.write(json.dumps(meta, indent=1) + "\n")
        return
    sys.stdout.write(
        f"{out}: {meta['samples']} samples, {meta['images']} images of {size}×{size} px "
        f"from {counted(len(meta['shards']), 'shard')}\n"
    )
