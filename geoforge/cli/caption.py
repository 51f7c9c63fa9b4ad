"""``geoforge caption``: verified captions and facts for a user's own program or problem file."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from geoforge.cli.app import app, out
from geoforge.cli.options import (
    DialectOption,
    NoPluginOption,
    PluginOption,
    StrictPluginsOption,
    load_plugins,
)


@app.command(rich_help_panel="Diagram programs")
def caption(
    program: Annotated[str, typer.Argument(help="Program text, a program file, or a problem file.")],
    style: Annotated[
        str, typer.Option("--style", help="descriptive, facts or question (JSON has every style).")
    ] = "descriptive",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Realisation and wording seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per program on stdout.")] = False,
    problem: Annotated[
        str | None, typer.Option("--problem", help="Only this problem (name or 1-based index) of a file.")
    ] = None,
    dialect: DialectOption = "alphageometry",
    plugin: PluginOption = None,
    no_plugin: NoPluginOption = None,
    strict_plugins: StrictPluginsOption = False,
) -> None:
    """Verified captions and facts for a program, or each problem of a file.

    The claims come from the program's constructions, each verified on the realised figure and
    read back from the caption's text, as the sampler's are.

    Points are labelled as figures label them (a → A); the JSON record's `program` is the
    relabelled program, so `geoforge render` of it draws the figure the caption describes."""
    from rich.markup import escape

    from geoforge.caption import STYLES
    from geoforge.caption.derive import caption_program
    from geoforge.cli.engine import load_problems
    from geoforge.dialect import check_dialect
    from geoforge.errors import GeoforgeError, UsageError
    from geoforge.program import parse_program

    if style not in STYLES:
        raise UsageError(f"--style {style}: expected one of {', '.join(STYLES)}")
    check_dialect(dialect)
    load_plugins(plugin, no_plugin, strict_plugins)
    problems = load_problems(program, problem)
    failed = 0
    for p in problems:
        try:
            captioned = caption_program(parse_program(p.text, source=p.source, dialect=dialect), seed=seed)
        except GeoforgeError as e:
            if len(problems) == 1:
                raise
            failed += 1
            for line in str(e).splitlines():
                sys.stderr.write(f"error: {p.name}: {line}\n")
            continue
        if as_json:
            record = {"name": p.name, "source": p.source, **captioned.to_json(style)}
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            continue
        text = captioned.captions[style].text
        out.print(escape(text) if len(problems) == 1 else f"{escape(p.name)}: {escape(text)}")
        for claim in captioned.dropped:
            sys.stderr.write(
                f"warning: {p.name}: claim `{' '.join(claim.to_json())}` does not hold; left out\n"
            )
    if failed:
        sys.stderr.write(f"error: {failed} of {len(problems)} programs could not be captioned\n")
        raise typer.Exit(1)
