"""The commands on a user's own programs (render, check, caption, constructions, plugins), as a
new user meets them: every error at once, false marks refused, long program text, construction
plugins everywhere, broken plugins named with their distribution, bad input as one line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from geoforge.caption import read_caption
from geoforge.caption.derive import caption_program, display_names, program_claims
from geoforge.problems import read_problems
from geoforge.program import parse_program

ROOT = Path(__file__).resolve().parents[1]
AG = ROOT / "corpora" / "alphageometry"


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("GEOFORGE_DEBUG", "GEOFORGE_PLUGINS")}
    return subprocess.run(
        [sys.executable, "-m", "geoforge.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **(env or {})},
        timeout=300,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- every error at once -------------------------------------------------------------------


def test_check_lists_five_different_mistakes_with_columns_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "mistakes.txt"
    text = (
        "a b c = triangle a b c; d = fot d a b c; e = midpoint e A b; cyclic a b c d; f = on_line f a; "
        "? perp a b c"
    )
    path.write_text(f"five_mistakes\n{text}\n")
    result = cli("check", str(path), env={"COLUMNS": "400"})  # no table cell wraps a message
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    said = " ".join(result.stdout.split())
    (record,) = [json.loads(line) for line in cli("check", str(path), "--json").stdout.splitlines()]
    assert record["status"] == "invalid"
    assert [e["column"] for e in record["errors"]] == [29, 57, 62, 82, 95, 97]
    for needle in (
        ":2:29: clause 2 `d = fot d a b c`: unknown construction `fot` (did you mean `foot`?)",
        ":2:57: clause 3 `e = midpoint e A b`: undefined point `A`; hint: `a` is defined: point names are "
        "case-sensitive",
        ":2:62: clause 4 `cyclic a b c d`: malformed clause",
        "hint: `cyclic` is a predicate: use it after `?`",
        ":2:82: clause 5 `f = on_line f a`: `on_line` takes 3 arguments, got 2",
        ":2:95: clause 6: empty clause before `?`; hint: remove the `;` before `?`",
        ":2:97: goal `perp a b c`: `perp` takes 4 arguments, got 3",
    ):
        assert needle in said, needle


def test_render_reports_every_mistake_one_line_each(tmp_path: Path) -> None:
    result = cli(
        "render", "a b c = triangle a b c; d = fot d a b c; e = foot e a b Q", "-o", str(tmp_path / "x.png")
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: <argument>:1:29: clause 2 `d = fot d a b c`: unknown construction `fot` "
        "(did you mean `foot`?)",
        "error: <argument>:1:57: clause 3 `e = foot e a b Q`: undefined point `Q`",
    ]


def test_failing_goal_says_the_measured_angle_and_the_swapped_order(tmp_path: Path) -> None:
    path = tmp_path / "swapped.txt"
    path.write_text("swapped\na b c = triangle a b c; d = angle_bisector d b a c ? eqangle a b a d a c a d\n")
    (record,) = [
        json.loads(line) for line in cli("check", str(path), "--json", "--attempts", "2").stdout.splitlines()
    ]
    assert record["status"] == "goal_failed"
    assert re.fullmatch(
        r"goal `eqangle a b a d a c a d` fails on 2 realisations: "
        r"∠\(ab, ad\) = [\d.]+°, ∠\(ac, ad\) = [\d.]+°; "
        r"the swapped order `eqangle a b a d a d a c` holds",
        record["reason"],
    ), record["reason"]


# --- render ---------------------------------------------------------------------------------


def test_false_right_angle_mark_is_refused_with_the_measured_angle(tmp_path: Path) -> None:
    program = "a b c = triangle a b c; h = foot h a b c; mark right b a c"
    line = one_line_error(cli("render", program, "-o", str(tmp_path / "x.png")), 1)
    assert re.search(r"`mark right b a c`: ∠bac measures [\d.]+°, not 90°", line)
    assert "--allow-false-marks" in line
    assert not (tmp_path / "x.png").exists()
    allowed = cli("render", program, "-o", str(tmp_path / "x.png"), "--allow-false-marks")
    assert allowed.returncode == 0 and (tmp_path / "x.png").read_bytes().startswith(b"\x89PNG")


def test_zero_angle_mark_is_refused(tmp_path: Path) -> None:
    line = one_line_error(
        cli(
            "render", "a b = segment a b; m = midpoint m a b; mark angle a m b", "-o", str(tmp_path / "x.png")
        ),
        1,
    )
    assert "∠amb measures 180.00°: a straight or zero angle cannot be marked" in line


def test_render_takes_program_text_of_300_bytes(tmp_path: Path) -> None:
    program = (
        "a b c = triangle a b c; h = orthocenter h a b c; o = circumcenter o a b c; "
        "m = midpoint m b c; n = midpoint n c a; p = midpoint p a b; d = foot d a b c; "
        "e = foot e b c a; f = foot f c a b; g = on_line g a m, on_line g b n; "
        "draw circumcircle a b c; draw segment a m; mark right a d b; mark right b e c"
    )
    assert len(program.encode()) >= 300
    result = cli("render", program, "-o", str(tmp_path / "long.png"), "--size", "128")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "long.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "args, needle",
    [
        (("render", "a = free a", "-o", "/nonexistent/x.png"), "directory /nonexistent does not exist"),
        (("check", "/nonexistent/problems.txt"), "error: no such file: /nonexistent/problems.txt"),
        (("check", "/dev/null"), "error: /dev/null: holds no problems"),  # was "no such file"
        (("check", "/"), "error: /: is a directory, expected a problem file"),
    ],
)
def test_bad_paths_are_one_line_usage_errors(args: tuple[str, ...], needle: str) -> None:
    assert needle in one_line_error(cli(*args), 2)


def test_a_file_without_problems_is_a_usage_error_for_check_and_render(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing but a comment\n")
    want = f"error: {empty}: holds no problems (expected a program line, or name and program lines)"
    assert one_line_error(cli("check", str(empty)), 2) == want
    assert one_line_error(cli("render", str(empty), "-o", str(tmp_path / "x.png")), 2) == want
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "args, want",
    [
        (
            ("render", "a = free a", "--seed", "-1"),
            "error: geoforge render: Invalid value for '--seed': Input should be greater than or "
            "equal to 0 (see geoforge render --help)",
        ),
        (
            ("generate", "corpora/mmgeo-4k.toml", "--workers", "abc"),
            "error: geoforge generate: Invalid value for '--workers': Input should be a valid "
            "integer, unable to parse string as an integer (see geoforge generate --help)",
        ),
        (
            ("generate",),
            "error: geoforge generate: Missing argument 'recipe'. (see geoforge generate --help)",
        ),
        (("nosuch",), "error: geoforge: No such command 'nosuch'. (see geoforge --help)"),
        (
            ("render", "a b c = triangle a b c", "-o", "x.pdf"),
            "error: -o x.pdf: expected a file name ending in .png or .svg",
        ),
        (("show", "corpus", "-o", "sheet.svg"), "error: -o sheet.svg: expected a file name ending in .png"),
    ],
)
def test_a_bad_command_line_is_one_error_line_naming_the_command_and_its_help(
    args: tuple[str, ...], want: str
) -> None:
    assert one_line_error(cli(*args), 2) == want


def test_a_command_group_without_a_command_shows_its_help_with_exit_2() -> None:
    result = cli("corpus")
    assert result.returncode == 2 and result.stderr == ""
    assert "verify" in result.stdout


def test_debug_works_before_and_after_the_command_and_keeps_the_exit_status(tmp_path: Path) -> None:
    for args in (("--debug", "render"), ("render", "--debug")):
        result = cli(*args, "a b c = triangle a b c; x = foo x a b", "-o", str(tmp_path / "x.png"))
        assert result.returncode == 2 and "Traceback" in result.stderr, args
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: <argument>:1:29: clause 2 `x = foo"), args


# --- plugins everywhere ---------------------------------------------------------------------


PLUGIN = """
from geoforge.hookspecs import hookimpl

