"""The corpus on disk (DESIGN.md, "Corpus on disk"): byte-identical shards for any number of
workers, atomic shards under kills and full disks, resume, refusal to overwrite, loading with
webdataset and Hugging Face ``datasets``, self-checking per-sample JSON, and the
``generate``/``show`` commands."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from PIL import Image

import geoforge.generate
import geoforge.store
from geoforge.caption import Claim
from geoforge.corpus import MTIME, read_corpus, read_shard, shards_in
from geoforge.errors import UsageError
from geoforge.facts import parse_fact, residual
from geoforge.generate import REALISE_TRIES, generate_corpus
from geoforge.program import parse_program
from geoforge.realise import realise
from geoforge.sampler import load_recipe

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "corpora" / "smoke.toml"
#: Samples and shard size of the test corpus: shards of 7, 7 and 6 samples.
N, SHARD = 20, 7
SIZES = {"shard-000000.tar": 7, "shard-000001.tar": 7, "shard-000002.tar": 6}
CORPUS_FILES = {*SIZES, "sizes.json", "manifest.json", "README.md"}


def _smoke_text(**corpus: int) -> str:
    """smoke.toml with some ``[corpus]`` integers replaced."""
    text = SMOKE.read_text(encoding="utf-8")
    for key, value in corpus.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert count == 1, key
    return text


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "small.toml"
    path.write_text(_smoke_text(samples=N, shard_size=SHARD), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def recipe(recipe_file: Path):  # type: ignore[no-untyped-def]
    return load_recipe(recipe_file)


@pytest.fixture(scope="module")
def reference(recipe, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """An uninterrupted one-worker run of the test corpus."""
    out = tmp_path_factory.mktemp("reference") / "corpus"
    generate_corpus(recipe, out, n=N, seed=recipe.seed, workers=1)
    return out


def _assert_same_corpus(expected: Path, got: Path) -> None:
    """Every shard, sizes.json and README.md equal as bytes; manifest.json equal but ``run``."""
    names = {p.name for p in expected.iterdir()}
    assert names == CORPUS_FILES
    assert {p.name for p in got.iterdir()} >= names
    for name in sorted(names - {"manifest.json"}):
        assert (got / name).read_bytes() == (expected / name).read_bytes(), name
    a = json.loads((expected / "manifest.json").read_text(encoding="utf-8"))
    b = json.loads((got / "manifest.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in a.items() if k != "run"} == {k: v for k, v in b.items() if k != "run"}


def _assert_no_partial_shard(out: Path) -> list[str]:
    """Every file with a final shard name reads back with exactly the samples it should hold;
    the only other files are ``.tmp`` leftovers. Returns the final shard names."""
    finals = []
    for path in sorted(out.iterdir()):
        if re.fullmatch(r"shard-\d{6}\.tar", path.name):
            s = int(path.name[6:12])
            keys = [r.key for r in read_shard(path)]
            assert keys == [f"{i:08d}" for i in range(s * SHARD, min(N, (s + 1) * SHARD))], path.name
            for r in read_shard(path):
                assert set(r.files) == {"json", "png", "txt"}
                assert r.files["png"].startswith(b"\x89PNG")
            finals.append(path.name)
        else:  # the run's settings are written first, for --resume to compare; a killed
            # run leaves its lock file (unlocked, the next run takes it)
            assert path.name.endswith(".tmp") or path.name in ("manifest.json", ".geoforge.lock"), (
                f"unexpected leftover {path.name}"
            )
    return finals


# --- determinism --------------------------------------------------------------------------


def test_reference_corpus_has_expected_shards_and_counts(reference: Path, recipe) -> None:
    assert json.loads((reference / "sizes.json").read_text()) == SIZES
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["samples"] == N and manifest["shards"] == 3 and manifest["seed"] == 0
    assert manifest["config_hash"] == recipe.config_hash()
    assert manifest["recipe"] == recipe.to_json()
    counts = manifest["counts"]
    assert counts["samples"] == N
    assert sum(counts["families"].values()) == N
    assert sum(counts["styles"].values()) == N
    rejected = [d for r in read_corpus(reference) for d in r.meta["draws"][:-1]]
    assert sum(counts["rejections"].values()) == len(rejected)
    assert manifest["run"]["samples_made"] == N and manifest["run"]["resumed_shards"] == []
    card = (reference / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlicense: apache-2.0\n")
    assert "- n<1K" in card and f"{N} samples" in card


def test_shard_members_have_fixed_metadata_and_order(reference: Path) -> None:
    with tarfile.open(reference / "shard-000001.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        f"{i:08d}.{ext}" for i in range(7, 14) for ext in ("json", "png", "txt")
    ]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (MTIME, 0, 0, "", "", 0o644)


def test_two_workers_write_byte_identical_corpus(recipe, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "two"
    manifest = generate_corpus(recipe, out, n=N, seed=recipe.seed, workers=2)
    assert manifest["run"]["workers"] == 2
    _assert_same_corpus(reference, out)


def test_different_seed_gives_different_samples(recipe, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "seed1"
    generate_corpus(recipe, out, n=3, seed=1)
    a = [r.meta["canonical_hash"] for r in read_shard(reference / "shard-000000.tar")][:3]
    b = [r.meta["canonical_hash"] for r in read_shard(out / "shard-000000.tar")]
    assert a != b


# --- interruption, resume, full disk -------------------------------------------------------


def test_interrupt_mid_shard_leaves_only_complete_shards_and_resume_is_identical(
    recipe, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = geoforge.generate.make_sample

    def interrupted(recipe, seed, index):  # type: ignore[no-untyped-def]
        if index == 10:  # the middle of the second shard (samples 7-13)
            raise KeyboardInterrupt
        return real(recipe, seed, index)

    out = tmp_path / "corpus"
    monkeypatch.setattr(geoforge.generate, "make_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_corpus(recipe, out, n=N, seed=recipe.seed)
    assert _assert_no_partial_shard(out) == ["shard-000000.tar"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "shard-000000.tar"]
    assert json.loads((out / "manifest.json").read_text())["complete"] is False

    made: list[int] = []

    def counted(recipe, seed, index):  # type: ignore[no-untyped-def]
        made.append(index)
        return real(recipe, seed, index)

    monkeypatch.setattr(geoforge.generate, "make_sample", counted)
    manifest = generate_corpus(recipe, out, n=N, seed=recipe.seed, resume=True)
    # Sample 0 is remade to check that the kept shard belongs to this recipe and seed.
    assert made == [0, *range(7, N)]
    assert manifest["run"]["resumed_shards"] == ["shard-000000.tar"]
    assert manifest["run"]["samples_made"] == N - 7
    _assert_same_corpus(reference, out)


def test_killed_cli_run_keeps_whole_shards_and_resumes_to_identical_corpus(
    recipe_file: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "geoforge.cli", "generate", str(recipe_file), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 120
    while not (out / "shard-000000.tar").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    finals = _assert_no_partial_shard(out)
    assert "shard-000000.tar" in finals and "shard-000002.tar" not in finals

    result = _cli("generate", str(recipe_file), "--out", str(out), "--resume", "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert set(manifest["run"]["resumed_shards"]) == set(finals)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    _assert_same_corpus(reference, out)


class _FullDisk:
    """A binary file that accepts ``room`` bytes and then fails like a full disk."""

    def __init__(self, fh: io.BufferedWriter, room: int) -> None:
        self.fh, self.room, self.written = fh, room, 0

    def write(self, data: bytes) -> int:
        if self.written + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        return self.fh.write(data)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.fh, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()


def test_full_disk_mid_shard_leaves_no_partial_shard_and_no_tmp(
    recipe, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[_FullDisk] = []

    def full_open(path, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        fh = builtins.open(path, mode, *args, **kwargs)  # noqa: SIM115 - returned open, as open() does
        if Path(path).name.startswith(".shard-000001.tar."):
            opened.append(_FullDisk(fh, room=30_000))
            return opened[-1]
        return fh

    out = tmp_path / "full"
    monkeypatch.setattr(geoforge.store, "open", full_open, raising=False)
    with pytest.raises(OSError) as info:
        generate_corpus(recipe, out, n=N, seed=recipe.seed)
    assert info.value.errno == errno.ENOSPC
    assert opened and opened[0].written > 10_000, "the failure should come mid-shard"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "shard-000000.tar"]
    assert _assert_no_partial_shard(out) == ["shard-000000.tar"]

    monkeypatch.undo()
    generate_corpus(recipe, out, n=N, seed=recipe.seed, resume=True)
    _assert_same_corpus(reference, out)


# --- refusing to overwrite ----------------------------------------------------------------


def test_non_empty_output_is_refused_without_resume_or_overwrite(recipe, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match=r"is not empty: pass --resume .* or --overwrite"):
        generate_corpus(recipe, out, n=2, seed=0)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("flag", ["resume", "overwrite"])
def test_a_directory_that_holds_no_corpus_is_refused_even_with_resume_or_overwrite(
    recipe, tmp_path: Path, flag: str
) -> None:
    out = tmp_path / "project"
    out.mkdir()
    (out / "README.md").write_text("my notes")  # a name the corpus writes: it used to be replaced
    verb = {"resume": "resume", "overwrite": "replace"}[flag]
    with pytest.raises(UsageError, match=rf"is not empty and holds no corpus .* to {verb}: choose a new"):
        generate_corpus(recipe, out, n=2, seed=0, **{flag: True})
    assert [p.name for p in out.iterdir()] == ["README.md"]
    assert (out / "README.md").read_text() == "my notes"


def test_an_empty_output_path_is_refused() -> None:
    from geoforge.store import Store

    with pytest.raises(UsageError, match="output path is empty"):
        Store.at("  ")


def test_existing_corpus_is_refused_and_left_untouched(recipe, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    with pytest.raises(UsageError):
        generate_corpus(recipe, out, n=N, seed=0)
    _assert_same_corpus(reference, out)


def test_overwrite_deletes_only_corpus_files(recipe, tmp_path: Path) -> None:
    out = tmp_path / "old"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    for name in ("shard-000000.tar", "shard-000009.tar", "sizes.json", "manifest.json", "README.md"):
        (out / name).write_text("stale")
    (out / ".shard-000004.tar.tmp").write_text("stale")
    manifest = generate_corpus(recipe, out, n=3, seed=0, overwrite=True)
    assert manifest["samples"] == 3
    assert {p.name for p in out.iterdir()} == {
        "notes.txt",
        "shard-000000.tar",
        "sizes.json",
        "manifest.json",
        "README.md",
    }
    assert (out / "notes.txt").read_text() == "keep me"
    assert json.loads((out / "sizes.json").read_text()) == {"shard-000000.tar": 3}
    assert [r.key for r in read_corpus(out)] == ["00000000", "00000001", "00000002"]


def test_resume_refuses_shards_of_another_seed(recipe, reference: Path, tmp_path: Path) -> None:
    # Regression: resuming with another seed kept seed-0 shards under a seed-1 manifest.
    out = tmp_path / "seed0"
    generate_corpus(recipe, out, n=2, seed=0)
    before = (out / "shard-000000.tar").read_bytes()
    with pytest.raises(
        UsageError, match=r"--resume: --seed changed since the run being resumed \(0 there, 1 now\)"
    ):
        generate_corpus(recipe, out, n=2, seed=1, resume=True)
    assert (out / "shard-000000.tar").read_bytes() == before
    assert generate_corpus(recipe, out, n=2, seed=0, resume=True)["nothing_to_do"] is True


def test_resume_with_overwrite_is_refused(recipe, tmp_path: Path) -> None:
    out = tmp_path / "never"
    with pytest.raises(UsageError, match="exclude each other"):
        generate_corpus(recipe, out, n=2, seed=0, resume=True, overwrite=True)
    assert not out.exists()


# --- loading ------------------------------------------------------------------------------


def test_corpus_loads_with_webdataset(reference: Path) -> None:
    import webdataset as wds

    urls = [str(p) for p in shards_in(reference)]
    rows = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    sizes = json.loads((reference / "sizes.json").read_text())
    assert len(rows) == sum(sizes.values()) == N
    assert [r["__key__"] for r in rows] == [f"{i:08d}" for i in range(N)]
    for r in rows:
        assert r["png"].size == (448, 448)
        assert isinstance(r["txt"], str) and r["txt"]
        assert r["txt"] == r["json"]["caption"]["text"]
        assert r["json"]["key"] == r["__key__"]


def test_corpus_loads_with_hugging_face_datasets(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    ds = datasets.load_dataset(
        "webdataset",
        data_files={"train": [str(p) for p in shards_in(reference)]},
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    sizes = json.loads((reference / "sizes.json").read_text())
    assert ds.num_rows == sum(sizes.values()) == N
    records = list(read_corpus(reference))
    assert ds[3]["txt"] == records[3].files["txt"].decode()
    assert ds[3]["png"].size == (448, 448)
    # Every sample's JSON survives Arrow's schema inference whole (no field dropped or nulled).
    for row, record in zip(ds, records):
        assert row["__key__"] == record.key
        assert row["json"] == record.meta


def test_sample_json_has_one_arrow_schema_without_nulls(reference: Path) -> None:
    import pyarrow as pa

    def nulls(t: pa.DataType, path: str) -> list[str]:
        if pa.types.is_null(t):
            return [path]
        if pa.types.is_struct(t):
            return [n for f in t for n in nulls(f.type, f"{path}.{f.name}")]
        if pa.types.is_list(t):
            return nulls(t.value_type, f"{path}[]")
        return []

    schemas = {r.key: pa.Table.from_pylist([r.meta]).schema for r in read_corpus(reference)}
    first = next(iter(schemas.values()))
    assert not nulls(pa.struct(list(first)), "json")
    for key, schema in schemas.items():
        assert schema == first, key


# --- per-sample JSON ----------------------------------------------------------------------


def test_sample_json_rerealises_to_stored_points_and_its_facts_hold(reference: Path, recipe) -> None:
    for record in read_corpus(reference):
        meta = record.meta
        program = parse_program(meta["program"])
        assert program.canonical_hash() == meta["canonical_hash"]
        scene = realise(program, seed=meta["realise_seed"], max_tries=REALISE_TRIES)
        stored = {p["name"]: (p["x"], p["y"]) for p in meta["points"]}
        assert list(stored) == list(scene.points)
        for name, (x, y) in stored.items():
            assert abs(scene.points[name][0] - x) <= 1e-9 and abs(scene.points[name][1] - y) <= 1e-9
        assert meta["facts"]
        for text in meta["facts"]:
            assert residual(parse_fact(text), scene) <= 1e-6, (record.key, text)
        caption = meta["caption"]
        claims = [Claim(c[0], tuple(c[1:])) for c in caption["claims"]]
        if caption["answer"]:
            kind, *args = caption["answer"].split()
            claims.append(Claim(kind, tuple(args)))
        assert meta["facts"] == [f.text() for c in claims for f in c.facts()]
        assert meta["style"] in recipe.styles and caption == meta["captions"][meta["style"]]
        assert record.files["txt"].decode() == caption["text"]
        assert meta["givens"] == "; ".join(st.text() for st in program.statements if st.kind == "given")
        assert meta["draws"][-1] == "accepted" and "accepted" not in meta["draws"][:-1]


# --- the command line ---------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GEOFORGE_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "geoforge.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def _assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def cli_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("cli") / "smoke10"
    return out, _cli("generate", "corpora/smoke.toml", "--out", str(out), "--n", "10")


def test_cli_generate_writes_corpus_and_prints_summary(cli_corpus) -> None:
    out, result = cli_corpus
    assert result.returncode == 0, result.stderr
    assert "10 samples in 1 shard " in " ".join(result.stdout.split())  # the title may wrap
    assert json.loads((out / "sizes.json").read_text()) == {"shard-000000.tar": 10}


def test_cli_generate_json_prints_only_the_manifest(cli_corpus, tmp_path: Path) -> None:
    first, _ = cli_corpus
    out = tmp_path / "json"
    result = _cli("generate", "corpora/smoke.toml", "--out", str(out), "--n", "10", "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["samples"] == 10 and manifest["recipe"]["name"] == "smoke"
    assert (out / "shard-000000.tar").read_bytes() == (first / "shard-000000.tar").read_bytes()


def test_cli_refuses_existing_output_with_usage_exit_code(cli_corpus) -> None:
    out, _ = cli_corpus
    before = (out / "shard-000000.tar").read_bytes()
    result = _cli("generate", "corpora/smoke.toml", "--out", str(out), "--n", "10")
    _assert_one_line_error(result, 2, str(out), "--resume", "--overwrite")
    both = _cli("generate", "corpora/smoke.toml", "--out", str(out), "--resume", "--overwrite")
    _assert_one_line_error(both, 2, "--resume and --overwrite exclude each other")
    assert (out / "shard-000000.tar").read_bytes() == before


BAD_RECIPES = {
    "unknown_key": (("max_clauses = 9", "max_clause = 9"), "`difficulty.max_clause`: unknown key"),
    "wrong_type": (("samples = 48", 'samples = "ten"'), "`corpus.samples`: expected int, got str 'ten'"),
    "all_weights_zero": (
        ("triangle = 4\nquadrilateral = 3\ncircle = 3\nparallel = 1\ncomposite = 2", "triangle = 0"),
        "`families`: every weight is 0",
    ),
    "min_above_max": (
        ("min_clauses = 4", "min_clauses = 12"),
        "`difficulty.max_clauses`: must be ≥ min_clauses",
    ),
    "unknown_style": (('"question"]', '"haiku"]'), "`captions.styles`: unknown style 'haiku'"),
    "negative_seed": (
        ("seed = 0", "seed = -1"),
        "`corpus.seed`: must be ≥ 0 (numpy seeds are non-negative), got -1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_RECIPES))
def test_cli_bad_recipe_exits_2_with_one_line_naming_the_key(case: str, tmp_path: Path) -> None:
    (old, new), message = BAD_RECIPES[case]
    text = SMOKE.read_text(encoding="utf-8")
    assert old in text
    recipe = tmp_path / f"{case}.toml"
    recipe.write_text(text.replace(old, new), encoding="utf-8")
    out = tmp_path / "out"
    result = _cli("generate", str(recipe), "--out", str(out), "--n", "2")
    _assert_one_line_error(result, 2, str(recipe), message)
    assert not out.exists()


def test_cli_negative_seed_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _cli("generate", "corpora/smoke.toml", "--out", str(out), "--n", "2", "--seed", "-1")
    assert result.returncode == 2, result.stderr
    assert "Invalid value for '--seed': Input should be greater than or equal to 0" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    with pytest.raises(UsageError, match="seed must be ≥ 0 and n ≥ 1, got seed -1 and n 2"):
        generate_corpus(load_recipe(SMOKE), out, n=2, seed=-1)
    assert not out.exists()


def test_cli_show_writes_contact_sheet_png(cli_corpus, tmp_path: Path) -> None:
    out, _ = cli_corpus
    sheet = tmp_path / "sheet.png"
    result = _cli("show", str(out), "-o", str(sheet))
    assert result.returncode == 0, result.stderr
    assert "(10 samples)" in " ".join(result.stdout.split())
    image = Image.open(sheet)
    assert image.format == "PNG"
    assert image.width == 4 * (320 + 10) + 10  # four tiles of 320 px per row


def test_cli_show_of_a_missing_corpus_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = _cli("show", str(missing), "-o", str(tmp_path / "x.png"))
    _assert_one_line_error(result, 2, f"{missing}: no such corpus directory, shard or DIR/KEY")
    missing.mkdir()
    empty = _cli("show", str(missing), "-o", str(tmp_path / "x.png"))
    _assert_one_line_error(empty, 2, f"{missing}: holds no shard-NNNNNN.tar")


def test_cli_show_one_key_shows_one_sample(cli_corpus, tmp_path: Path) -> None:
    out, _ = cli_corpus
    sheet = tmp_path / "one.png"
    result = _cli("show", str(out / "00000003"), "-o", str(sheet))
    assert result.returncode == 0, result.stderr
    assert "(1 sample)" in " ".join(result.stdout.split())  # rich wraps at 80 columns
    assert Image.open(sheet).width == 320 + 2 * 10


def test_cli_show_missing_key_exits_1(cli_corpus, tmp_path: Path) -> None:
    out, _ = cli_corpus
    sheet = tmp_path / "none.png"
    result = _cli("show", str(out / "00000099"), "-o", str(sheet))
    _assert_one_line_error(result, 1, "no sample with key '00000099'")
    assert not sheet.exists()


def test_the_strip_of_negatives_holds_each_tile_pixel_for_pixel_from_pngs_or_pixels() -> None:
    """The strip is written by encode_png (it was Pillow's optimize=True, 110 ms a sample); the
    same tiles given as pixels need no decoding and give the same bytes."""
    import numpy as np

    from geoforge.corpus import EMPTY_TILE, CorpusError, pack_negatives, unpack_negatives
    from geoforge.render.draw import encode_png

    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 256, size=(32, 32), dtype=np.uint8) for _ in range(3)]
    strip = pack_negatives([encode_png(t) for t in tiles], 4, 32)
    assert strip == pack_negatives(tiles, 4, 32)
    back = unpack_negatives(strip, 4)
    for tile, image in zip(tiles, back[:3], strict=True):
        np.testing.assert_array_equal(np.asarray(image), tile)
    assert (np.asarray(back[3]) == EMPTY_TILE).all()  # an unfilled slot is white
    with pytest.raises(CorpusError, match=r"^image negative 1 is 16×32 px, not 32×32$"):
        pack_negatives([tiles[0], tiles[1][:, :16]], 4, 32)


def test_a_shard_cut_after_a_member_is_refused_not_read_as_a_shorter_one(tmp_path: Path) -> None:
    from geoforge.corpus import CorpusError

    shard = tmp_path / "shard-000000.tar"
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name in ("00000000.txt", "00000001.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"ab"))
    assert [r.key for r in read_shard(shard)] == ["00000000", "00000001"]
    with tarfile.open(shard) as tar:
        second = tar.getmembers()[1]
    shard.write_bytes(shard.read_bytes()[: second.offset])  # the second member and the end gone
    with pytest.raises(CorpusError, match=r"cannot read shard: truncated after member 1 \(no end-of-archive"):
        list(read_shard(shard))
