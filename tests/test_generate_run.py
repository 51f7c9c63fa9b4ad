"""One ``generate`` run as a user sees it: the output's lock (a second run on the same output
fails at once and touches nothing), the share of samples with enough negatives (min(8, K)),
the warning for a ``memory://`` output, the status line before Ray starts and the bar's rate."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geoforge.corpus import NegativeStats, read_corpus
from geoforge.corpus_check import verify_corpus
from geoforge.errors import UsageError
from geoforge.generate import generate_corpus
from geoforge.negatives import NegativeConfig
from geoforge.store import LOCK, OutputBusy, Store

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "geoforge.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "GEOFORGE_DEBUG"},
        timeout=300,
    )


def _snapshot(out: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}


# --- the output's lock ----------------------------------------------------------------------


def test_a_run_on_a_locked_output_fails_at_once_and_leaves_every_file_as_it_was(
    recipe, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "c"
    generate_corpus(recipe, out, n=3, seed=0)
    assert LOCK not in {p.name for p in out.iterdir()}  # released and removed at the end
    in_flight = out / ".shard-000001.tar.0123456789ab.tmp"  # the holder's shard being written
    in_flight.write_bytes(b"half a shard")
    before = _snapshot(out)
    statuses: list[str] = []
    with Store.at(out).lock():
        assert (out / LOCK).read_text() == f"{os.getpid()}\n"
        busy = rf"^{re.escape(str(out))} is being written by another geoforge run \(pid {os.getpid()}\); "
        with pytest.raises(OutputBusy, match=busy + "wait for it or choose another --out$"):
            generate_corpus(recipe, out, n=3, seed=0, overwrite=True)
        with pytest.raises(OutputBusy, match=busy):  # before Ray starts
            generate_corpus(recipe, out, n=3, seed=0, resume=True, backend="ray", on_status=statuses.append)
        assert _snapshot(out) == {
            **before,
            LOCK: ((out / LOCK).read_bytes(), (out / LOCK).stat().st_mtime_ns),
        }
    assert statuses == []
    assert OutputBusy("x").exit_code == 1


def test_cli_on_a_locked_output_is_one_line_naming_the_holder_with_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "c"
    with Store.at(out).lock():
        result = _cli("generate", "corpora/smoke.toml", "--out", str(out), "--n", "2")
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {out} is being written by another geoforge run (pid {os.getpid()}); "
        "wait for it or choose another --out"
    ]
    assert not out.exists()  # the directory the lock made is removed with it


def test_a_killed_runs_lock_file_is_no_content_for_the_next_run_verify_readers_or_the_card(
    recipe, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "c"
    out.mkdir()
    (out / LOCK).write_text("999999\n")  # left by a killed run: nobody holds it
    manifest = generate_corpus(recipe, out, n=3, seed=0)  # not "not empty"
    assert manifest["shards"] == 2
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "manifest.json",
        "shard-000000.tar",
        "shard-000001.tar",
        "sizes.json",
    ]
    assert LOCK not in (out / "README.md").read_text()
    (out / LOCK).write_text("999999\n")  # a corpus resumed after a kill, read as it is
    report = verify_corpus(out)
    assert report.ok and (report.shards, report.samples) == (2, 3), report.problems
    assert [r.key for r in read_corpus(out)] == ["00000000", "00000001", "00000002"]
    assert LOCK not in Store.at(out).names()
    resumed = generate_corpus(recipe, out, n=3, seed=0, resume=True)
    assert resumed["nothing_to_do"] is True  # the stale lock blocked nothing
    assert not (out / LOCK).exists()


def test_workers_of_a_killed_run_do_not_keep_its_output_locked(tmp_path: Path) -> None:
    """A forked child closes its copy of the lock at once: an flock lasts while any descriptor
    of its file is open, so a pool worker orphaned by a killed run kept the output busy."""
    out = tmp_path / "c"
    script = (
        "import multiprocessing, os, sys, time\n"
        "from geoforge.store import Store\n"
        f"with Store.at({str(out)!r}).lock():\n"
        "    child = multiprocessing.get_context('fork').Process(target=time.sleep, args=(60,))\n"
        "    child.start()\n"
        "    print(child.pid, flush=True)\n"
        "    os._exit(0)  # killed: no cleanup, the worker lives on\n"
    )
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(run.stdout.readline())  # type: ignore[union-attr]
    assert run.wait(timeout=60) == 0  # the worker keeps the pipe open: no read to its end
    try:
        deadline = time.monotonic() + 10  # the worker closes its copy as it starts
        while True:
            os.kill(worker, 0)  # still alive
            try:
                with Store.at(out).lock():
                    assert (out / LOCK).read_text() == f"{os.getpid()}\n"
                break
            except OutputBusy:
                assert time.monotonic() < deadline, "the orphaned worker keeps the output locked"
                time.sleep(0.05)
    finally:
        os.kill(worker, signal.SIGKILL)


def test_sigterm_stops_the_run_and_its_workers_and_resume_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "c"
    args = ["generate", "corpora/smoke.toml", "--out", str(out), "--n", "200", "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "geoforge.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 120
    while not (out / "shard-000000.tar").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    assert len(workers) >= 2
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr.splitlines()[-1] == (
        f"terminated: the complete shards in {out} are kept; run the same command with --resume to continue"
    )
    time.sleep(0.5)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()], "workers outlived the run"
    assert not (out / LOCK).exists()
    resumed = _cli(*args[:-2], "--resume", "--json")  # one worker: the rest is quick enough
    assert resumed.returncode == 0, resumed.stderr
    assert "shard-000000.tar" in json.loads(resumed.stdout)["run"]["resumed_shards"]


def test_a_refused_run_leaves_no_directory_the_lock_made(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "a" / "b"
    with pytest.raises(UsageError, match="exclude each other"):
        generate_corpus(recipe, out, n=1, seed=0, resume=True, overwrite=True)
    assert not (tmp_path / "a").exists()


# --- samples with enough negatives ----------------------------------------------------------


def _record(image: int, caption: int) -> dict[str, object]:
    return {
        "image": [{"plugin": "move_vertex", "pixel_diff": 0.01}] * image,
        "caption": [{"plugin": "swap_value", "text": "x"}] * caption,
        "retrieval": [],
        "rejections": {},
        "failures": {},
    }


def test_the_seconds_legend_says_which_shards_it_covers_after_a_resume() -> None:
    from geoforge.cli.corpus import _negatives_table

    stats = NegativeStats()
    stats.add(_record(2, 8))
    got = stats.to_json({"image": 2, "caption": 10, "retrieval": 0})
    seconds = {"move_vertex: propose": 1.0, "move_vertex: verify": 2.0}
    legend = (
        "s propose + verify: worker-seconds in the perturbation's code, and in the verifier on its candidates"
    )
    fresh = _negatives_table(got, seconds=seconds).caption.splitlines()  # type: ignore[attr-defined]
    assert legend in fresh
    resumed = _negatives_table(got, seconds=seconds, untimed=3).caption.splitlines()  # type: ignore[attr-defined]
    assert f"{legend}, in the shards this run made (not the 3 shards --resume kept)" in resumed


def test_share_with_enough_negatives_counts_min_of_8_and_k_asked_per_kind() -> None:
    from geoforge.cli.corpus import _negatives_table

    stats = NegativeStats()
    for image, caption in ((2, 8), (2, 3), (1, 10), (2, 9)):
        stats.add(_record(image, caption))
    got = stats.to_json({"image": 2, "caption": 10, "retrieval": 0})
    assert got["at_least_8"] == {"image": 0.0, "caption": 0.75, "retrieval": 0.0}  # as before
    assert got["at_least_k"] == {"image": 0.75, "caption": 0.75, "retrieval": 1.0}
    assert got["at_least_k_threshold"] == {"image": 2, "caption": 8, "retrieval": 0}
    caption = _negatives_table(got).caption  # type: ignore[attr-defined]
    assert caption.splitlines()[0] == (
        "samples with ≥ min(8, K) negatives: image ≥ 2: 75%, caption ≥ 8: 75%; mean pixel difference 0.0100"
    )
    assert caption.splitlines()[2].startswith("image negatives with restored true marks or strokes")
    # without image negatives asked, nothing is said of their figures
    text_only = stats.to_json({"image": 0, "caption": 10, "retrieval": 0})
    lines = _negatives_table(text_only).caption.splitlines()  # type: ignore[attr-defined]
    assert lines[0] == "samples with ≥ min(8, K) negatives: caption ≥ 8: 75%"
    assert len(lines) == 2 and lines[1].startswith("false by:")
    merged = NegativeStats()
    for image, caption in ((2, 8), (2, 3), (1, 10), (2, 9)):
        one = NegativeStats()
        one.add(_record(image, caption))
        merged.merge(one)
    assert merged.to_json({"image": 2, "caption": 10}) == stats.to_json({"image": 2, "caption": 10})


def test_manifest_records_the_threshold_of_the_negatives_asked(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = generate_corpus(recipe, tmp_path / "c", n=2, seed=0, negatives=NegativeConfig(caption=2))
    stats = manifest["counts"]["negatives"]  # type: ignore[index]
    assert stats["at_least_k_threshold"] == {"image": 0, "caption": 2, "retrieval": 0}
    records = [json.loads(str(r.meta["negatives"])) for r in read_corpus(tmp_path / "c")]
    full = sum(len(r["caption"]) >= 2 for r in records) / len(records)
    assert stats["at_least_k"]["caption"] == full
    assert stats["at_least_8"]["caption"] == 0.0


# --- memory://, Ray's start and the bar's rate ----------------------------------------------


def test_cli_warns_once_that_a_memory_output_is_gone_at_exit() -> None:
    pytest.importorskip("fsspec")
    result = _cli("generate", "corpora/smoke.toml", "--out", "memory://geoforge-cli/x", "--n", "1")
    assert result.returncode == 0, result.stderr
    warning = (
        "warning: --out memory://geoforge-cli/x lives in this process's memory and is gone when it exits"
    )
    assert result.stderr.splitlines().count(warning) == 1, result.stderr
    assert result.stderr.splitlines()[0] == warning  # before the run, not after it


def test_generate_says_ray_is_starting_before_it_starts(recipe, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails right after the status line
    for address, line in (
        (None, "starting a local Ray instance…"),
        ("ray://10.0.0.1:10001", "joining the Ray cluster at ray://10.0.0.1:10001…"),
    ):
        statuses: list[str] = []
        with pytest.raises(UsageError, match="needs Ray"):
            generate_corpus(
                recipe,
                tmp_path / "c",
                n=1,
                seed=0,
                backend="ray",
                ray_address=address,
                on_status=statuses.append,
            )
        assert statuses == [line]
    assert not (tmp_path / "c").exists()


def test_cli_on_a_terminal_prints_the_ray_status_line_before_joining(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "c"
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "geoforge.cli", "generate", "corpora/smoke.toml", "--out", str(out),
             "--n", "2", "--backend", "ray", "--ray-address", "127.0.0.1:1"],
            stdout=subprocess.DEVNULL, stderr=terminal, cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "GEOFORGE_DEBUG"},
        )  # fmt: skip
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=120) == 1
    finally:
        os.close(controller)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode())
    assert "joining the Ray cluster at 127.0.0.1:1…" in text
    assert text.index("joining the Ray cluster") < text.index("error: --ray-address 127.0.0.1:1")


def test_the_bar_shows_the_rate_since_the_run_began_not_of_the_last_burst() -> None:
    from rich.progress import Progress

    from geoforge.cli.corpus import overall_rate

    now = [100.0]
    bar = Progress(get_time=lambda: now[0], disable=True)
    task = bar.add_task("generate", total=40, rate="")
    tick = overall_rate(bar, task)
    now[0] += 14.0  # Ray starts: nothing done
    for _ in range(40):  # then 40 samples in 0.8 s
        now[0] += 0.02
        tick(1)
    state = bar.tasks[0]
    assert state.fields["rate"] == "   2.7 samples/s"  # 40 / 14.8 s, as the summary says
    assert state.speed is not None and state.speed > 40  # rich's own: the burst alone


def test_resume_refuses_to_keep_a_shard_damaged_since_the_run(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "c"
    manifest = generate_corpus(recipe, out, n=3, seed=0)
    shard = out / "shard-000001.tar"
    assert manifest["shard_bytes"] == {p.name: p.stat().st_size for p in sorted(out.glob("shard-*.tar"))}
    with shard.open("r+b") as fh:
        fh.truncate(shard.stat().st_size // 2)
    before = _snapshot(out)
    with pytest.raises(UsageError, match=rf"^--resume: {re.escape(str(shard))} holds \d+ bytes, but the run"):
        generate_corpus(recipe, out, n=3, seed=0, resume=True)
    assert _snapshot(out) == before
    shard.unlink()  # what the message says to do: the damaged shard is made again
    resumed = generate_corpus(recipe, out, n=3, seed=0, resume=True)
    assert resumed["run"]["resumed_shards"] == ["shard-000000.tar"]
    assert resumed["shard_bytes"] == manifest["shard_bytes"]


def test_the_dataset_card_shows_the_samples_and_seed_the_run_used(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "c"
    manifest = generate_corpus(recipe, out, n=3, seed=7)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert (recipe.samples, recipe.seed) == (48, 0)  # what the recipe file says
    assert '  "samples": 3,\n' in card and '  "seed": 7,\n' in card
    assert manifest["recipe"] == recipe.to_json() and (manifest["samples"], manifest["seed"]) == (3, 7)
