"""``geoforge corpus verify``: a corpus written by ``generate`` passes; each kind of damage is
reported by name with exit 1; ``show`` reads a shard whose members are grouped by extension."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from geoforge.corpus import read_shard
from geoforge.corpus_check import verify_corpus
from geoforge.generate import generate_corpus
from geoforge.sampler import load_recipe

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5-sample corpus in shards of 2, 2 and 1."""
    text = (ROOT / "corpora" / "smoke.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^shard_size = .*$", "shard_size = 2", text)
    recipe_file = tmp_path_factory.mktemp("recipe") / "tiny.toml"
    recipe_file.write_text(text, encoding="utf-8")
    recipe = load_recipe(recipe_file)
    out = tmp_path_factory.mktemp("corpus") / "tiny"
    generate_corpus(recipe, out, n=5, seed=recipe.seed)
    return out


@pytest.fixture
def damaged(corpus: Path, tmp_path: Path) -> Path:
    """A copy of the corpus to damage."""
    return Path(shutil.copytree(corpus, tmp_path / "copy"))


def _rewrite(shard: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _members(shard: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(shard) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


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


def test_a_generated_corpus_verifies(corpus: Path) -> None:
    report = verify_corpus(corpus)
    assert report.problems == []
    assert (report.shards, report.samples, report.negatives) == (3, 5, 0)
    result = _cli("corpus", "verify", str(corpus))
    assert result.returncode == 0
    assert result.stdout.strip().endswith("ok, 5 samples in 3 shards, 0 image negatives")


def test_members_grouped_by_extension_are_reported_and_show_still_reads_them(
    damaged: Path, tmp_path: Path
) -> None:
    shard = damaged / "shard-000000.tar"
    members = _members(shard)
    _rewrite(shard, sorted(members, key=lambda m: m[0].partition(".")[2]))
    assert [r.key for r in read_shard(shard)] == ["00000000", "00000001"]
    assert {ext for r in read_shard(shard) for ext in r.files} == {"json", "png", "txt"}
    assert verify_corpus(damaged).problems == [
        "shard-000000.tar: members of sample 00000000 are not adjacent (00000000.png is member 3)",
        "shard-000000.tar: members of sample 00000001 are not adjacent (00000001.png is member 4)",
        "shard-000000.tar: members of sample 00000000 are not adjacent (00000000.txt is member 5)",
        "shard-000000.tar: members of sample 00000001 are not adjacent (00000001.txt is member 6)",
    ]
    sheet = tmp_path / "sheet.png"
    shown = _cli("show", str(damaged), "-o", str(sheet), "--n", "4")
    assert shown.returncode == 0, shown.stderr
    assert sheet.read_bytes().startswith(b"\x89PNG")
    result = _cli("corpus", "verify", str(damaged))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == f"{damaged}: 4 problem(s)"


def test_a_missing_member_and_an_unreadable_json_are_reported(damaged: Path) -> None:
    shard = damaged / "shard-000001.tar"
    members = [
        (n, b"{not json" if n == "00000003.json" else d) for n, d in _members(shard) if n != "00000002.txt"
    ]
    _rewrite(shard, members)
    problems = verify_corpus(damaged).problems
    assert problems[0] == "shard-000001.tar: sample 00000002 lacks 00000002.txt"
    assert problems[1].startswith("shard-000001.tar: 00000003.json does not parse: ")
    assert problems[2] == "1 sample(s) have other members than the 4 with json, png, txt"


def test_a_named_image_negative_without_its_file_is_reported(damaged: Path) -> None:
    shard = damaged / "shard-000002.tar"
    members = _members(shard)
    name, data = next((n, d) for n, d in members if n.endswith(".json"))
    meta = json.loads(data)
    meta["negatives"] = json.dumps({"image": [{"tile": 0}], "caption": [], "retrieval": []})
    _rewrite(shard, [(n, json.dumps(meta).encode() if n == name else d) for n, d in members])
    assert verify_corpus(damaged).problems == [
        "shard-000002.tar: sample 00000004 names 1 image negative(s) but has no 00000004.negatives.png"
    ]


def test_sizes_manifest_and_temporary_files_are_checked(damaged: Path) -> None:
    sizes = json.loads((damaged / "sizes.json").read_text())
    sizes["shard-000001.tar"] = 3
    sizes["shard-000009.tar"] = 2
    (damaged / "sizes.json").write_text(json.dumps(sizes))
    manifest = json.loads((damaged / "manifest.json").read_text())
    manifest["samples"] = 6
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    (damaged / ".shard-000003.tar.tmp").write_bytes(b"half")
    assert verify_corpus(damaged).problems == [
        "temporary file left from an interrupted write: .shard-000003.tar.tmp",
        "sizes.json says shard-000001.tar holds 3 samples; it holds 2",
        "sizes.json names shard-000009.tar, which is not in the corpus",
        "manifest.json says samples 6; the corpus has 5",
    ]


def test_index_files_of_the_wrong_json_type_and_a_changed_shard_size_are_reported(damaged: Path) -> None:
    manifest = json.loads((damaged / "manifest.json").read_text())
    size = manifest["shard_bytes"]["shard-000000.tar"]
    manifest["shard_bytes"]["shard-000000.tar"] = 1
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    assert verify_corpus(damaged).problems == [
        f"manifest.json says shard-000000.tar has 1 bytes; it has {size}"
    ]
    (damaged / "manifest.json").write_text("[]")
    (damaged / "sizes.json").write_text("[]")
    assert verify_corpus(damaged).problems == [
        "sizes.json is a JSON list, not an object of shard sizes",
        "manifest.json is a JSON list, not an object",
    ]
    (damaged / "manifest.json").write_text("null")  # was taken for a missing manifest, and passed
    assert verify_corpus(damaged).problems[-1] == "manifest.json is a JSON null, not an object"


def test_an_incomplete_corpus_is_said_to_be_incomplete_not_counted_against_none(damaged: Path) -> None:
    manifest = json.loads((damaged / "manifest.json").read_text())
    manifest.update(complete=False, shards=None, samples=None)  # a run stopped before its end
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    assert verify_corpus(damaged).problems == [
        "manifest.json says the corpus is incomplete (its run stopped): "
        "run the same generate command with --resume to finish it"
    ]


def _cut_at_member(shard: Path, index: int) -> int:
    """The offset of member ``index``'s header in ``shard``."""
    with tarfile.open(shard) as tar:
        return tar.getmembers()[index].offset


def _damage(shard: Path, how: str) -> None:
    data = shard.read_bytes()
    if how == "garbage":
        shard.write_bytes(bytes(range(256)) * 8)
    elif how == "cut in a member":
        shard.write_bytes(data[: _cut_at_member(shard, 1) - 100])
    elif how == "cut between members":
        shard.write_bytes(data[: _cut_at_member(shard, 4)])
    else:  # a header overwritten
        at = _cut_at_member(shard, 4)
        shard.write_bytes(data[:at] + b"x" * 512 + data[at + 512 :])


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("garbage", "not a tar archive"),
        ("cut in a member", "unexpected end of data"),
        ("cut between members", "truncated after member 4 (no end-of-archive blocks)"),
        ("a header overwritten", "the header after member 4 is not a tar header"),
    ],
)
def test_a_damaged_shard_is_one_line_naming_it_and_why_not_missing_from_the_corpus(
    damaged: Path, how: str, reason: str
) -> None:
    _damage(damaged / "shard-000001.tar", how)
    assert verify_corpus(damaged).problems == [f"shard-000001.tar is damaged: {reason}"]
    result = _cli("corpus", "verify", str(damaged))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"problem: shard-000001.tar is damaged: {reason}",
        f"{damaged}: 1 problem(s)",
    ]


