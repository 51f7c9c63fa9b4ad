"""The independent audit of stored hard negatives (``scripts/audit_negatives.py``): a fresh
corpus passes it, a planted false negative does not, and its own falsity tests and
canonical forms behave as the margins say."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from geoforge.generate import generate_corpus
from geoforge.negatives import NegativeConfig
from geoforge.sampler.recipe import recipe_from_dict

ROOT = Path(__file__).resolve().parents[1]


def _load_audit():
    spec = importlib.util.spec_from_file_location("audit_negatives", ROOT / "scripts" / "audit_negatives.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_negatives"] = module
    spec.loader.exec_module(module)
    return module


audit_negatives = _load_audit()
Figure = audit_negatives.Figure
judge = audit_negatives.judge
canonical = sys.modules["audit_claims"].canonical  # loaded by the audit script

RECIPE = {
    "corpus": {"name": "audit", "samples": 6, "seed": 3, "image_size": 448, "shard_size": 16},
    "families": {"triangle": 2, "quadrilateral": 1, "circle": 1, "parallel": 1, "composite": 1},
    "difficulty": {"min_clauses": 4, "max_clauses": 8, "givens": 0.6},
    "captions": {"styles": ["descriptive", "facts", "question"]},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit") / "corpus"
    generate_corpus(recipe_from_dict(RECIPE), out, n=6, seed=3, negatives=NegativeConfig(4, 4, 2))
    return out


def _rewrite(src: Path, dst: Path, change) -> str:
    """Copy ``src``'s shards to ``dst``, applying ``change(meta, negatives)`` to the first
    sample that has an image and a caption negative; returns that sample's key."""
    dst.mkdir()
    done = ""
    for shard in sorted(src.glob("shard-*.tar")):
        with tarfile.open(shard) as tin, tarfile.open(dst / shard.name, "w") as tout:
            for member in tin:
                data = tin.extractfile(member).read()
                if member.name.endswith(".json") and not done:
                    meta = json.loads(data)
                    negatives = json.loads(meta["negatives"])
                    if negatives["image"] and negatives["caption"]:
                        change(meta, negatives)
                        meta["negatives"] = json.dumps(negatives)
                        data = json.dumps(meta).encode()
                        done = meta["key"]
                member.size = len(data)
                tout.addfile(member, io.BytesIO(data))
    assert done
    return done


