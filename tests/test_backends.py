"""``generate --backend local|ray`` (issue 14): the same corpus, byte for byte, from either
backend and any number of workers; a killed Ray worker leaves no partial shard under a final
name and the run completes; ``--resume`` across backends; output to fsspec URLs.

The Ray tests share one local Ray instance (``ray.init(num_cpus=2)``) for the module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import geoforge.generate
from geoforge.corpus import read_corpus, summarise
from geoforge.errors import UsageError
from geoforge.generate import generate_corpus
from geoforge.negatives import NegativeConfig
from geoforge.qa import QAConfig
from geoforge.sampler import load_recipe

ROOT = Path(__file__).resolve().parents[1]
#: Samples of the test corpora: shards of 3, 3 and 1 samples.
N, SHARD = 7, 3
NAMES = {"shard-000000.tar", "shard-000001.tar", "shard-000002.tar", "sizes.json", "README.md"}
#: The sample whose first attempt kills its Ray worker in the kill test (mid shard 1).
DOOMED = 4
#: Where the Ray workers' setup hook looks for the kill order (a file holding an index).
KILL_ENV = "GEOFORGE_TEST_KILL_FILE"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    text = (ROOT / "corpora" / "smoke.toml").read_text(encoding="utf-8")
    path = tmp_path_factory.mktemp("recipe") / "small.toml"
    path.write_text(re.sub(r"(?m)^shard_size = .*$", f"shard_size = {SHARD}", text), encoding="utf-8")
    return load_recipe(path)


#: Settings of the corpus with negatives and Q&A: retrieval draws on the shard's pool.
RICH = {"negatives": NegativeConfig(caption=1, retrieval=1), "qa": QAConfig()}


@pytest.fixture(scope="module")
def plain(recipe, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The reference corpus without negatives: one local worker."""
    out = tmp_path_factory.mktemp("plain") / "c"
    generate_corpus(recipe, out, n=N, seed=1)
    return out


