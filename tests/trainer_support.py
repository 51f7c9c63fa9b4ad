"""Shared set-up of the trainer tests (tests/test_trainer.py, tests/test_trainer_outputs.py):
imports, helpers to run the CLI, and the session corpus and runs. Loaded with
``pytest_plugins = ["trainer_support"]`` after the tests have checked torch is installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")


from geoforge_train.data import CorpusIndex, HardNegativeDataset, NegativeUse, Transform  # noqa: E402

from geoforge.generate import generate_corpus  # noqa: E402
from geoforge.negatives import NegativeConfig  # noqa: E402
from geoforge.sampler.recipe import recipe_from_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GEOFORGE, TORCHRUN = BIN / "geoforge", BIN / "torchrun"
CPU = torch.device("cpu")

#: The shared corpus: 24 samples in shards of 16 and 8, with 2 image, 3 caption and
#: 2 retrieval negatives asked per sample.
N, SHARD = 24, 16
#: The shared runs: 6 steps over 2 epochs of 3 global batches of 8, with augmentation,
#: 2 caption negatives and 1 image negative per sample, checkpoints every 3 steps.
LR, WARMUP, STEPS = 5e-4, 1, 6
RUN_ARGS = (
    *("--epochs", "2", "--max-steps", str(STEPS), "--save-every", "3", "--lr", str(LR)),
    *("--k-text", "2", "--k-image", "1", "--text-negatives", "caption"),
    *("--seed", "0", "--warmup", str(WARMUP), "--rotate", "5", "--downscale", "0.9"),
)
#: Loss parity of torchrun vs one process: the same sums in another order (float32).
LOSS_TOL = 1e-5
#: Final weights of torchrun vs one process after 6 AdamW steps at lr 5e-4. Adam divides
#: each gradient by its running RMS, so a reduction-order difference of ~1e-7 relative in
#: a near-zero gradient can move that weight by up to a fraction of lr per step; 1e-4 is
#: 0.2·lr, and 4× the largest difference seen (2.3e-5).
WEIGHT_TOL = 1e-4
#: A resumed run repeats the same computations in the same order.
RESUME_TOL = 1e-6


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEOFORGE_DEBUG", "WORLD_SIZE", "RANK")}
    env["PYTHONWARNINGS"] = "ignore::FutureWarning"  # torch's all_gather deprecation notice
    return env


def _cli(*args: object, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    if not GEOFORGE.is_file():
        pytest.skip(f"no geoforge script next to {sys.executable}")
    return subprocess.run(
        [str(GEOFORGE), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=_env()
    )


@dataclass
class Ran:
    """What one in-process ``geoforge`` command did (as :func:`_cli`'s CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``geoforge ARGS`` in this process, through the CLI's own error handling: the model
    stack is imported once, not once per command as :func:`_cli`'s subprocesses do."""
    from geoforge.cli import main
    from geoforge.cli.app import _state

    monkeypatch.setitem(_state, "debug", False)

    def run(*args: object) -> Ran:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["geoforge", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as e:
            code = int(e.code or 0)
        got = capsys.readouterr()
        return Ran(code, got.out, got.err)

    return run


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _one_line_error(proc: subprocess.CompletedProcess[str] | Ran, status: int | None = 2) -> str:
    """The single stderr line of a failed command (a subprocess or :func:`cli`), checking the
    exit status and no traceback."""
    assert proc.returncode != 0, proc.stdout
    if status is not None:
        assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def _log(run: Path) -> list[dict[str, float]]:
    return [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def _records(corpus: Path) -> list[dict[str, object]]:
    """Each sample's metadata with its negatives record decoded, in corpus order."""
    out = []
    for shard in sorted(corpus.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar:
                if m.name.endswith(".json"):
                    meta = json.loads(tar.extractfile(m).read())  # type: ignore[union-attr]
                    meta["negatives"] = json.loads(meta.get("negatives") or "{}")
                    out.append(meta)
    return out


# --- shared corpus and runs ------------------------------------------------------------------


def _recipe():  # type: ignore[no-untyped-def]
    data = tomllib.loads((ROOT / "corpora" / "smoke.toml").read_text(encoding="utf-8"))
    data["corpus"]["shard_size"] = SHARD
    return recipe_from_dict(data, "smoke.toml")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trainer") / "corpus"
    generate_corpus(_recipe(), out, n=N, seed=0, negatives=NegativeConfig(image=2, caption=3, retrieval=2))
    assert json.loads((out / "sizes.json").read_text()) == {"shard-000000.tar": 16, "shard-000001.tar": 8}
    return out


@pytest.fixture(scope="session")
def bare_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of 4 samples without any negatives."""
    out = tmp_path_factory.mktemp("trainer") / "bare"
    generate_corpus(_recipe(), out, n=4, seed=1)
    return out


@pytest.fixture(scope="session")
def caption_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of 4 samples with rule caption negatives only."""
    out = tmp_path_factory.mktemp("trainer") / "captions"
    generate_corpus(_recipe(), out, n=4, seed=2, negatives=NegativeConfig(caption=2))
    return out


@pytest.fixture(scope="session")
def runs(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The single-process run (batch 8) and the two-rank torchrun run (batch 4 per rank) on
    the same corpus and seed, launched side by side."""
    if not GEOFORGE.is_file() or not TORCHRUN.is_file():
        pytest.skip(f"no geoforge or torchrun script next to {sys.executable}")
    root = tmp_path_factory.mktemp("runs")
    train_ = [str(GEOFORGE), "train", "mmclip", "--data", str(corpus)]
    commands = {
        "single": [*train_, "--out", str(root / "single"), "--batch-size", "8", *RUN_ARGS],
        "torchrun": [
            *(str(TORCHRUN), "--nproc_per_node", "2", "--standalone"),
            *(*train_, "--out", str(root / "torchrun"), "--batch-size", "4", *RUN_ARGS),
        ],
    }
    procs = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for name, cmd in commands.items()
    }
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        _ok(subprocess.CompletedProcess(commands[name], proc.returncode, stdout, stderr))
    return {name: root / name for name in commands}


@pytest.fixture(scope="session")
def single_run(runs: dict[str, Path]) -> Path:
    return runs["single"]


@pytest.fixture(scope="session")
def torchrun_run(runs: dict[str, Path]) -> Path:
    return runs["torchrun"]


def _dataset(corpus: Path, use: NegativeUse, size: int = 160, train_: bool = True) -> HardNegativeDataset:
    tokenizer = open_clip.get_tokenizer("geoforge-tiny")
    transform = Transform(size, train=train_, rotate=5 if train_ else 0, downscale=0.9 if train_ else 1)
    return HardNegativeDataset(CorpusIndex.build(corpus), tokenizer, transform, use)