def test_fresh_corpus_passes(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = audit_negatives.audit(corpus, limit=1000)
    assert report.failures == []
    assert report.positive_failures == []
    for kind in audit_negatives.KINDS:
        assert report.kinds[kind].audited > 0, kind
    assert audit_negatives.main([str(corpus), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["kinds"]["image"]["passed"] == report.kinds["image"].audited


def test_limit_per_kind(corpus: Path) -> None:
    report = audit_negatives.audit(corpus, limit=3)
    assert all(report.kinds[k].audited == 3 for k in audit_negatives.KINDS)


def test_catches_image_negative_that_is_the_positive(corpus: Path, tmp_path: Path) -> None:
    def plant(meta: dict, negatives: dict) -> None:
        negatives["image"][0]["program"] = meta["program"]

    key = _rewrite(corpus, tmp_path / "bad", plant)
    report = audit_negatives.audit(tmp_path / "bad")
    hits = [f for f in report.failures if (f["key"], f["kind"], f["index"]) == (key, "image", 0)]
    assert hits and "every positive claim still holds" in hits[0]["reason"]
    assert audit_negatives.main([str(tmp_path / "bad")]) == 1


def test_catches_caption_negative_that_paraphrases_the_positive(corpus: Path, tmp_path: Path) -> None:
    def plant(meta: dict, negatives: dict) -> None:
        # the positive's claims, each written with its arguments in another equivalent order
        claims = [[c[0], c[1], c[3], c[2]] if c[0] == "midpoint" else c for c in meta["caption"]["claims"]]
        negatives["caption"][0]["claims"] = list(reversed(claims))
        negatives["caption"][0]["violated"] = []

    key = _rewrite(corpus, tmp_path / "bad", plant)
    report = audit_negatives.audit(tmp_path / "bad")
    hits = [f for f in report.failures if (f["key"], f["kind"], f["index"]) == (key, "caption", 0)]
    assert hits and "every claim holds on the positive" in hits[0]["reason"]
    assert "paraphrase of the positive" in hits[0]["reason"]


def test_catches_a_violation_that_is_not_one(corpus: Path, tmp_path: Path) -> None:
    def plant(meta: dict, negatives: dict) -> None:
        true_claim = meta["caption"]["claims"][0]
        negatives["caption"][0]["violated"].append([*true_claim, "9.9"])

    key = _rewrite(corpus, tmp_path / "bad", plant)
    report = audit_negatives.audit(tmp_path / "bad")
    hits = [f for f in report.failures if (f["key"], f["kind"], f["index"]) == (key, "caption", 0)]
    assert hits and "recorded as violated" in hits[0]["reason"]


def _fig(**pts: tuple[float, float]) -> Figure:
    return Figure({k: np.array(v, dtype=float) for k, v in pts.items()})


def test_margins() -> None:
    f = _fig(A=(0, 0), B=(10, 0), C=(0, 10), M=(5.2, 0.3), N=(6.5, 0), P=(5, 2))
    assert not judge(["right", "A", "B", "C"], f)[0]
    assert not judge(["isosceles", "A", "B", "C"], f)[0]
    assert judge(["equilateral", "A", "B", "C"], f)[0]
    assert not judge(["midpoint", "M", "A", "B"], f)[0]  # 7.7% apart, 3.6° off the line
    assert judge(["midpoint", "N", "A", "B"], f)[0]  # 6.5 vs 3.5
    assert judge(["midpoint", "P", "A", "B"], f)[0]  # 21.8° off the line
    assert judge(["midpoint", "X", "A", "B"], f)[0]  # missing point
    assert not judge(["angle", "B", "A", "C", "95"], f)[0]
    assert judge(["angle", "B", "A", "C", "98"], f)[0]
    assert not judge(["length", "A", "B", "11"], f)[0]
    assert judge(["length", "A", "B", "12"], f)[0]
    g = _fig(A=(0, 0), B=(4, 0), C=(5, 3), D=(1, 3), E=(3, 3))
    assert not judge(["parallelogram", "A", "B", "C", "D"], g)[0]
    assert judge(["parallelogram", "A", "C", "B", "D"], g)[0]  # self-intersecting order
    assert judge(["rectangle", "A", "B", "C", "D"], g)[0]
    assert not judge(["trapezoid", "A", "B", "E", "D"], g)[0]
    assert judge(["isosceles_trapezoid", "A", "B", "C", "D"], g)[0]  # a parallelogram is not one
    h = _fig(A=(0, 0), B=(10, 0), C=(10, 1), X=(10, 2), Y=(10, 0.45))
    assert judge(["bisector", "A", "X", "B", "C"], h)[0]  # AX outside ∠BAC: 8.5° off its bisector
    assert not judge(["bisector", "A", "Y", "B", "C"], h)[0]  # 0.3° off
    # 6.9° short of supplementary, but D is 13.9% of the radius off circle ABC (a length margin)
    k = _fig(A=(2.566, -0.19), B=(-2.49, 2.803), C=(-4.457, 0.906), D=(-0.315, -3.688))
    assert judge(["cyclic_quadrilateral", "A", "B", "C", "D"], k)[0]
    # a dart whose reflex corner is under the angle margin is not clearly "not a kite"
    dart = _fig(A=(0, 0), B=(4, 0.3), C=(10, 1.0), D=(4, -0.3))  # reflex turn 2.4° at B
    assert not judge(["kite", "A", "B", "C", "D"], dart)[0]


def test_canonical_forms() -> None:
    assert canonical(["parallelogram", "A", "B", "C", "D"]) == canonical(
        ["parallelogram", "C", "B", "A", "D"]
    )
    assert canonical(["square", "A", "B", "C", "D"]) == canonical(["square", "B", "C", "D", "A"])
    assert canonical(["trapezoid", "A", "B", "C", "D"]) == canonical(["trapezoid", "D", "C", "B", "A"])
    assert canonical(["trapezoid", "A", "B", "C", "D"]) != canonical(["trapezoid", "B", "C", "D", "A"])
    assert canonical(["equal", "A", "B", "C", "D"]) == canonical(["equal", "D", "C", "B", "A"])
    assert canonical(["perpendicular", "A", "B", "C", "D"]) == canonical(
        ["perpendicular", "C", "D", "B", "A"]
    )
    assert canonical(["midpoint", "M", "A", "B"]) != canonical(["midpoint", "A", "M", "B"])
    assert canonical(["length", "A", "B", "2*sqrt(3)"]) == canonical(["length", "B", "A", "sqrt(12)"])
    assert canonical(["angle", "A", "B", "C", "60"]) == canonical(["angle", "C", "B", "A", "60"])
