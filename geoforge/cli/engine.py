"""Commands on diagram programs: ``render``, ``check`` and ``constructions``.

Each loads plugins first (``--plugin``, ``GEOFORGE_PLUGINS``, entry points), so constructions
that plugins register are known to it, and reads programs in AlphaGeometry's dialect or, with
``--dialect newclid``, in Newclid's (:mod:`geoforge.dialect`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geoforge.cli.app import app, counted, err, out
from geoforge.cli.options import (
    DialectOption,
    NoPluginOption,
    OverwriteOption,
    PluginOption,
    StrictPluginsOption,
    load_plugins,
    writable,
)

if TYPE_CHECKING:
    from geoforge.problems import Problem
    from geoforge.program import Program

ProblemOption = Annotated[
    str | None,
    typer.Option("--problem", help="Problem name or 1-based index in a problem file."),
]


def _as_file(arg: str) -> Path | None:
    """``arg`` as an existing file (a regular one, or one to read such as ``/dev/stdin`` or
    ``/dev/null``), or None when it is program text (text with `=` or `?`, or longer than a
    file name may be) or names no file."""
    if "=" in arg or "?" in arg or ";" in arg:
        return None
    try:
        path = Path(arg)
        return path if path.exists() and not path.is_dir() else None
    except OSError:  # e.g. "File name too long"
        return None


def load_problems(arg: str, problem: str | None = None) -> list[Problem]:
    """The problems of ``arg``: program text (one problem named ``program``), a file with one
    program line, or a problem file (all of them, or the one ``--problem`` names). Raises
    ProgramError for a missing file or problem."""
    from geoforge.errors import ProgramError
    from geoforge.problems import Problem, read_problems

    path = _as_file(arg)
    if path is None:
        if "=" not in arg and (Path(arg).suffix or os.sep in arg):
            is_dir = Path(arg).is_dir()
            raise ProgramError(
                f"{arg}: is a directory, expected a problem file" if is_dir else f"no such file: {arg}"
            )
        if problem is not None:
            raise ProgramError("--problem needs a problem file, not program text")
        if "\n" in arg.strip():
            raise ProgramError(
                "<argument>: program text is one line: separate its clauses with `;`, not line breaks"
            )
        return [Problem("program", arg, "<argument>", 1)]
    problems = read_problems(path)
    if not problems:
        raise ProgramError(f"{path}: holds no problems (expected a program line, or name and program lines)")
    if problem is None:
        return problems
    if problem.isdigit():
        index = int(problem)
        if not 1 <= index <= len(problems):
            raise ProgramError(f"--problem {index}: {path} holds problems 1 to {len(problems)}")
        return [problems[index - 1]]
    matches = [p for p in problems if p.name == problem]
    if not matches:
        raise ProgramError(f"no problem named {problem!r} in {path}")
    return matches[:1]


def load_program(arg: str, problem: str | None, dialect: str) -> Program:
    """The one Program that ``arg`` (and ``--problem``) names; see :func:`load_problems`.
    Raises ProgramError (every mistake of the program at once) or, for a file of several
    problems without ``--problem``, one naming how to choose."""
    from geoforge.errors import ProgramError
    from geoforge.program import parse_program

    problems = load_problems(arg, problem)
    if len(problems) > 1:
        names = ", ".join(p.name for p in problems[:3])
        raise ProgramError(
            f"{arg} holds {len(problems)} problems: choose one with --problem NAME "
            f"or --problem INDEX (1-based), e.g. {names}"
        )
    (chosen,) = problems
    return parse_program(chosen.text, source=chosen.source, dialect=dialect)


@app.command(rich_help_panel="Diagram programs")
def render(
    program: Annotated[str, typer.Argument(help="Program text, a program file, or a problem file.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="File to write: NAME.png, or NAME.svg for SVG alone.")
    ] = Path("diagram.png"),
    svg: Annotated[bool, typer.Option("--svg", help="Also write an SVG beside the PNG.")] = False,
    overwrite: OverwriteOption = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Realisation seed.")] = 0,
    size: Annotated[int, typer.Option("--size", min=64, max=4096, help="Image side in pixels.")] = 448,
    problem: ProblemOption = None,
    dialect: DialectOption = "alphageometry",
    allow_false_marks: Annotated[
        bool, typer.Option("--allow-false-marks", help="Draw `mark` statements that do not hold.")
    ] = False,
    plugin: PluginOption = None,
    no_plugin: NoPluginOption = None,
    strict_plugins: StrictPluginsOption = False,
) -> None:
    """Realise a diagram program and render it to PNG, or to SVG with `-o NAME.svg`, or to
    both with `--svg`.

    A `mark` that does not hold on the figure (or marks a zero angle) is an error unless
    --allow-false-marks is given; a hard-to-read figure gets a warning."""
    from geoforge.errors import UsageError
    from geoforge.legible import MarkError, false_marks, legibility_warnings
    from geoforge.realise import realise

    writable(output, overwrite, (".png", ".svg"))
    if svg and output.suffix.lower() == ".svg":
        raise UsageError(f"-o {output} writes SVG already: --svg adds an SVG beside a PNG")
    if svg:
        writable(output.with_suffix(".svg"), overwrite)
    load_plugins(plugin, no_plugin, strict_plugins)
    scene = realise(load_program(program, problem, dialect), seed=seed)
    wrong = false_marks(scene)
    if wrong and not allow_false_marks:
        raise MarkError(
            f"{len(wrong)} mark(s) do not hold (pass --allow-false-marks to draw them anyway): "
            + "; ".join(wrong)
        )
    from geoforge.render import layout, save

    for warning in legibility_warnings(layout(scene, size)):
        sys.stderr.write(f"warning: {warning}\n")
    for path in save(scene, output, size=size, svg=svg):
        out.print(f"wrote {path}")


@app.command(rich_help_panel="Diagram programs")
def check(
    file: Annotated[
        str,
        typer.Argument(
            help="Problem file in AlphaGeometry's (or Newclid's) format, or one program as text (quoted)."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per problem on stdout.")] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="First realisation seed.")] = 0,
    attempts: Annotated[
        int,
        typer.Option("--attempts", min=1, help="Realisations tried before a goal counts as failed."),
    ] = 32,
    dialect: DialectOption = "alphageometry",
    plugin: PluginOption = None,
    no_plugin: NoPluginOption = None,
    strict_plugins: StrictPluginsOption = False,
) -> None:
    """Realise every problem of FILE (or the program text FILE) and check its goals numerically.

    An invalid program lists every mistake, each with its clause and column; a failing goal
    gives the values it measured; a value-asking goal (acompute...) its value."""
    import time

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from geoforge.dialect import check_dialect
    from geoforge.problems import check_problem

    check_dialect(dialect)
    load_plugins(plugin, no_plugin, strict_plugins)
    problems = load_problems(file)
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
            results.append(check_problem(p, seed=seed, attempts=attempts, dialect=dialect))
            bar.advance(task)
    elapsed = time.perf_counter() - start
    failed = [r for r in results if r.status != "ok"]
    if as_json:
        for r in results:
            sys.stdout.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
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
            table.caption = f"{counted(resampled, 'goal')} held only after re-sampling a branch choice"
        checked = counted(len(problems), "problem")
        where = problems[0].path if problems else file  # <argument> for program text
        out.print(f"{where}: {checked} checked in {elapsed:.2f} s ({dialect} dialect)")
        out.print(table)
        for r in results:
            for goal, a in r.answers.items():
                out.print(f"{escape(r.name)}: {escape(goal)} = {escape(a.text())}")
        for r in failed:
            lines = [str(e) for e in r.errors] or [r.reason]
            out.print(f"[red]{r.status}[/red] {escape(r.name)}: {escape(lines[0])}")
            for line in lines[1:]:
                out.print(f"  {escape(line)}")
    if failed:
        raise typer.Exit(1)


@app.command(rich_help_panel="Diagram programs")
def constructions(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    plugin: PluginOption = None,
    no_plugin: NoPluginOption = None,
    strict_plugins: StrictPluginsOption = False,
) -> None:
    """List the constructions programs can use, plugins' included, with signatures and facts."""
    from rich.table import Table

    from geoforge.constructions import REGISTRY

    load_plugins(plugin, no_plugin, strict_plugins)
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