@hookimpl
def geoforge_register_constructions(register):
    register("apex x a b", "x", pre="diff a b", facts="cong x a x b, perp x a x b",
             sketch="dia a b, bline a b", doc="x is the apex of the right isosceles triangle on ab")
"""


def test_a_construction_plugin_works_in_render_check_and_constructions(tmp_path: Path) -> None:
    plugin = tmp_path / "apex_plugin.py"
    plugin.write_text(textwrap.dedent(PLUGIN))
    problems = tmp_path / "apex.txt"
    problems.write_text("apex\na b = segment a b; x = apex x a b ? perp x a x b; cong x a x b\n")
    rendered = cli(
        "render", "a b = segment a b; x = apex x a b", "-o", str(tmp_path / "a.png"), "--plugin", str(plugin)
    )
    assert rendered.returncode == 0, rendered.stderr
    checked = cli("check", str(problems), "--json", "--plugin", str(plugin))
    assert json.loads(checked.stdout)["status"] == "ok", checked.stdout
    listed = json.loads(cli("constructions", "--json", "--plugin", str(plugin)).stdout)
    assert {"name": "apex", "source": "apex_plugin"}.items() <= next(
        r for r in listed if r["name"] == "apex"
    ).items()
    without = cli("render", "a b = segment a b; x = apex x a b", "-o", str(tmp_path / "b.png"))
    assert "unknown construction `apex`" in one_line_error(without, 2)


def _broken_distribution(root: Path) -> dict[str, str]:
    """An installed distribution `brokenpkg 1.2.3` whose entry point plugin fails to import."""
    (root / "brokenpkg").mkdir()
    (root / "brokenpkg" / "__init__.py").write_text(
        "raise ImportError('brokenpkg needs a missing library')\n"
    )
    info = root / "brokenpkg-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenpkg\nVersion: 1.2.3\n")
    (info / "top_level.txt").write_text("brokenpkg\n")
    (info / "entry_points.txt").write_text("[geoforge]\nbroken = brokenpkg\n")
    return {"PYTHONPATH": str(root)}


def test_a_broken_plugin_is_listed_with_its_distribution_and_version(tmp_path: Path) -> None:
    env = _broken_distribution(tmp_path)
    rows = json.loads(cli("plugins", "--json", env=env).stdout)
    broken = next(r for r in rows if r["name"] == "broken")
    assert (broken["distribution"], broken["version"], broken["source"]) == (
        "brokenpkg",
        "1.2.3",
        "entry point",
    )
    assert "ImportError: brokenpkg needs a missing library" in broken["error"]


def test_strict_plugins_makes_a_plugin_failure_fatal(tmp_path: Path) -> None:
    env = _broken_distribution(tmp_path)
    lenient = cli("render", "a = free a", "-o", str(tmp_path / "x.png"), env=env)
    assert lenient.returncode == 0 and "warning: plugin broken" in lenient.stderr
    strict = cli("render", "a = free a", "-o", str(tmp_path / "y.png"), "--strict-plugins", env=env)
    assert "plugin failure with --strict-plugins" in one_line_error(strict, 1)


def test_no_plugin_name_that_matches_nothing_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    line = one_line_error(
        cli("render", "a = free a", "-o", str(tmp_path / "x.png"), "--no-plugin", "move_vertx"), 2
    )
    assert (
        "--no-plugin move_vertx: no plugin or perturbation is called `move_vertx` "
        "(did you mean `move_vertex`?)" in line
    )


# --- captions for any program ----------------------------------------------------------------


def test_display_names_are_upper_case_and_injective() -> None:
    assert display_names(["a", "h1", "b'", "ma", "A", "m1"]) == {
        "a": "A", "h1": "H1", "b'": "B'", "ma": "M1", "A": "A1", "m1": "M2",
    }  # fmt: skip


def test_triangle12_and_s_angle_give_a_ratio_and_an_angle_claim() -> None:
    program = parse_program(
        "a b c = triangle12 a b c; x = s_angle b a x 63o; y = s_angle b a y -200o", dialect="newclid"
    )
    claims, _ = program_claims(program)
    assert [c.to_json() for c in claims] == [
        ["triangle", "a", "b", "c"], ["ratio", "a", "b", "a", "c", "1/2"], ["angle", "b", "a", "x", "63"],
        ["angle", "b", "a", "y", "160"],
    ]  # fmt: skip
    captioned = caption_program(program, seed=4)
    assert captioned.captions["facts"].text == "△ABC; AB : AC = 1 : 2; ∠BAX = 63°; ∠BAY = 160°."
    assert captioned.dropped == []


def _captioned_problems():  # type: ignore[no-untyped-def]
    return read_problems(AG / "examples.txt") + read_problems(AG / "jgex_ag_231.txt")[::12][:20]


@pytest.mark.parametrize("problem", _captioned_problems(), ids=lambda p: p.name)
def test_caption_of_ag_problems_states_only_claims_that_hold(problem) -> None:  # type: ignore[no-untyped-def]
    captioned = caption_program(parse_program(problem.text), seed=0)
    assert captioned.dropped == []
    for style, caption in captioned.captions.items():
        read = read_caption(caption.text)
        assert read.style == style and len(read.claims) >= 2
        for claim in read.claims:
            assert claim.holds(captioned.scene), (style, claim)


def test_caption_cli_writes_json_records_for_each_problem() -> None:
    result = cli("caption", str(AG / "examples.txt"), "--json", "--style", "facts")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in records] == ["orthocenter", "orthocenter_aux", "incenter_excenter", "euler"]
    first = records[0]
    assert first["caption"]["text"] == "△ABC; HB ⊥ AC; HC ⊥ AB."
    assert first["labels"] == {"a": "A", "b": "B", "c": "C", "h": "H"}
    assert first["program"].startswith("A B C = triangle A B C; H = on_tline H B A C, on_tline H C A B")
    assert set(first["captions"]) == {"descriptive", "facts", "question"}
    assert first["facts"] == ["ncoll A B C", "perp H B A C", "perp H C A B"]


def test_caption_errors_on_program_text_name_no_line_zero_and_file_lines_count_from_one(
    tmp_path: Path,
) -> None:
    text = "a b c = triangle a b c; d = foo a b"
    unknown = "clause 2 `d = foo a b`: unknown construction `foo` (did you mean `foot`?)"
    assert one_line_error(cli("caption", text), 2) == f"error: <argument>:1:29: {unknown}"
    assert one_line_error(cli("render", text, "-o", str(tmp_path / "x.png")), 2) == (
        f"error: <argument>:1:29: {unknown}"
    )  # the same place as render names
    unrealisable = cli("caption", "a b c = triangle a b c; d = on_line d a a")
    assert one_line_error(unrealisable, 1).startswith("error: <argument>:1: cannot realise clause 2 ")
    record = json.loads(cli("caption", "a b c = triangle a b c", "--json").stdout)
    assert record["source"] == "<argument>:1"
    problems = tmp_path / "problems.txt"
    problems.write_text(f"good\na b c = triangle a b c\nbad\n{text}\n", encoding="utf-8")
    both = cli("caption", str(problems))
    assert both.returncode == 1
    assert both.stderr.splitlines()[0] == f"error: bad: {problems}:4:29: {unknown}"


def test_help_shows_the_train_extra_in_brackets() -> None:
    result = cli("--help")
    assert result.returncode == 0
    assert "(needs the [train] extra)" in " ".join(result.stdout.replace("│", " ").split())


def test_a_huge_circle_crushing_the_points_gets_a_legibility_warning(tmp_path: Path) -> None:
    program = "a@0_0 b@1_0 c@0.5_0.02 = triangle a b c; draw circumcircle a b c"
    result = cli("render", program, "-o", str(tmp_path / "x.png"))
    assert result.returncode == 0
    assert result.stderr.strip() == (
        "warning: the points fill 6% of the image: a circle 13 times their spread crushes them together"
    )


def test_a_label_nearer_another_point_than_its_own_gets_a_warning() -> None:
    import dataclasses

    import numpy as np

    from geoforge.legible import legibility_warnings
    from geoforge.realise import realise
    from geoforge.render import layout

    plan = layout(realise(parse_program("a b c = triangle a b c"), seed=0))
    label_a = next(lb for lb in plan.labels if lb.text == "a")
    moved = plan.points["b"] - (label_a.box[:2] + label_a.box[2:]) / 2
    far = dataclasses.replace(label_a, box=label_a.box + np.concatenate([moved, moved]))
    plan = dataclasses.replace(plan, labels=tuple(far if lb is label_a else lb for lb in plan.labels))
    assert legibility_warnings(plan) == ["label `a` is nearer point `b` than its own point"]


def test_caption_into_a_pipe_writes_one_line_per_program() -> None:
    """Into a file or pipe a caption is never broken at 80 columns (rich's width there)."""
    result = cli("caption", "corpora/alphageometry/examples.txt", "--style", "facts")
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 4, result.stdout
    assert [line.split(":", 1)[0] for line in lines] == [
        "orthocenter", "orthocenter_aux", "incenter_excenter", "euler",
    ]  # fmt: skip
    assert max(len(line) for line in lines) > 80


def test_ctrl_c_in_generate_says_what_is_kept_and_how_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "c"
    # 40 shards: a run this long is still going when the signal comes, however loaded the machine
    args = ["generate", "corpora/smoke.toml", "--out", str(out), "--n", "640", "--image-negatives", "4"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "geoforge.cli", *args], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not (out / "shard-000000.tar").exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the run is under way: its first shard is written
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and not (out / "shard-000039.tar").exists()
    assert err.splitlines()[-1] == (
        f"interrupted: the complete shards in {out} are kept; run the same command with --resume to continue"
    )


def test_check_reads_a_one_program_file_as_render_does_and_refuses_a_binary_file(tmp_path: Path) -> None:
    one = tmp_path / "one.txt"
    one.write_text("a b c = triangle a b c; h = on_tline h b a c, on_tline h c a b ? perp a h b c\n")
    ok = cli("check", str(one))
    assert ok.returncode == 0, ok.stderr
    assert f"{one}: 1 problem checked in " in ok.stdout
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe not text")
    for command in (["check", str(binary)], ["render", str(binary), "-o", str(tmp_path / "x.png")]):
        assert one_line_error(cli(*command), 2) == (
            f"error: {binary}: cannot read problem file: not UTF-8 text (byte 0xff at offset 0)"
        )


def test_check_takes_program_text_as_render_and_caption_do() -> None:
    ok = cli("check", "a b c = triangle a b c; d = midpoint d b c ? cong d b d c", "--json")
    assert ok.returncode == 0, ok.stderr
    (record,) = [json.loads(line) for line in ok.stdout.splitlines()]
    assert record["status"] == "ok" and record["source"] == "<argument>:1"
    bad = cli("check", "a b c = triangle a b c; d = foo a b")
    assert bad.returncode == 1
    unknown = "invalid program: <argument>:1:29: clause 2 `d = foo a b`: unknown construction `foo`"
    assert unknown in bad.stdout


def test_program_text_with_a_line_break_is_one_line_saying_clauses_take_semicolons() -> None:
    # it was two `error:` lines that quoted a clause cut at the line break
    for command in ("render", "check", "caption"):
        args = [command, "a b c = triangle a b c\nd = midpoint d a b"]
        result = cli(*args, "-o", "/dev/null") if command == "render" else cli(*args)
        assert one_line_error(result, 2) == (
            "error: <argument>: program text is one line: separate its clauses with `;`, not line breaks"
        ), command


def test_the_readme_check_examples_ship_and_print_what_the_readme_shows() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("$ geoforge check examples/mistakes.txt\n", 1)[1].split("```", 1)[0]
    result = cli("check", "examples/mistakes.txt", env={"COLUMNS": "400"})
    assert result.returncode == 1
    assert result.stdout.splitlines()[-len(block.splitlines()) :] == block.splitlines()
    result = cli("check", "examples/problems.txt", "--dialect", "newclid")
    assert result.returncode == 0 and "acompute x b b y = 90° (exact 90°)" in result.stdout


def test_render_replaces_no_file_without_overwrite(tmp_path: Path) -> None:
    png, svg = tmp_path / "t.png", tmp_path / "t.svg"
    svg.write_text("mine")
    program = "a b c = triangle a b c"
    want = f"error: {svg} exists: pass --overwrite to replace it"
    assert one_line_error(cli("render", program, "-o", str(png), "--svg"), 2) == want
    assert not png.exists() and svg.read_text() == "mine"  # nothing written, nothing replaced
    assert cli("render", program, "-o", str(png)).returncode == 0
    first = png.read_bytes()
    want = f"error: {png} exists: pass --overwrite to replace it"
    assert one_line_error(cli("render", program, "-o", str(png), "--seed", "1"), 2) == want
    assert png.read_bytes() == first
    assert cli("render", program, "-o", str(png), "--seed", "1", "--overwrite").returncode == 0
    assert png.read_bytes() != first
