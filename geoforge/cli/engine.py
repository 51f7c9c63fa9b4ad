"""Commands on diagram programs: ``render``, ``check`` and ``constructions``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from geoforge.cli.app import app, err, out


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


@app.command(rich_help_panel="Diagram programs")
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


@app.command(rich_help_panel="Diagram programs")
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


@app.command(rich_help_panel="Diagram programs")
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
