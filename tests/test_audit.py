"""The independent audit of a corpus (``scripts/audit_negatives.py``): it reads captions from
their text and judges them on the drawn points. A fresh corpus passes it; planted defects,
written into a copy of a generated shard, do not."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geoforge.corpus import NEGATIVES, Record, pack_negatives, unpack_negatives
from geoforge.generate import generate_corpus
from geoforge.negatives import NegativeConfig
from geoforge.program import parse_program
from geoforge.realise import realise
from geoforge.render import layout
from geoforge.render.draw import paint
from geoforge.sampler.recipe import recipe_from_dict

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "audit_negatives.py"


def _load_audit():
    spec = importlib.util.spec_from_file_location("audit_negatives", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_negatives"] = module
    spec.loader.exec_module(module)
    return module


audit_negatives = _load_audit()
claims = sys.modules["audit_claims"]  # loaded by the audit script
figures = sys.modules["audit.figures"]

RECIPE = {
    "corpus": {"name": "audit", "samples": 6, "seed": 3, "image_size": 448, "shard_size": 16},
    "families": {"triangle": 2, "quadrilateral": 1, "circle": 1, "parallel": 1, "composite": 1},
    "difficulty": {"min_clauses": 4, "max_clauses": 8, "givens": 0.6},
    "captions": {"styles": ["descriptive", "facts", "question"]},
}
Files = dict[str, bytes]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit") / "corpus"
    generate_corpus(recipe_from_dict(RECIPE), out, n=6, seed=3, negatives=NegativeConfig(4, 4, 2))
    return out


# --------------------------------------------------------------------------- planting defects


def _copy(src: Path, dst: Path, change: Callable[[str, Files], Files | None]) -> None:
    """Copy ``src``'s shards to ``dst``; ``change(key, files)`` may return new members for a
    sample (``None`` keeps them)."""
    dst.mkdir()
    for shard in sorted(src.glob("shard-*.tar")):
        samples: dict[str, Files] = {}
        with tarfile.open(shard) as tin:
            for member in tin:
                key, _, ext = member.name.partition(".")
                samples.setdefault(key, {})[ext] = tin.extractfile(member).read()
        with tarfile.open(dst / shard.name, "w") as tout:
            for key, files in samples.items():
                files = change(key, dict(files)) or files
                for ext, data in files.items():
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tout.addfile(info, io.BytesIO(data))


def _first(corpus: Path, kind: str) -> str:
    """The key of the first sample with a negative of ``kind``."""
    for key, files in audit_negatives.read_records(corpus):
        if json.loads(json.loads(files["json"])["negatives"])[kind]:
            return key
    raise AssertionError(f"no {kind} negative in the corpus")


def _edit_meta(files: Files, edit: Callable[[dict, dict], None]) -> Files:
    meta = json.loads(files["json"])
    negatives = json.loads(meta["negatives"])
    edit(meta, negatives)
    meta["negatives"] = json.dumps(negatives, ensure_ascii=False)
    return {**files, "json": json.dumps(meta, ensure_ascii=False).encode()}


def _draw(program: str, reference: dict | None = None, view=None):
    """Realise and render as geoforge stores figures: a positive with seed 0; a negative with
    the positive's points as reference, in the positive's framing."""
    prog = parse_program(program)
    if reference is None:
        scene = realise(prog, seed=0)
        plan = layout(scene, 448)
    else:
        scene = realise(prog, seed=0, max_tries=3, reference=reference)
        plan = layout(scene, 448, view=view)
    return scene, plan, paint(plan, "png")


def _pinned(points: dict[str, tuple[float, float]]) -> str:
    return "; ".join(f"{n}@{float(x)!r}_{float(y)!r} = free {n}" for n, (x, y) in points.items())


def _hand_made(
    files: Files, program: str, text: str, image: list[str] = (), caption: list[str] = ()
) -> Files:
    """A sample's members replaced by a figure, caption and negatives made by hand."""
    scene, plan, png = _draw(program)
    meta = json.loads(files["json"])
    meta.update(
        program=program,
        realise_seed=0,
        points=[
            {"name": n, "x": round(float(p[0]), 12), "y": round(float(p[1]), 12)}
            for n, p in scene.points.items()
        ],
        caption={**meta["caption"], "text": text},
    )
    out = {"png": png, "txt": text.encode()}
    record: dict[str, list] = {"image": [], "caption": [], "retrieval": []}
    tiles = [_draw(neg, scene.points, plan.view)[2] for neg in image]
    out[NEGATIVES] = pack_negatives(tiles, 4, 448)
    record["image"] = [{"tile": i, "plugin": "planted", "program": neg} for i, neg in enumerate(image)]
    record["caption"] = [{"plugin": "planted", "text": t} for t in caption]
    meta["negatives"] = json.dumps(record, ensure_ascii=False)
    return {"json": json.dumps(meta, ensure_ascii=False).encode(), **out}


