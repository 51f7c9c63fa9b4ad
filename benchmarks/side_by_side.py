"""Run one benchmark on two source trees side by side, in interleaved rounds.

Tree A is this working tree; tree B is a git revision (``--baseline REV``), extracted with
``git archive`` into a temporary directory. Each round runs the benchmark's worker once per
tree, A then B, in a fresh process of the same Python (this virtualenv) with
``PYTHONPATH=<tree>:<tree>/plugins:<tree>/trainer``, so ``geoforge``, the built-in
perturbations (entry points ``geoforge_perturb.*``) and the trainer are imported from that
tree, not from the editable install (whose import hook comes after ``PYTHONPATH`` on
``sys.meta_path``). Each worker reports the files its modules came from, and this module
checks they lie in its tree. Interleaving makes the load of other jobs on a shared machine hit
both trees alike; the medians and their ratio are what to compare.

Used by ``negatives_speed.py``, ``generate_speed.py``, ``generate_cost.py`` and others.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Modules whose files must come from the tree being measured.
CHECKED = ("geoforge", "geoforge.verify", "geoforge.render", "geoforge_perturb.move_vertex")


def tree_path(tree: Path) -> str:
    """The ``PYTHONPATH`` that imports geoforge, its plugins and its trainer from ``tree``."""
    return os.pathsep.join(str(tree / p) if p else str(tree) for p in ("", "plugins", "trainer"))


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A temporary copy of the files of git revision ``rev`` of this repository (``git archive``:
    no worktree or ref is added to the repository); removed on exit. Raises SystemExit(2) with
    one line if ``rev`` is not a revision."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        print(f"error: --baseline {rev}: not a git revision of {ROOT}", file=sys.stderr)
        raise SystemExit(2)
    sha = found.stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix=f"geoforge-{sha[:7]}-"))
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha], capture_output=True, check=True)
        import io

        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: Environment that keeps numerical libraries to one thread: a worker then uses one core.
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def pin_one_core() -> str:
    """Pin this process to one CPU if the OS allows it (the lowest it may use) and
    ``GEOFORGE_BENCH_PIN`` is not ``0``; say which, or why not. Side-by-side workers are not
    pinned (:func:`run_worker`): on a machine shared with other jobs, a process pinned to a busy
    CPU runs at half speed while another CPU idles, whatever the code; they run with one thread
    (:data:`ONE_THREAD`) instead, so they still use one core at a time."""
    if os.environ.get("GEOFORGE_BENCH_PIN") == "0":
        return f"not pinned, one thread ({os.cpu_count()} CPUs)"
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def module_files() -> dict[str, str]:
    """The file each imported module of :data:`CHECKED` came from; for a worker to report."""
    return {m: str(getattr(sys.modules[m], "__file__", "")) for m in CHECKED if m in sys.modules}


def run_worker(script: Path, tree: Path, args: list[str]) -> dict[str, object]:
    """Run ``script --worker ARGS`` with ``tree`` on ``PYTHONPATH``; its JSON result. If it
    fails, prints ``error: worker in TREE failed (exit N):`` and the end of its stderr (its own
    message, or the traceback of a bug in it) and exits with 1, without a traceback of this
    process. Raises RuntimeError if it imported a checked module from outside ``tree``."""
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": tree_path(tree), "GEOFORGE_BENCH_PIN": "0"}
    done = subprocess.run(
        [sys.executable, str(script), "--worker", *args], capture_output=True, text=True, env=env, cwd=tree
    )
    if done.returncode != 0:
        print(f"error: worker in {tree} failed (exit {done.returncode}):", file=sys.stderr)
        print(done.stderr[-3000:].rstrip(), file=sys.stderr)
        raise SystemExit(1)
    result = json.loads(done.stdout)
    if "geoforge" not in result["modules"]:
        raise RuntimeError(f"worker in {tree} did not import geoforge")
    for module, path in result["modules"].items():
        if not path or not Path(path).resolve().is_relative_to(tree.resolve()):
            raise RuntimeError(f"worker in {tree} imported {module} from {path or 'nowhere'}")
    return result


def require_recipe(parser: argparse.ArgumentParser, path: str) -> None:
    """A usage error (exit 2) naming ``--recipe`` and what is wrong unless ``path`` (absolute,
    or relative to the repository root, as the workers read it) is a recipe this tree's
    :func:`geoforge.sampler.load_recipe` accepts."""
    from geoforge.errors import GeoforgeError
    from geoforge.sampler import load_recipe

    try:
        load_recipe(ROOT / path)
    except GeoforgeError as e:
        parser.error(f"--recipe: {e}")


def summary_line(doc: str | None) -> str:
    """A benchmark's ``--help`` description: the first paragraph of its docstring, on one line."""
    return " ".join((doc or "").split("\n\n")[0].split())


