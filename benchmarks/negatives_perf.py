"""Where the CPU goes with hard negatives, by library: perf's CPU-clock samples of the negatives
workload, grouped by the shared object each sample falls in.

``negatives_timers.py`` says which geoforge function takes the time, and
``negatives_instructions.py`` counts instructions. Neither says whether a millisecond is spent by
the Python interpreter, running geoforge's, matplotlib's and numpy's Python code, or by C loops:
numpy's kernels, Agg's rasteriser, zlib. That split decides what can still be made faster.

This script runs the workload of those two scripts (:func:`wall_timers.negatives_workload`:
``mmgeo-4k``, K = M = R = 10) under ``perf record -e cpu-clock``, with one numerical thread. It
records only after the warm-up: perf starts disabled, and the worker turns it on through perf's
control FIFO. It then prints each group's share of the samples:

- ``interpreter``: libpython;
- ``numpy``: its ``_multiarray_umath``;
- ``Agg``: matplotlib's ``_backend_agg``;
- ``zlib``, ``libc`` (memcpy, malloc), ``libm`` and ``kernel``;
- ``other``.

Needs ``perf`` on ``PATH``, and a kernel that lets this user sample CPU-clock
(``perf_event_paranoid`` ≤ 2). It takes about a minute per tree at ``-n 40`` on a 2-core VM.

    .venv/bin/python benchmarks/negatives_perf.py [-n 40] [--baseline REV] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import side_by_side
from wall_timers import negatives_workload

#: Shared objects by group: the first pattern a DSO name matches names its group.
GROUPS = (
    ("interpreter", r"^libpython"),
    ("numpy", r"^_multiarray_umath|^_umath"),
    ("Agg", r"^_backend_agg"),
    ("zlib", r"^libz\."),
    ("libc", r"^libc[.-]"),
    ("libm", r"^libm[.-]"),
    ("kernel", r"kernel"),
)
#: Environment variables through which the worker finds perf's control and acknowledgement FIFOs.
CONTROL = ("GEOFORGE_PERF_CTL", "GEOFORGE_PERF_ACK")


def _perf_command(command: str) -> None:
    """Send ``command`` (``enable`` or ``disable``) to the perf that runs this worker and wait
    for its acknowledgement."""
    ctl, ack = (os.environ[v] for v in CONTROL)
    with open(ctl, "w") as f:
        f.write(f"{command}\n")
    with open(ack) as f:
        f.readline()


def worker(n: int, k: int, m: int, r: int, recipe_path: str) -> None:
    """The workload, with perf's recording turned on after its warm-up and off at its end;
    then the files its modules came from as JSON on stdout."""
    negatives_workload(n, k, m, r, recipe_path, warmed=lambda: _perf_command("enable"))
    _perf_command("disable")
    print(json.dumps({"modules": side_by_side.module_files()}))


def group_of(dso: str) -> str:
    """The :data:`GROUPS` name of a shared object's file name, ``other`` if none matches."""
    return next((name for name, pattern in GROUPS if re.search(pattern, dso)), "other")


def shares(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    """Per group, the percentage of the CPU-clock samples of one worker run over ``tree``.
    Raises RuntimeError if perf or the worker fails, or the worker imported geoforge from
    outside ``tree``."""
    with tempfile.TemporaryDirectory(prefix="geoforge-perf-") as tmp:
        ctl, ack, data = Path(tmp, "ctl"), Path(tmp, "ack"), Path(tmp, "perf.data")
        os.mkfifo(ctl)
        os.mkfifo(ack)
        env = {
            **os.environ,
            **side_by_side.ONE_THREAD,
            "PYTHONPATH": side_by_side.tree_path(tree),
            CONTROL[0]: str(ctl),
            CONTROL[1]: str(ack),
        }
        command = [
            "perf", "record", "-e", "cpu-clock", "-F", "999", "-D", "-1", "-o", str(data),
            "--control", f"fifo:{ctl},{ack}", "--",
            sys.executable, str(Path(__file__).resolve()), "--worker",
            "-n", str(args.n), "-k", str(args.k), "-m", str(args.m), "-r", str(args.r),
            "--recipe", args.recipe,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tree)
        if done.returncode != 0:
            raise RuntimeError(f"perf record in {tree} failed:\n{done.stderr[-3000:]}")
        modules = json.loads(done.stdout.strip().splitlines()[-1])["modules"]
        for module, path in modules.items():
            if not path or not Path(path).resolve().is_relative_to(tree.resolve()):
                raise RuntimeError(f"worker in {tree} imported {module} from {path or 'nowhere'}")
        report = subprocess.run(
            ["perf", "report", "-i", str(data), "--sort", "dso", "--stdio", "--percent-limit", "0"],
            capture_output=True,
            text=True,
        )
        if report.returncode != 0:
            raise RuntimeError(f"perf report failed:\n{report.stderr[-3000:]}")
    out = dict.fromkeys([name for name, _ in GROUPS] + ["other"], 0.0)
    for line in report.stdout.splitlines():
        found = re.match(r"\s*([\d.]+)%\s+(\S+)", line)
        if found and not line.lstrip().startswith("#"):
            out[group_of(found.group(2))] += float(found.group(1))
    return {name: round(v, 2) for name, v in out.items()}


def main() -> None:
    found = side_by_side.each_tree(
        __doc__.splitlines()[0], 40, "perf", "apt install linux-perf", worker, shares
    )
    if found is None:
        return
    args, results = found
    if args.json:
        report = {"positives": args.n, "k_m_r": [args.k, args.m, args.r], "trees": results}
        print(json.dumps(report, indent=1))
        return
    labels = {"A": "this tree", "B": args.baseline}
    print(f"{'% of CPU samples':18s}" + "".join(f"{labels[t]:>12s}" for t in results))
    for name in results["A"]:
        print(f"{name:18s}" + "".join(f"{results[t][name]:12.1f}" for t in results))


if __name__ == "__main__":
    main()