def _hits(report, key: str, kind: str, index: int) -> set[str]:
    return {f["reason"] for f in report.failures if (f["key"], f["kind"], f["index"]) == (key, kind, index)}


#: A right angle at P, the midpoint of AB, printing AB = 4.
RIGHT = {"A": (0.0, 0.0), "B": (4.0, 0.0), "C": (2.0, 3.0), "P": (2.0, 0.0)}
RIGHT_DRAW = "draw polygon A B C; draw segment C P; mark right A P C"
RIGHT_TEXT = "AB = 4; P midpoint of AB; CP ⊥ AB."


# --------------------------------------------------------------------------- a fresh corpus


def test_fresh_corpus_passes(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = audit_negatives.audit(corpus)
    assert report.positive_failures == []
    assert report.failures == []
    for kind in audit_negatives.KINDS:
        assert report.kinds[kind].checked > 0, kind
    assert report.statements > 0
    assert audit_negatives.main([str(corpus), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["kinds"]["image"]["checked"] == report.kinds["image"].checked
    assert set(out["shares"]) == {"image", "question_kept", "how_false"}
    assert audit_negatives.main([str(corpus)]) == 0
    assert "ok" in capsys.readouterr().out.splitlines()[-1]


def test_every_style_reads_and_holds(corpus: Path) -> None:
    """The audit's own reader reads every caption style of every positive, and every
    statement holds on the re-realised figure."""
    read = 0
    for _, files in audit_negatives.read_records(corpus):
        meta = json.loads(files["json"])
        program, scene = figures.realise_figure(meta["program"], meta["realise_seed"])
        fig = figures.figure_of(scene, program)
        for caption in meta["captions"].values():
            reading = claims.read_caption(caption["text"])
            assert len(reading.statements) == len(caption["claims"])
            for said, j in claims.judge_all(reading.statements, fig):
                assert j.holds, (said, j.why)
            read += 1
    assert read == 18


def test_limit_and_workers(corpus: Path) -> None:
    report = audit_negatives.audit(corpus, limit=3)
    assert all(report.kinds[k].checked == 3 for k in audit_negatives.KINDS)
    one = audit_negatives.audit(corpus).to_json()
    two = audit_negatives.audit(corpus, workers=2).to_json()
    for out in (one, two):
        del out["seconds"], out["workers"]
    assert one == two


def test_usage_errors(tmp_path: Path) -> None:
    assert audit_negatives.main([str(tmp_path)]) == 2
    assert audit_negatives.main([]) == 2
    assert audit_negatives.main([str(tmp_path), "--workers", "0"]) == 2


def test_a_truncated_shard_is_one_line_naming_it(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(corpus, damaged)
    shard = sorted(damaged.glob("shard-*.tar"))[-1]
    with shard.open("r+b") as fh:
        fh.truncate(shard.stat().st_size // 2)
    capsys.readouterr()
    assert audit_negatives.main([str(damaged)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {shard}: cannot be read (") and err.count("\n") == 1, err
    assert "Traceback" not in err and "check it with `geoforge corpus verify`" in err


def test_independent_of_the_verifier(corpus: Path) -> None:
    """The audit never imports geoforge's caption, verifier, negatives or plugins."""
    bad = ("geoforge.caption", "geoforge.verify", "geoforge.negatives", "geoforge.plugins")
    bad += ("geoforge_perturb",)
    code = (
        "import runpy, sys, json\n"
        f"main = runpy.run_path({str(SCRIPT)!r}, run_name='audit_script')['main']\n"
        f"rc = main([{str(corpus)!r}, '--limit', '2', '--json'])\n"
        f"print(json.dumps([m for m in sys.modules if m.startswith({bad!r})]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.splitlines()[-1]) == []


# --------------------------------------------------------------------------- planted defects


def test_caption_negative_with_the_positive_text(corpus: Path, tmp_path: Path) -> None:
    key = _first(corpus, "caption")

    def plant(k: str, files: Files) -> Files | None:
        if k != key:
            return None
        text = files["txt"].decode()
        return _edit_meta(files, lambda m, n: n["caption"][0].update(text=text.replace(" ", "  ", 1) + " "))

    _copy(corpus, tmp_path / "bad", plant)
    report = audit_negatives.audit(tmp_path / "bad")
    assert _hits(report, key, "caption", 0) == {audit_negatives.SAME_TEXT, audit_negatives.NOT_FALSE}
    assert audit_negatives.main([str(tmp_path / "bad")]) == 1


def test_image_negative_that_is_a_similar_copy(corpus: Path, tmp_path: Path) -> None:
    """Rotated by 25°, scaled by 1.3 and moved, printing no length: the positive up to
    similarity, though its program and picture differ."""
    turn = np.array([[math.cos(0.436), -math.sin(0.436)], [math.sin(0.436), math.cos(0.436)]])
    moved = {n: tuple(1.3 * turn @ np.array(p) + (0.5, -0.2)) for n, p in RIGHT.items()}
    key = _first(corpus, "image")

    def plant(k: str, files: Files) -> Files | None:
        if k != key:
            return None
        positive = f"{_pinned(RIGHT)}; {RIGHT_DRAW}; given length A B 4"
        return _hand_made(files, positive, RIGHT_TEXT, image=[f"{_pinned(moved)}; {RIGHT_DRAW}"])

    _copy(corpus, tmp_path / "bad", plant)
    report = audit_negatives.audit(tmp_path / "bad")
    assert [f for f in report.positive_failures if f["key"] == key] == []
    assert _hits(report, key, "image", 0) == {audit_negatives.SIMILAR}


def test_image_negative_that_repeats_an_earlier_one(corpus: Path, tmp_path: Path) -> None:
    """Tile 1 and its record replaced by tile 0's: each holds against the positive, but the two
    show the model the same figure."""
    key = _first(corpus, "image")

    def plant(k: str, files: Files) -> Files | None:
        if k != key:
            return None
        tiles = [_png(t) for t in unpack_negatives(files[NEGATIVES], 2)]
        strip = pack_negatives([tiles[0], tiles[0]], 4, 448)
        out = _edit_meta(files, lambda meta, neg: neg["image"].__setitem__(1, {**neg["image"][0], "tile": 1}))
        return {**out, NEGATIVES: strip}

    _copy(corpus, tmp_path / "bad", plant)
    report = audit_negatives.audit(tmp_path / "bad")
    assert _hits(report, key, "image", 0) == set()
    assert _hits(report, key, "image", 1) == {audit_negatives.LOOKALIKE}


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_point_one_percent_off_its_line(corpus: Path, tmp_path: Path) -> None:
    """P moved off AB by 1% of the figure size (5 units): under the 3% incidence margin."""
    key = _first(corpus, "image")
    nudged = {**RIGHT, "P": (2.0, 0.05)}

    def plant(k: str, files: Files) -> Files | None:
        if k != key:
            return None
        positive = f"{_pinned(RIGHT)}; {RIGHT_DRAW}; given length A B 4"
        return _hand_made(
            files, positive, RIGHT_TEXT, image=[f"{_pinned(nudged)}; {RIGHT_DRAW}; given length A B 4"]
        )

    _copy(corpus, tmp_path / "bad", plant)
    report = audit_negatives.audit(tmp_path / "bad")
    assert audit_negatives.NOT_FALSE in _hits(report, key, "image", 0)


def test_dropped_true_mark_is_reported(corpus: Path, tmp_path: Path) -> None:
    """B moved to (5, 0): P is no longer the midpoint (a true negative), but the right angle
    at P still holds and its mark is gone."""
    key = _first(corpus, "image")
    moved = {**RIGHT, "B": (5.0, 0.0)}

    def plant(k: str, files: Files) -> Files | None:
        if k != key:
            return None
        positive = f"{_pinned(RIGHT)}; {RIGHT_DRAW}"
        return _hand_made(
            files,
            positive,
            "P midpoint of AB; CP ⊥ AB.",
            image=[f"{_pinned(moved)}; draw polygon A B C; draw segment C P"],
        )

    _copy(corpus, tmp_path / "bad", plant)
    report = audit_negatives.audit(tmp_path / "bad")
    assert _hits(report, key, "image", 0) == set()
    found = [s for s in report.shortcuts if (s["key"], s["kind"], s["index"]) == (key, "image", 0)]
    marks = [s["detail"] for s in found if s["shortcut"] == "dropped true mark"]
    assert marks == ["mark right A P C"]
    assert report.to_json()["shares"]["image"]["dropped_true_mark"] > 0
    assert report.ok, [sorted(f.items()) for f in report.failures]  # a shortcut is counted, not failed


def test_external_bisector_in_a_positive_caption(corpus: Path, tmp_path: Path) -> None:
    """AD is the external bisector at A: "∠BAD = ∠DAC" holds for directed angles only."""
    a, b, c = np.array([0.0, 0.0]), np.array([4.0, 0.0]), np.array([1.0, 3.0])
    ub, uc = (b - a) / np.linalg.norm(b - a), (c - a) / np.linalg.norm(c - a)
    w = ub - uc  # external bisector direction; meet it with line BC
    t = np.linalg.solve(np.column_stack([w, b - c]), b - a)[0]
    points = {"A": a, "B": b, "C": c, "D": a + t * w}
    key = _first(corpus, "caption")

    def plant(k: str, files: Files) -> Files | None:
        if k != key:
            return None
        program = f"{_pinned(points)}; draw polygon A B C; draw segment A D; draw segment C D"
        return _hand_made(files, program, "∠BAD = ∠DAC, D ∈ BC.", caption=["∠ABD = ∠DBC, D ∈ AC."])

    _copy(corpus, tmp_path / "bad", plant)
    report = audit_negatives.audit(tmp_path / "bad")
    bad = [f for f in report.positive_failures if f["key"] == key]
    assert [f["reason"] for f in bad] == ["statement does not hold"] and "∠BAD" in bad[0]["detail"]
    assert _hits(report, key, "caption", 0) == set()  # B's bisector is not on AC: clearly false
    assert audit_negatives.main([str(tmp_path / "bad")]) == 1


def test_rerendered_png_that_does_not_match(corpus: Path, tmp_path: Path) -> None:
    key = _first(corpus, "image")

    def spoil(png: bytes) -> bytes:
        grey = np.array(Image.open(io.BytesIO(png)).convert("L"))
        grey[:12, :12] = 255 - grey[:12, :12]
        out = io.BytesIO()
        Image.fromarray(grey).save(out, format="PNG")
        return out.getvalue()

    def plant(k: str, files: Files) -> Files | None:
        if k != key:
            return None
        tiles = []
        for tile in Record(k, files).image_negatives():
            png = io.BytesIO()
            tile.save(png, format="PNG")
            tiles.append(png.getvalue())
        tiles[0] = spoil(tiles[0])
        return {**files, "png": spoil(files["png"]), NEGATIVES: pack_negatives(tiles, 4, 448)}

    _copy(corpus, tmp_path / "bad", plant)
    report = audit_negatives.audit(tmp_path / "bad")
    assert audit_negatives.RERENDER in _hits(report, key, "image", 0)
    assert [f["reason"] for f in report.positive_failures] == [audit_negatives.RERENDER]


# --------------------------------------------------------------------------- reader and judge


def _fig(circles=(), unit=None, **pts: tuple[float, float]):
    return claims.Figure({k: np.array(v, dtype=float) for k, v in pts.items()}, list(circles), unit)


def _says(text: str, fig) -> tuple[bool, bool, str]:
    j = claims.judge(claims.read_statement(text), fig)
    return j.false, j.holds, j.how


def test_plain_angles() -> None:
    # triangle ABC; D on BC on the internal bisector of A, E on line BC on the external one
    a, b, c = np.array([0.0, 0.0]), np.array([4.0, 0.0]), np.array([1.0, 3.0])
    ub, uc = b / 4, c / np.linalg.norm(c)
    d = np.linalg.solve(np.column_stack([ub + uc, b - c]), b)[0] * (ub + uc)
    e = np.linalg.solve(np.column_stack([ub - uc, b - c]), b)[0] * (ub - uc)
    f = _fig(A=a, B=b, C=c, D=d, E=e)
    assert _says("∠BAD = ∠DAC, D ∈ BC", f)[:2] == (False, True)
    assert _says("∠BAE = ∠EAC, E ∈ BC", f) == (True, False, "geometry")
    assert _says("AE bisects ∠BAC and meets BC at E", f)[0]
    # incentre and an excentre (on A's internal bisector, B's and C's external ones)
    la, lb, lc = np.linalg.norm(b - c), np.linalg.norm(c - a), np.linalg.norm(a - b)
    incentre = (la * a + lb * b + lc * c) / (la + lb + lc)
    excentre = (-la * a + lb * b + lc * c) / (-la + lb + lc)
    g = _fig(A=a, B=b, C=c, I=incentre, J=excentre)
    assert _says("I incentre of △ABC", g)[:2] == (False, True)
    assert _says("J incentre of △ABC", g)[0]
    assert _says("The angle BAC measures 72°", g)[0] is False  # 71.57°
    assert _says("∠BAC = 80°", g) == (True, False, "value")


def test_margins_and_how_false() -> None:
    f = _fig(A=(0, 0), B=(10, 0), C=(0, 10), P=(5, 0.2), Q=(5, 0.5))  # size 14.14
    assert _says("P ∈ AB", f)[:2] == (False, False)  # 1.4% of the figure off
    assert _says("Q lies on AB", f)[0]  # 3.5%
    assert _says("X ∈ AB", f) == (True, False, "absent point")
    assert _says("A on ⊙B", f) == (True, False, "undrawn circle")
    g = _fig([(np.array([0.0, 0.0]), 5.0)], A=(0, 0), B=(5, 0), C=(3, 4), D=(0, 5.3))
    assert _says("C is a point on circle A", g)[:2] == (False, True)
    assert _says("D on ⊙A", g)[0] and not _says("D on ⊙A", _fig(A=(0, 0), B=(9, 0), D=(0, 5.3)))[1]
    # a polygon named out of order is not the polygon
    q = _fig(A=(1, 0), B=(0, 1), C=(-1, 0), D=(0, -1))
    assert _says("ABCD cyclic", q)[:2] == (False, True)
    assert _says("DBCA cyclic", q)[0]
    assert _says("trapezoid BACD, BA ∥ CD", q)[0]


def test_lengths_need_a_printed_scale() -> None:
    f = _fig(A=(0, 0), B=(12, 0), C=(0, 4))
    s = [claims.read_statement("AB = 10"), claims.read_statement("AC = 4")]
    assert not claims.judge(s[0], f).judged
    judged = claims.judge_all(s, f)  # no printed length: only the ratio 10 : 4 vs 3 : 1 shows
    assert [j.false for _, j in judged] == [False, False, True] and judged[2][1].how == "value"
    printed = _fig(unit=1.0, A=(0, 0), B=(12, 0), C=(0, 4))
    assert [j.false for _, j in claims.judge_all(s, printed)] == [True, False]


def test_reader() -> None:
    r = claims.read_caption("As shown in the figure, AB = 3√2; ∠ABC = 45°. Find the length of BC.")
    assert (r.style, r.question, r.asks) == ("question", "Find the length of BC.", ("B", "C"))
    assert [(s.kind, s.value) for s in r.statements] == [("length", "3√2"), ("angle", "45")]
    r = claims.read_caption("In the figure, the length of AB is √3/2. Line PT touches circle O at T.")
    assert [s.kind for s in r.statements] == ["length", "tangent"] and r.statements[1]["O"] == "O"
    assert claims.read_caption("A1B1 ∥ C'D; M midpoint of A1B1.").statements[0].points == (
        "A1",
        "B1",
        "C'",
        "D",
    )
    for bad in (
        "AB is nice.",
        "In the figure, AB ∥ CD",
        "P lies on AB; Q.",
        "triangle ABC is isosceles with AB = BC.",
    ):
        with pytest.raises(claims.ReadError):
            claims.read_caption(bad)
    assert [claims.value_of(v) for v in ("3", "75/2", "3√2", "√3/2", "2√3/3")] == pytest.approx(
        [3, 37.5, 3 * 2**0.5, 3**0.5 / 2, 2 * 3**0.5 / 3]
    )


def test_similarity_gap() -> None:
    pos = {"A": np.array([0.0, 0.0]), "B": np.array([4.0, 0.0]), "C": np.array([1.0, 3.0])}
    mirrored = {n: np.array([-2 * p[0] + 7, 2 * p[1] - 1]) for n, p in pos.items()}  # reflected, scaled
    assert figures.similarity_gap(pos, mirrored) < 1e-12
    moved = {**pos, "C": np.array([1.3, 3.0])}
    assert 0.01 < figures.similarity_gap(pos, moved) < 0.06
