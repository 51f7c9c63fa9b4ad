"""Multi-node DDP as docs/distributed.md launches it (issue 14): two torchrun agents, one
process each (``--nnodes 2 --nproc-per-node 1``), meeting at a c10d rendezvous on localhost,
train as the one-machine two-process run of tests/trainer_support.py does."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from trainer_support import (  # noqa: E402
    GEOFORGE,
    LOSS_TOL,
    RUN_ARGS,
    STEPS,
    TORCHRUN,
    WEIGHT_TOL,
    _env,
    _log,
    _max_diff,
    _ok,
    _weights,
)

pytest_plugins = ["trainer_support"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_torchrun_nodes_with_a_c10d_rendezvous_train_as_one_node_with_two_processes(
    corpus: Path, torchrun_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    agent = [str(TORCHRUN), "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d"]
    agent += ["--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-id", "geoforge-test"]
    train = [str(GEOFORGE), "train", "mmclip", "--data", str(corpus), "--out", str(run)]
    cmd = [*agent, *train, "--batch-size", "4", *RUN_ARGS]
    nodes = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for _ in range(2)
    ]
    for node in nodes:
        stdout, stderr = node.communicate(timeout=900)
        _ok(subprocess.CompletedProcess(cmd, node.returncode, stdout, stderr))
    one, two = _log(torchrun_run), _log(run)
    assert [r["step"] for r in two] == list(range(1, STEPS + 1))
    loss_diff = max(abs(a["loss"] - b["loss"]) for a, b in zip(one, two, strict=True))
    weight_diff = _max_diff(*(_weights(r / "checkpoints" / "final.pt") for r in (torchrun_run, run)))
    print(
        f"2 nodes x 1 process vs 1 node x 2: loss max diff {loss_diff:.3g}, weight max diff {weight_diff:.3g}"
    )
    assert loss_diff <= LOSS_TOL
    assert weight_diff <= WEIGHT_TOL