@pytest.fixture(scope="module")
def rich(recipe, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The reference corpus with negatives and Q&A: one local worker."""
    out = tmp_path_factory.mktemp("rich") / "c"
    generate_corpus(recipe, out, n=N, seed=1, **RICH)
    return out


@pytest.fixture(scope="module")
def kill_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kill") / "order"


@pytest.fixture(scope="module")
def ray_instance(kill_file: Path):  # type: ignore[no-untyped-def]
    """A local Ray instance of 2 CPUs whose workers obey a kill order: while ``kill_file``
    holds an index, the first worker that makes that sample takes the order (renames the file
    to ``.taken``, with the corpus directory's names at that moment) and exits at once, as a
    killed worker would."""
    ray = pytest.importorskip("ray")

    def obey_kill_orders() -> None:
        real = geoforge.generate.make_sample

        def make_sample(recipe, seed, index):  # type: ignore[no-untyped-def]
            order = os.environ[KILL_ENV]
            if os.path.exists(order) and int(Path(order).read_text()) == index:
                try:
                    os.rename(order, order + ".taken")
                except FileNotFoundError:  # another worker took it
                    return real(recipe, seed, index)
                out = Path(order).with_name("out")
                Path(order + ".taken").write_text(json.dumps(sorted(p.name for p in out.iterdir())))
                os._exit(1)
            return real(recipe, seed, index)

        geoforge.generate.make_sample = make_sample

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="error",
        runtime_env={"env_vars": {KILL_ENV: str(kill_file)}, "worker_process_setup_hook": obey_kill_orders},
    )
    yield ray
    ray.shutdown()


def _assert_same_corpus(expected: Path, got: Path) -> None:
    """Every shard, sizes.json and README.md equal as bytes, no other file but the manifest,
    and manifest.json equal but its ``run`` section (and the git SHA: others commit while
    the tests run)."""
    assert {p.name for p in got.iterdir()} == NAMES | {"manifest.json"}
    for name in sorted(NAMES):
        assert (got / name).read_bytes() == (expected / name).read_bytes(), name
    a = json.loads((expected / "manifest.json").read_text(encoding="utf-8"))
    b = json.loads((got / "manifest.json").read_text(encoding="utf-8"))
    skip = ("run", "git_sha")
    assert {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip}


# --- local backend ------------------------------------------------------------------------


def test_counts_merged_shard_by_shard_equal_the_corpus_read_back(rich: Path) -> None:
    manifest = json.loads((rich / "manifest.json").read_text(encoding="utf-8"))
    asked = {kind: manifest["negatives"][kind] for kind in ("image", "caption", "retrieval")}
    assert manifest["counts"] == summarise(read_corpus(rich), asked)
    thresholds = manifest["counts"]["negatives"]["at_least_k_threshold"]
    assert thresholds == {"image": 0, "caption": 1, "retrieval": 1}
    assert manifest["counts"]["negatives"]["samples"] == N
    assert manifest["qa"]["counts"]["items"] > 0
    assert manifest["run"]["backend"] == "local"


def test_two_local_workers_with_negatives_write_the_same_corpus(recipe, rich: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = generate_corpus(recipe, tmp_path / "c", n=N, seed=1, workers=2, **RICH)
    assert manifest["run"]["workers"] == 2 and manifest["run"]["idle_worker_seconds"] >= 0
    _assert_same_corpus(rich, tmp_path / "c")


def test_a_shared_pool_is_pickled_once_and_unpickled_once_per_worker() -> None:
    """The finish jobs of a shard carry its pool as bytes pickled once; a worker unpickling a
    pool it has already seen gets the same object back, and keeps only the last two."""
    import pickle

    from geoforge.backends import local
    from geoforge.perturb import PoolEntry

    pools = [tuple(PoolEntry(f"s{k}-{i}", f"caption {i}", ()) for i in range(3)) for k in range(3)]
    shared = [local._SharedPool(p) for p in pools]
    local._POOLS.clear()
    first = pickle.loads(pickle.dumps(shared[0]))
    assert first == pools[0] and first is not pools[0]
    assert pickle.loads(pickle.dumps(shared[0])) is first  # a job of the same shard: no unpickling
    for s in shared[1:]:
        pickle.loads(pickle.dumps(s))
    assert list(local._POOLS) == [s.digest for s in shared[1:]]  # the oldest pool is dropped
    again = pickle.loads(pickle.dumps(shared[0]))
    assert again == pools[0] and again is not first
    local._POOLS.clear()


def _workers_of(pid: int) -> list[int]:
    """The forked pool workers of process ``pid``: its children running its command line."""
    me = Path(f"/proc/{pid}/cmdline").read_bytes()
    kids = " ".join(p.read_text() for p in Path(f"/proc/{pid}/task").glob("*/children")).split()
    return [int(k) for k in kids if _cmdline(int(k)) == me]


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def _running(pid: int) -> bool:
    """True while ``pid`` runs: it exists and is no zombie (dead, waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _assert_all_exit(workers: list[int], within: float) -> None:
    deadline = time.monotonic() + within
    while (alive := [w for w in workers if _running(w)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive == [], f"workers {alive} still run {within} s after their run was killed"


def _kill_leftovers(workers: list[int], cmdline: bytes | None) -> None:
    for w in workers:  # the test's own processes, only if they still run its command line
        if _running(w) and _cmdline(w) == cmdline:
            os.kill(w, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="finds the workers in /proc")
def test_workers_of_a_generate_run_killed_with_sigkill_exit_within_seconds(tmp_path: Path) -> None:
    args = ["generate", "corpora/smoke.toml", "--out", str(tmp_path / "c"), "--n", "5000", "--workers", "2"]
    run = subprocess.Popen(
        [sys.executable, "-m", "geoforge.cli", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    cmdline = None
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            with contextlib.suppress(OSError):
                cmdline, workers = _cmdline(run.pid), _workers_of(run.pid)
        assert len(workers) == 2, f"the run started no 2 workers (exit {run.poll()})"
        run.kill()
        run.wait(timeout=30)
        _assert_all_exit(workers, within=3)
    finally:
        run.kill()
        run.wait(timeout=30)
        _kill_leftovers(workers, cmdline)


#: A pool made (and forked) in a thread that then ends: its workers live on with the run (the
#: kernel's parent-death signal would kill them with the thread), work, and exit within a
#: poll once the run is killed.
POOL_IN_A_THREAD = """
import os, signal, sys, threading, time
from geoforge.backends.local import _pool
made = {}
def make():
    made["pool"] = pool = _pool(2)
    pool.submit(int).result()
thread = threading.Thread(target=make)
thread.start()
thread.join()
time.sleep(0.3)
pool = made["pool"]
assert list(pool.map(abs, [-1, -2, -3])) == [1, 2, 3]
print(" ".join(map(str, pool._processes)), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="finds the workers in /proc")
def test_a_pool_forked_in_a_thread_outlives_the_thread_and_exits_with_its_run(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", POOL_IN_A_THREAD]
    out = tmp_path / "pids"
    with out.open("w") as fh:
        run = subprocess.run(argv, cwd=ROOT, stdout=fh, timeout=120)
    workers = [int(w) for w in out.read_text().split()]
    try:
        assert run.returncode == -signal.SIGKILL and len(workers) == 2
        _assert_all_exit(workers, within=3)
    finally:
        _kill_leftovers(workers, b"".join(os.fsencode(a) + b"\0" for a in argv))


def test_fsspec_memory_url_holds_the_same_bytes(recipe, plain: Path) -> None:  # type: ignore[no-untyped-def]
    fsspec = pytest.importorskip("fsspec")
    url = "memory://geoforge-test/corpus"
    generate_corpus(recipe, url, n=N, seed=1, workers=2)
    fs = fsspec.filesystem("memory")
    try:
        got = {p.rsplit("/", 1)[-1]: fs.cat(p) for p in fs.ls(url, detail=False)}
        assert set(got) == NAMES | {"manifest.json"}
        for name in sorted(NAMES):
            assert got[name] == (plain / name).read_bytes(), name
        with pytest.raises(UsageError, match=r"^memory://geoforge-test/corpus is not empty: pass --resume"):
            generate_corpus(recipe, url, n=N, seed=1)
    finally:
        fs.rm(url, recursive=True)


def test_an_unknown_backend_and_an_address_without_ray_are_usage_errors(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=r"^--backend spark: expected one of local, ray$"):
        generate_corpus(recipe, tmp_path / "c", n=1, seed=1, backend="spark")
    with pytest.raises(UsageError, match=r"^--ray-address needs --backend ray$"):
        generate_corpus(recipe, tmp_path / "c", n=1, seed=1, ray_address="auto")
    assert not (tmp_path / "c").exists()


def test_ray_missing_is_one_line_naming_the_extra(
    recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(UsageError, match=r"^--backend ray needs Ray: pip install 'geoforge\[ray\]'$"):
        generate_corpus(recipe, tmp_path / "c", n=1, seed=1, backend="ray")


def test_corpus_retrieval_pool_draws_across_shards_the_same_for_any_workers(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("faiss")
    negatives = NegativeConfig(retrieval=2)
    one, two = tmp_path / "one", tmp_path / "two"
    generate_corpus(recipe, one, n=N, seed=1, negatives=negatives, retrieval_pool="corpus")
    manifest = generate_corpus(
        recipe, two, n=N, seed=1, workers=2, negatives=negatives, retrieval_pool="corpus"
    )
    assert manifest["retrieval_pool"] == "corpus" and (two / "retrieval").is_dir()
    for name in sorted(NAMES):
        assert (two / name).read_bytes() == (one / name).read_bytes(), name
    sources = [  # (shard of the positive, shard of the sample it was retrieved from)
        (int(r.key) // SHARD, int(re.match(r"retrieved from (\d{8})", n["change"])[1]) // SHARD)  # type: ignore[index]
        for r in read_corpus(one)
        for n in json.loads(r.meta["negatives"])["retrieval"]
    ]
    across = [pair for pair in sources if pair[0] != pair[1]]
    assert across, "no retrieval negative came from another shard"
    with pytest.raises(
        UsageError, match=r'^--resume: --retrieval-pool changed since .*\("corpus" there, "shard" now\)'
    ):
        generate_corpus(recipe, one, n=N, seed=1, negatives=negatives, resume=True)


def test_corpus_pool_takes_a_file_url_and_a_resume_keeps_its_index(
    recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    negatives = NegativeConfig(retrieval=1)
    out = tmp_path / "c"
    generate_corpus(recipe, out.as_uri(), n=4, seed=1, negatives=negatives, retrieval_pool="corpus")
    index = {p.name: p.read_bytes() for p in (out / "retrieval").iterdir()}
    assert "corpus.json" in index and json.loads(index["corpus.json"])["samples"] == 4
    shards = {p.name: p.read_bytes() for p in out.glob("shard-*.tar")}
    (out / "shard-000001.tar").unlink()  # an interrupted run: resume it without a new first pass

    def build_index(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index was built again")

    monkeypatch.setattr("geoforge.retrieval.build_index", build_index)
    generate_corpus(recipe, out, n=4, seed=1, negatives=negatives, retrieval_pool="corpus", resume=True)
    assert {p.name: p.read_bytes() for p in (out / "retrieval").iterdir()} == index
    assert {p.name: p.read_bytes() for p in out.glob("shard-*.tar")} == shards


def test_an_unreachable_ray_address_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "c"
    result = subprocess.run(
        [sys.executable, "-m", "geoforge.cli", "generate", str(ROOT / "corpora" / "smoke.toml"),
         "--out", str(out), "--n", "2", "--backend", "ray", "--ray-address", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "error: --ray-address 127.0.0.1:1: no Ray cluster answers there (Connection refused)"
    ]
    assert not out.exists()


def test_corpus_retrieval_pool_needs_retrieval_negatives_and_a_local_out(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=r"^--retrieval-pool corpus draws retrieval negatives"):
        generate_corpus(recipe, tmp_path / "c", n=2, seed=1, retrieval_pool="corpus")
    with pytest.raises(UsageError, match=r"^--retrieval-pool corpus: the index is a local directory"):
        pool = {"negatives": NegativeConfig(retrieval=1), "retrieval_pool": "corpus"}
        generate_corpus(recipe, "memory://x/c", n=2, seed=1, **pool)
    assert not (tmp_path / "c").exists()


# --- Ray backend --------------------------------------------------------------------------


def test_ray_writes_the_bytes_of_the_local_backend(recipe, rich: Path, ray_instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "c"
    seen: list[int] = []
    manifest = generate_corpus(
        recipe, out.as_uri(), n=N, seed=1, backend="ray", on_progress=seen.append, **RICH
    )
    assert manifest["run"]["backend"] == "ray" and manifest["run"]["workers"] == 2
    assert sum(seen) == N  # every sample counted once on the driver's bar
    _assert_same_corpus(rich, out)


def test_killed_ray_worker_leaves_no_partial_shard_and_the_run_completes(
    recipe, plain: Path, ray_instance, kill_file: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    out = kill_file.with_name("out")
    kill_file.write_text(str(DOOMED))
    generate_corpus(recipe, out, n=N, seed=1, backend="ray")
    taken = Path(f"{kill_file}.taken")
    assert not kill_file.exists() and taken.exists(), "no worker was killed"
    at_death = json.loads(taken.read_text())
    # Shard 1 (samples 3-5) was being written under a temporary name only.
    assert "shard-000001.tar" not in at_death
    assert any(re.fullmatch(r"\.shard-000001\.tar\.\w+\.tmp", name) for name in at_death), at_death
    _assert_same_corpus(plain, out)  # retried, complete, and the leftover removed


def test_resume_across_backends_gives_the_same_corpus(
    recipe, rich: Path, ray_instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    real = geoforge.generate.make_sample

    def interrupted(recipe, seed, index):  # type: ignore[no-untyped-def]
        if index == DOOMED:
            raise KeyboardInterrupt
        return real(recipe, seed, index)

    out = tmp_path / "c"
    monkeypatch.setattr(geoforge.generate, "make_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_corpus(recipe, out, n=N, seed=1, **RICH)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "shard-000000.tar"]
    # Begun locally, resumed on Ray.
    manifest = generate_corpus(recipe, out, n=N, seed=1, resume=True, backend="ray", **RICH)
    assert manifest["run"]["resumed_shards"] == ["shard-000000.tar"]
    assert manifest["run"]["samples_made"] == N - SHARD
    _assert_same_corpus(rich, out)
    # Made on Ray, cut short after two shards, resumed locally.
    for name in ("shard-000002.tar", "sizes.json", "README.md"):
        (out / name).unlink()
    manifest = generate_corpus(recipe, out, n=N, seed=1, resume=True, workers=2, **RICH)
    assert manifest["run"]["resumed_shards"] == ["shard-000000.tar", "shard-000001.tar"]
    _assert_same_corpus(rich, out)


def test_ray_refuses_a_memory_url_before_writing(recipe, ray_instance) -> None:  # type: ignore[no-untyped-def]
    fsspec = pytest.importorskip("fsspec")
    with pytest.raises(
        UsageError, match=r"^--out memory://geoforge-ray/c: a memory:// filesystem lives in one"
    ):
        generate_corpus(recipe, "memory://geoforge-ray/c", n=1, seed=1, backend="ray")
    assert not fsspec.filesystem("memory").exists("memory://geoforge-ray/c")
