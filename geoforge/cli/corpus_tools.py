"""The ``geoforge corpus`` command group: tools for corpora on disk (``corpus verify``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from geoforge.cli.app import app

corpus_app = typer.Typer(help="Check corpora on disk.", no_args_is_help=True)
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
            f"{directory}: ok, {report.samples} samples in {report.shards} shards, "
            f"{report.negatives} image negatives\n"
        )
    else:
        for problem in report.problems:
            sys.stderr.write(f"problem: {problem}\n")
        sys.stderr.write(f"{directory}: {len(report.problems)} problem(s)\n")
    if not report.ok:
        raise typer.Exit(1)
