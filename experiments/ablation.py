"""The MMCLIP hard-negative ablation (MMGeoLM's Table 3) on fresh data: five rows, three training
seeds each, 95% intervals, a blind control and the paired image test. One script, two sizes.

Usage, from the repository root after ``make``:

    .venv/bin/python experiments/ablation.py --size cpu                 # ~30 min on 2 cores
    .venv/bin/python experiments/ablation.py --size gpu --device cuda   # ~5 min on one H200, 16 cores
    .venv/bin/python experiments/ablation.py --size gpu --smoke         # the GPU size's path on CPU

Phases, each a ``geoforge`` command (so the script does not depend on the corpus layout):

1. ``geoforge generate`` a training corpus (``n_train`` positives, 2 rule + 2 retrieval caption
   negatives and 2 image negatives each; ``n_train = steps · batch / 2``, so training sees each
   positive twice) and a held-out corpus from another seed (4 negatives of each source);
2. ``geoforge train mmclip`` of ``geoforge-tiny`` from scratch, one run per row and training seed,
   every run with the same steps, batch, schedule and corpus, ``lanes`` runs at a time (longest
   first): (a) in-batch only, (b) + retrieval caption negatives, (c) + rule caption negatives,
   (d) + image negatives, (e) all of them;
3. ``geoforge eval mmclip --per-sample`` of the untrained model and every run on the held-out
   corpus: image→caption and caption→image hard-negative accuracy, the paired image test
   (``s(T⁺, I⁺) > s(T⁺, I⁻)`` for each image negative, per perturbation kind), and the captions
   scored against another sample's image (the blind control);
4. ``OUT/results.json`` (settings, commands, the commit that made the corpora, timings, every
   model's metrics and per-sample scores), then ``experiments/ablation_table.py`` writes
   ``OUT/results.md`` with intervals (experiments/ablation_stats.py; experiments/README.md).

Refuses (exit 2) an output directory that is not empty; a failed command stops the run (exit 1)
with the tail of its log.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import ablation_table

ROOT = Path(__file__).resolve().parent.parent
RECIPE = "experiments/ablation.toml"
MODEL = "geoforge-tiny"
UNTRAINED = f"untrained:{MODEL}"
#: Corpus seeds: fresh for issue 13 (the earlier single-seed runs used 2025 and 7).
TRAIN_CORPUS_SEED, HELDOUT_CORPUS_SEED = 1301, 1302
#: Rows and what each adds to in-batch training.
ROWS = {
    "a": "in-batch only",
    "b": "+ retrieval caption negatives",
    "c": "+ rule caption negatives",
    "d": "+ image negatives",
    "e": "all of them",
}
#: Relative cost of a training step per row (measured on CPU: 0.45, 0.68, 0.68, 0.90, 1.31 s
#: per step of 16), to start the longest runs first.
COST = {"a": 1.0, "b": 1.5, "c": 1.5, "d": 2.0, "e": 2.9}


@dataclass(frozen=True)
class Size:
    """One size of the experiment. ``k``: rule and retrieval caption negatives per sample in
    the training corpus ((b), (c) use ``k``, (e) ``2k``); ``l``: image negatives ((d), (e));
    ``lanes``: training processes at once; ``data_workers``: DataLoader workers per run;
    ``gen_workers``: generation processes (0: every core this process may use)."""

    n_train: int
    n_heldout: int
    steps: int
    batch: int
    lr: float
    warmup: int
    lanes: int
    eval_lanes: int
    data_workers: int
    gen_workers: int
    k: int = 2
    l: int = 2
    heldout_negatives: int = 4

    @property
    def epochs(self) -> float:
        """How often training sees each positive: steps · batch / n_train."""
        return self.steps * self.batch / self.n_train


SIZES = {
    # 15 runs of 200 steps × 16 on 2 cores, one thread each: ~1,200 s of training, ~100 s of
    # generation and ~180 s of evaluation on an idle machine.
    "cpu": Size(1600, 400, 200, 16, 3e-4, 40, lanes=2, eval_lanes=2, data_workers=0, gen_workers=2),
    # 15 runs at once on one GPU, each with 2 loader processes on 16 cores: generation ~60 s,
    # training ~90 s, evaluation ~30 s (estimated from CPU costs; not yet run on a GPU).
    "gpu": Size(9600, 1000, 300, 64, 5e-4, 30, lanes=15, eval_lanes=4, data_workers=2, gen_workers=0),
}
#: What --smoke changes: tiny corpora and two steps, at most two processes at a time.
SMOKE = {"n_train": 32, "n_heldout": 16, "steps": 2, "batch": 8, "warmup": 1}


def row_flags(row: str, size: Size) -> list[str]:
    """The ``geoforge train mmclip`` options that make ``row``."""
    rules, retrieval = ["--text-negatives", "caption"], ["--text-negatives", "retrieval"]
    return {
        "a": [],
        "b": [*retrieval, "--k-text", str(size.k)],
        "c": [*rules, "--k-text", str(size.k)],
        "d": ["--k-image", str(size.l)],
        "e": [*rules, *retrieval, "--k-text", str(2 * size.k), "--k-image", str(size.l)],
    }[row]


class Runner:
    """Runs commands, records them with their wall seconds, and stops every running one when
    one fails (:class:`Failed`)."""

    def __init__(self, out: Path, env: dict[str, str]) -> None:
        self.out, self.env = out, env
        self.commands: list[str] = []
        self.running: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()

    def run(self, cmd: list[str], stdout: Path, log: Path) -> float:
        """Run ``cmd`` from the repository root, stdout to ``stdout``, stderr to ``log``;
        returns its wall seconds. Raises Failed naming the command and its log's tail."""
        with self.lock:
            self.commands.append(shlex.join(cmd))
        t0 = time.perf_counter()
        with stdout.open("wb") as out_fh, log.open("wb") as err_fh:
            proc = subprocess.Popen(cmd, stdout=out_fh, stderr=err_fh, cwd=ROOT, env=self.env)
            with self.lock:
                self.running.add(proc)
            code = proc.wait()
            with self.lock:
                self.running.discard(proc)
        if code != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise Failed(f"{shlex.join(cmd)} exited with {code}; {log}:\n{tail}")
        return time.perf_counter() - t0

    def stop_all(self) -> None:
        """Terminate the commands still running (after a failure)."""
        with self.lock:
            for proc in self.running:
                proc.terminate()


