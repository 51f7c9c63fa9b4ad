"""Instructions per sample with hard negatives, counted by valgrind, for this tree and a baseline.

CPU-seconds on a shared VM swing by ±15% between rounds of one run, more between days, so a
gain of 10% is hard to see in ``negatives_speed.py``. The number of instructions a process
executes does not depend on the machine's load: valgrind's cachegrind (``--cache-sim=no``)
counts them (``I refs``). Each tree runs the workload of ``negatives_speed.py`` (``mmgeo-4k``,
K = M = R = 10 negatives) twice under valgrind, after the same warm-up on three samples: with
no positives and with N; the difference over N is the instructions per sample, imports and
warm-up left out.

Instructions are a proxy, not time: numpy's and matplotlib's C code does more per cycle than
the interpreter, so a change that moves work from Python into numpy saves more time than its
instruction count says, and the other way round. Report this next to ``negatives_speed.py``'s
CPU-second ratio, not instead of it. Needs ``valgrind`` on ``PATH``; about 3 minutes per tree
at N = 12 on a 2-core VM.

    .venv/bin/python benchmarks/negatives_instructions.py --baseline 3777529 [-n 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import side_by_side
from wall_timers import negatives_workload


def worker(n: int, k: int, m: int, r: int, recipe_path: str) -> None:
    """The workload (:func:`wall_timers.negatives_workload`), then the files its modules came
    from as JSON on stdout."""
    negatives_workload(n, k, m, r, recipe_path)
    print(json.dumps({"modules": side_by_side.module_files()}))


def count(tree: Path, n: int, args: argparse.Namespace) -> int:
    """Instructions of one worker run over ``tree`` with ``n`` positives. Raises RuntimeError if
    it fails or imported geoforge from outside ``tree``."""
    env = {**os.environ, **side_by_side.ONE_THREAD, "PYTHONPATH": side_by_side.tree_path(tree)}
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, str(Path(__file__).resolve()), "--worker",
        "-n", str(n), "-k", str(args.k), "-m", str(args.m), "-r", str(args.r), "--recipe", args.recipe,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tree)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"worker in {tree} failed:\n{done.stderr[-3000:]}")
    for module, path in json.loads(done.stdout)["modules"].items():
        if not path or not Path(path).resolve().is_relative_to(tree.resolve()):
            raise RuntimeError(f"worker in {tree} imported {module} from {path or 'nowhere'}")
    return int(found.group(1).replace(",", ""))


def per_sample(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    """Instructions with 0 and with ``args.n`` positives, and per positive."""
    empty, full = count(tree, 0, args), count(tree, args.n, args)
    return {"without": empty, "with": full, "per_sample": (full - empty) / args.n}


def main() -> None:
    found = side_by_side.each_tree(
        __doc__.splitlines()[0], 12, "valgrind", "apt install valgrind", worker, per_sample
    )
    if found is None:
        return
    args, results = found
    report: dict[str, object] = {"positives": args.n, "k_m_r": [args.k, args.m, args.r], "trees": results}
    if "B" in results:
        report["ratio"] = round(results["B"]["per_sample"] / results["A"]["per_sample"], 3)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for name, found in results.items():
        label = "this tree" if name == "A" else args.baseline
        print(f"{name} ({label}): {found['per_sample'] / 1e6:.1f} M instructions per sample")
    if "ratio" in report:
        print(f"B / A: {report['ratio']} (fewer instructions in A by that factor)")


if __name__ == "__main__":
    main()