@pytest.mark.parametrize("how", ["a directory", "no read permission"])
def test_a_shard_that_cannot_be_opened_is_reported_with_the_system_reason(damaged: Path, how: str) -> None:
    shard = damaged / "shard-000002.tar"
    if how == "a directory":
        shard.unlink()
        shard.mkdir()
        reason = "Is a directory"
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads a file whatever its mode")
        shard.chmod(0)
        reason = "Permission denied"
    try:
        report = verify_corpus(damaged)
        result = _cli("corpus", "verify", str(damaged))
    finally:
        shard.chmod(0o755)
    assert report.problems == [f"shard-000002.tar cannot be read: {reason}"]
    assert (report.shards, report.samples) == (2, 4)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"problem: shard-000002.tar cannot be read: {reason}"


def test_show_of_a_shard_that_is_no_tar_is_one_error_line(damaged: Path, tmp_path: Path) -> None:
    shard = damaged / "shard-000000.tar"
    _damage(shard, "garbage")
    result = _cli("show", str(damaged), "-o", str(tmp_path / "sheet.png"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {shard}: cannot read shard: not a tar archive"]


def test_verifying_a_path_that_is_no_directory_is_bad_usage_not_a_broken_corpus(tmp_path: Path) -> None:
    result = _cli("corpus", "verify", str(tmp_path / "nope"))
    assert result.returncode == 2  # 1 is "problems found"
    assert result.stderr.strip() == f"error: {tmp_path / 'nope'} is not a directory"