class Failed(RuntimeError):
    """A command of the experiment failed."""


def settings(args: argparse.Namespace) -> Size:
    """The size asked for, with --smoke and --lanes applied."""
    size = SIZES[args.size]
    if args.smoke:
        size = replace(
            size,
            **SMOKE,
            lanes=min(size.lanes, 2),
            eval_lanes=min(size.eval_lanes, 2),
            gen_workers=min(size.gen_workers or 2, 2),
        )
    return replace(size, lanes=args.lanes) if args.lanes else size


def commit() -> dict[str, object]:
    """HEAD and the uncommitted paths that can change a corpus or a run (``dirty``)."""

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    dirty = git("status", "--porcelain", "--", "geoforge", "plugins", "trainer", RECIPE).splitlines()
    return {"head": git("rev-parse", "HEAD").strip(), "dirty": [line[3:] for line in dirty]}


def machine(device: str) -> dict[str, object]:
    """Cores, CPU model and (with CUDA) the GPU, as this run saw them."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo") if "model name" in line), "?"
    )
    info: dict[str, object] = {"cores": cores(), "cpu": cpu, "python": platform.python_version()}
    if device.startswith("cuda") and shutil.which("nvidia-smi"):
        gpu = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True
        )
        info["gpu"] = gpu.stdout.strip()
    return info


def cores() -> int:
    """The cores this process may run on (its CPU affinity, not the host's count)."""
    return len(os.sched_getaffinity(0))


def _read_lines(path: str) -> list[str]:
    return Path(path).read_text().splitlines() if Path(path).is_file() else []


def third_party_plugins(runner: Runner, geoforge: str, out: Path) -> list[str]:
    """Names of installed plugins that are not geoforge's own (each skipped with --no-plugin,
    so both corpora hold only the built-in perturbations)."""
    runner.run([geoforge, "plugins", "--json"], out / "plugins.json", out / "logs" / "plugins.log")
    return [p["name"] for p in json.loads((out / "plugins.json").read_text()) if p["source"] != "built-in"]


def generate(runner: Runner, geoforge: str, out: Path, size: Size, skip: list[str]) -> dict[str, object]:
    """Both corpora; returns their manifests' git SHA, counts and seconds by corpus."""
    workers = str(size.gen_workers or cores())
    corpora = {
        "train": (size.n_train, TRAIN_CORPUS_SEED, (size.l, size.k, size.k)),
        "heldout": (size.n_heldout, HELDOUT_CORPUS_SEED, (size.heldout_negatives,) * 3),
    }
    made: dict[str, object] = {}
    for name, (n, seed, (image, caption, retrieval)) in corpora.items():
        cmd = [geoforge, "generate", RECIPE, "--out", str(out / name), "--n", str(n), "--seed", str(seed)]
        cmd += ["--workers", workers, "--image-negatives", str(image), "--caption-negatives", str(caption)]
        cmd += ["--retrieval-negatives", str(retrieval), "--json"] + [
            a for p in skip for a in ("--no-plugin", p)
        ]
        seconds = runner.run(cmd, out / f"{name}.manifest.json", out / "logs" / f"generate-{name}.log")
        manifest = json.loads((out / f"{name}.manifest.json").read_text())
        negatives = manifest["counts"]["negatives"]
        made[name] = {
            "positives": n,
            "seed": seed,
            "negatives_asked": {"image": image, "caption": caption, "retrieval": retrieval},
            "git_sha": manifest["git_sha"],
            "geoforge_version": manifest["geoforge_version"],
            "plugins": sorted(p["name"] for p in manifest["plugins"] if p["registers"].get("perturbations")),
            "accepted": negatives["accepted"],
            "mean_per_sample": negatives["mean_per_sample"],
            "seconds": round(seconds, 1),
        }
    return made


def train_all(
    runner: Runner, geoforge: str, out: Path, size: Size, seeds: list[int], device: str
) -> dict[str, dict[str, object]]:
    """Every (row, seed) run, ``size.lanes`` at a time, longest first; returns each run's
    summary, flags, wall seconds and first/last-10-step losses by run name ``ROW/sSEED``."""
    jobs = sorted(((row, seed) for row in ROWS for seed in seeds), key=lambda j: (-COST[j[0]], j[1]))

    def one(row: str, seed: int) -> tuple[str, dict[str, object]]:
        name, run = f"{row}/s{seed}", out / "runs" / f"{row}-s{seed}"
        flags = row_flags(row, size)
        cmd = [geoforge, "train", "mmclip", "--data", str(out / "train"), "--out", str(run)]
        cmd += ["--model", MODEL, "--max-steps", str(size.steps), "--epochs", str(int(size.epochs) + 1)]
        cmd += ["--batch-size", str(size.batch), "--lr", str(size.lr), "--warmup", str(size.warmup)]
        cmd += ["--seed", str(seed), "--device", device, "--data-workers", str(size.data_workers)]
        cmd += [*flags, "--json"]
        run.mkdir(parents=True)
        seconds = runner.run(cmd, run / "summary.json", run / "train.log")
        losses = [
            json.loads(line)["loss"]
            for line in (run / "log.jsonl").read_text().splitlines()
            if line.strip() and "loss" in json.loads(line)
        ]
        return name, {
            "row": row,
            "seed": seed,
            "dir": str(run.relative_to(out)),
            "flags": flags,
            "summary": json.loads((run / "summary.json").read_text()),
            "wall_s": round(seconds, 1),
            "loss_first10": float(sum(losses[:10]) / len(losses[:10])),
            "loss_last10": float(sum(losses[-10:]) / len(losses[-10:])),
        }

    return dict(_parallel(runner, size.lanes, [lambda j=j: one(*j) for j in jobs]))


def evaluate_all(
    runner: Runner, geoforge: str, out: Path, size: Size, models: list[str], device: str
) -> tuple[dict[str, dict[str, object]], dict[str, list[dict[str, object]]]]:
    """``geoforge eval mmclip --per-sample`` of ``models`` (checkpoint specs) in
    ``size.eval_lanes`` commands side by side; returns each spec's metrics and per-sample
    records, in held-out order."""
    groups = [models[i :: size.eval_lanes] for i in range(min(size.eval_lanes, len(models)))]
    (out / "eval").mkdir()

    def one(g: int, specs: list[str]) -> None:
        cmd = [geoforge, "eval", "mmclip", "--data", str(out / "heldout"), "--device", device]
        cmd += [a for spec in specs for a in ("--checkpoint", spec)]
        cmd += ["--per-sample", str(out / "eval" / f"per-sample-{g}.jsonl"), "--json"]
        runner.run(cmd, out / "eval" / f"eval-{g}.json", out / "logs" / f"eval-{g}.log")

    _parallel(runner, len(groups), [lambda g=g, s=s: one(g, s) for g, s in enumerate(groups)])
    metrics: dict[str, dict[str, object]] = {}
    records: dict[str, list[dict[str, object]]] = {spec: [] for spec in models}
    for g in range(len(groups)):
        metrics |= {r["model"]: r for r in json.loads((out / "eval" / f"eval-{g}.json").read_text())}
        for line in (out / "eval" / f"per-sample-{g}.jsonl").read_text().splitlines():
            record = json.loads(line)
            records[record.pop("model")].append(record)
    return metrics, records


def _parallel(runner: Runner, lanes: int, jobs: list) -> list:  # type: ignore[type-arg]
    """Run ``jobs`` (callables) on ``lanes`` threads, in order; on the first failure, stop the
    running commands and raise it."""
    with ThreadPoolExecutor(max_workers=lanes) as pool:
        futures = [pool.submit(job) for job in jobs]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            runner.stop_all()
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), required=True)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (training and evaluation)")
    parser.add_argument("--smoke", action="store_true", help="tiny corpora and 2 steps: checks the path")
    parser.add_argument("--out", type=Path, help="output directory (default out/ablation-SIZE[-smoke])")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--lanes", type=int, help="training processes at once (default: the size's)")
    args = parser.parse_args(argv)
    if len(args.seeds) < 2 or len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds: at least two different seeds (the interval needs their spread)")
    size = settings(args)
    out = args.out or ROOT / "out" / f"ablation-{args.size}{'-smoke' if args.smoke else ''}"
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} is not empty; remove it or pass another --out", file=sys.stderr)
        return 2
    (out / "logs").mkdir(parents=True, exist_ok=True)
    beside = Path(sys.executable).with_name("geoforge")  # the venv's, as a repo-relative path if it can
    geoforge = os.path.relpath(beside, ROOT) if beside.is_relative_to(ROOT) else str(beside)
    if not beside.is_file():
        geoforge = shutil.which("geoforge") or "geoforge"
    # One thread per process: the processes side by side use the cores (on 2 shared cores,
    # torch's 2-thread pool was slower than one thread per run).
    runner = Runner(out, os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    results: dict[str, object] = {
        "size": args.size,
        "smoke": args.smoke,
        "device": args.device,
        "settings": asdict(size) | {"epochs": size.epochs, "seeds": args.seeds, "model": MODEL},
        "commit": commit(),
        "machine": machine(args.device),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    try:
        t0 = time.perf_counter()
        skip = third_party_plugins(runner, geoforge, out)
        results["corpora"] = generate(runner, geoforge, out, size, skip)
        timings["generate (training and held-out corpora)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        runs = train_all(runner, geoforge, out, size, args.seeds, args.device)
        timings[f"train {len(runs)} runs, {size.lanes} at a time"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        specs = {UNTRAINED: "untrained"} | {str(out / r["dir"]): name for name, r in runs.items()}
        metrics, records = evaluate_all(runner, geoforge, out, size, list(specs), args.device)
        timings[f"evaluate {len(specs)} models"] = time.perf_counter() - t0
    except Failed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    timings["total"] = time.perf_counter() - t_start
    results |= {
        "runs": runs,
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "commands": runner.commands,
        "metrics": {specs[s]: m for s, m in metrics.items()},
        "per_sample": {specs[s]: r for s, r in records.items()},
    }
    (out / "results.json").write_text(json.dumps(results) + "\n")
    print(ablation_table.write(out / "results.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