def compare(
    script: Path,
    args: list[str],
    baseline: str,
    rounds: int,
    figure: str,
    show: Callable[[str, int, dict[str, object]], None],
    profiled: list[str] | None = None,
) -> dict[str, object]:
    """Measure this tree (A) and revision ``baseline`` (B) with ``script``'s worker in
    ``rounds`` interleaved rounds (A B A B ...). ``figure`` is the key of the result to compare
    (larger is better); ``show(tree, round, result)`` prints a round. With ``profiled`` (extra
    worker arguments), one more run per tree with them, not counted in the medians, goes under
    ``"profiled"``. Returns both trees' results per round, the medians of ``figure`` and the
    ratio A / B."""
    results: dict[str, list[dict[str, object]]] = {"A": [], "B": []}
    extra: dict[str, dict[str, object]] = {}
    with checkout(baseline) as b_tree:
        trees = {"A": ROOT, "B": b_tree}
        for k in range(rounds):
            for name, tree in trees.items():
                result = run_worker(script, tree, args)
                results[name].append(result)
                show(name, k, result)
        for name, tree in trees.items():
            if profiled is not None:
                extra[name] = run_worker(script, tree, args + profiled)
    medians = {name: statistics.median(float(r[figure]) for r in rs) for name, rs in results.items()}  # type: ignore[arg-type]
    pairs = [float(a[figure]) / float(b[figure]) for a, b in zip(results["A"], results["B"])]  # type: ignore[arg-type]
    return {
        "baseline": baseline,
        "figure": figure,
        "rounds": results,
        "median": medians,
        "ratio": round(medians["A"] / medians["B"], 3),
        "round_ratios": [round(x, 3) for x in pairs],
        "median_round_ratio": round(statistics.median(pairs), 3),
        "modules": {name: rs[0]["modules"] for name, rs in results.items()},
        "profiled": extra,
        "load": os.getloadavg(),
    }


def summary(report: dict[str, object]) -> str:
    """One line: both medians, the ratio and the load average."""
    med: dict[str, float] = report["median"]  # type: ignore[assignment]
    load = ", ".join(f"{x:.2f}" for x in report["load"])  # type: ignore[attr-defined]
    return (
        f"median {report['figure']}: A (this tree) {med['A']:.3f}, B ({report['baseline']}) {med['B']:.3f}; "
        f"ratio of medians A/B {report['ratio']}; per round {report['round_ratios']} "
        f"(median {report['median_round_ratio']}); load average {load}"
    )


def each_tree(
    description: str,
    default_n: int,
    tool: str,
    install: str,
    worker: Callable[[int, int, int, int, str], None],
    measure: Callable[[Path, argparse.Namespace], dict[str, float]],
) -> tuple[argparse.Namespace, dict[str, dict[str, float]]] | None:
    """The command line of the benchmarks that run a negatives worker under a tool (valgrind,
    perf) in this tree and a baseline: ``-n`` (default ``default_n``), ``-k``, ``-m``, ``-r``,
    ``--recipe``, ``--baseline REV``, ``--json`` and the hidden ``--worker``. With ``--worker``
    runs ``worker(n, k, m, r, recipe)`` and returns ``None``; else checks that ``tool`` is on
    ``PATH`` (SystemExit naming ``install`` if not) and returns the arguments and
    ``measure(tree, args)`` for ``"A"`` (this tree) and, with ``--baseline``, ``"B"``."""
    from wall_timers import add_negative_counts

    parser = argparse.ArgumentParser(description=description)
    add_negative_counts(parser, default_n)
    parser.add_argument(
        "--recipe", default="corpora/mmgeo-4k.toml", help="recipe TOML (relative: to each tree's root)"
    )
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.n, args.k, args.m, args.r, args.recipe)
        return None
    if shutil.which(tool) is None:
        raise SystemExit(f"{tool} is not on PATH: install it ({install})")
    results = {"A": measure(ROOT, args)}
    if args.baseline:
        with checkout(args.baseline) as tree:
            results["B"] = measure(tree, args)
    return args, results
