"""The MMCLIP trainer's pieces and outputs: the loss without negatives is open_clip's
``ClipLoss`` on a real batch, the train transform never crops, evaluation, run outputs, and
flag names that never prefix torchrun's. The shared corpus and runs are in
tests/trainer_support.py."""

from __future__ import annotations

import hashlib
import io
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

import numpy as np  # noqa: E402
import typer.main  # noqa: E402
from geoforge_train.data import (  # noqa: E402
    MEAN,
    STD,
    CorpusIndex,
    HardNegativeDataset,
    NegativeUse,
    Transform,
    collate,
)
from geoforge_train.evaluate import Loaded, evaluate, load  # noqa: E402
from geoforge_train.loss import HardNegativeClipLoss  # noqa: E402
from geoforge_train.models import create_model  # noqa: E402
from geoforge_train.train import (  # noqa: E402
    _negatives,
    cosine_lambda,
    encode,
)
from PIL import Image, ImageDraw  # noqa: E402
from torch import nn  # noqa: E402
from trainer_support import (  # noqa: E402
    CPU,
    LR,
    STEPS,
    TORCHRUN,
    WARMUP,
    N,
    _dataset,
    _log,
    _max_diff,
    _ok,
    _records,
    _weights,
)

from geoforge.cli import app  # noqa: E402

# The session corpus and runs (fixtures), shared with the other trainer test module.
pytest_plugins = ["trainer_support"]


# --- 5. no negatives: open_clip's ClipLoss ---------------------------------------------------


def test_mmclip_loss_without_negatives_is_open_clip_cliploss_on_a_real_batch(corpus: Path) -> None:
    torch.manual_seed(0)
    model, _, size = create_model("geoforge-tiny", None, CPU)
    dataset = _dataset(corpus, NegativeUse(), size)
    batch = collate([dataset[i] for i in range(6)])
    f = encode(model, batch, CPU)
    assert f.neg_text is None and f.neg_image is None
    ours = HardNegativeClipLoss("mmclip")(f.image, f.text, f.scale, _negatives(batch, f, CPU), f.bias)
    ref = open_clip.ClipLoss()(f.image, f.text, f.scale)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-6)
    params = [p for p in model.parameters() if p.requires_grad]
    g_ours = torch.autograd.grad(ours, params, retain_graph=True, allow_unused=True)
    g_ref = torch.autograd.grad(ref, params, allow_unused=True)
    for a, b in zip(g_ours, g_ref):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


# --- 6. the train transform never crops ------------------------------------------------------

W, H, MARK = 240, 180, 24


def _marked_png() -> bytes:
    """White 240×180 with a black 24-px square in each corner and one in the centre."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    for x, y in (
        (0, 0),
        (W - MARK, 0),
        (0, H - MARK),
        (W - MARK, H - MARK),
        ((W - MARK) // 2, (H - MARK) // 2),
    ):
        draw.rectangle([x, y, x + MARK - 1, y + MARK - 1], fill="black")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _mark_ratios(x: torch.Tensor) -> list[float]:
    """Dark pixels of each corner quadrant (outside the central box of 30 % of the side)
    over those of the centre mark. Any uniform scaling or rotation keeps each ratio near 1;
    cutting part of a corner mark away lowers it."""
    grey = (x * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]).mean(0)
    dark = (grey < 0.5).numpy()
    s = dark.shape[0]
    v, u = np.mgrid[0:s, 0:s] - (s - 1) / 2
    central = (np.abs(u) < 0.15 * s) & (np.abs(v) < 0.15 * s)
    centre = dark[central].sum()
    assert centre > 0
    quadrants = [(u < 0) & (v < 0), (u > 0) & (v < 0), (u < 0) & (v > 0), (u > 0) & (v > 0)]
    return [float(dark[q & ~central].sum() / centre) for q in quadrants]


class _Extremes:
    """An rng whose ``uniform`` returns the given end of each range, in turn."""

    def __init__(self, *ends: str) -> None:
        self.ends = list(ends)

    def uniform(self, lo: float, hi: float) -> float:
        return lo if self.ends.pop(0) == "lo" else hi


def test_train_transform_keeps_every_corner_mark_whole() -> None:
    png = _marked_png()
    transform = Transform(96, train=True, rotate=10, downscale=0.8)
    rngs: list[object] = [np.random.default_rng(seed) for seed in range(40)]
    rngs += [_Extremes(a, b) for a in ("lo", "hi") for b in ("lo", "hi")]
    for rng in [None, *rngs]:
        ratios = _mark_ratios(transform(png, rng))  # type: ignore[arg-type]
        assert all(0.7 <= r <= 1.4 for r in ratios), ratios
    # the check would catch a crop: a 90 % centre crop leaves a quarter of each corner mark
    cropped = Image.open(io.BytesIO(png)).crop((12, 9, W - 12, H - 9))
    buf = io.BytesIO()
    cropped.save(buf, format="PNG")
    assert max(_mark_ratios(Transform(96)(buf.getvalue()))) < 0.5


# --- 7. evaluation ---------------------------------------------------------------------------


def _kinds(records: list[dict[str, object]]) -> tuple[dict[str, int], dict[str, int]]:
    """Samples with at least one caption (and retrieval) / image negative of each plugin."""
    text: dict[str, int] = {}
    image: dict[str, int] = {}
    for r in records:
        neg = r["negatives"]
        for store, found in (
            (text, {n["plugin"] for n in neg.get("caption", []) + neg.get("retrieval", [])}),  # type: ignore[union-attr]
            (image, {n["plugin"] for n in neg.get("image", [])}),  # type: ignore[union-attr]
        ):
            for kind in found:
                store[kind] = store.get(kind, 0) + 1
    return text, image


def test_evaluate_an_untrained_model_gives_rates_for_every_kind_present(corpus: Path) -> None:
    limit = 12
    result = evaluate(load("untrained:geoforge-tiny", CPU), str(corpus), CPU, batch_size=6, limit=limit)
    text, image = _kinds(_records(corpus)[:limit])
    assert text and image
    assert result["samples"] == limit
    for direction, expected in (("image_to_caption", text), ("caption_to_image", image)):
        kinds = result[direction]["kinds"]
        assert {k: v["samples"] for k, v in kinds.items()} == expected
        for v in kinds.values():
            assert 0.0 <= v["accuracy"] <= 1.0 and 0.0 <= v["pairwise"] <= 1.0
        overall = np.mean([v["accuracy"] for v in kinds.values()])
        assert result[direction]["overall"] == pytest.approx(overall)
    assert 0.0 <= result["r1_image_to_text"] <= 1.0 and 0.0 <= result["r1_text_to_image"] <= 1.0


class _OneHot(nn.Module):
    """A fake CLIP: sample i's image and caption both map to e_i, any other input (a negative)
    to a new one-hot, orthogonal to everything else; or, ``constant``, everything to one
    vector, so each negative ties with its positive."""

    def __init__(self, dataset: HardNegativeDataset, constant: bool) -> None:
        super().__init__()
        self.dim, self.constant, self.ids = 4096, constant, {}
        for i in range(len(dataset)):
            item = dataset[i]
            self.ids[self._key(item["image"])] = i  # type: ignore[arg-type]
            self.ids[self._key(item["text"])] = i  # type: ignore[arg-type]
        assert len(self.ids) == 2 * len(dataset), "positives must be distinct"
        self.fresh = len(dataset)

    @staticmethod
    def _key(x: torch.Tensor) -> bytes:
        return hashlib.sha1(x.contiguous().numpy().tobytes()).digest()

    def _encode(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        out = torch.zeros(len(x), self.dim)
        for row, sample in enumerate(x):
            if self.constant:
                out[row, 0] = 1
            elif (key := self._key(sample)) in self.ids:
                out[row, self.ids[key]] = 1
            else:
                out[row, self.fresh] = 1
                self.fresh += 1
        return out

    encode_image = encode_text = _encode


@pytest.mark.parametrize("constant", [False, True], ids=["perfect", "constant"])
def test_evaluate_scores_a_perfect_model_1_and_a_constant_one_0(corpus: Path, constant: bool) -> None:
    """Ties are not wins: a model that cannot tell a negative from its positive scores 0."""
    tokenizer = open_clip.get_tokenizer("geoforge-tiny")
    dataset = HardNegativeDataset(
        CorpusIndex.build(corpus), tokenizer, Transform(32), NegativeUse(("caption", "retrieval"), 64, 64)
    )
    model = _OneHot(dataset, constant)
    result = evaluate(Loaded("fake", model, tokenizer, 32), str(corpus), CPU, batch_size=8)
    want = 0.0 if constant else 1.0
    assert result["samples"] == N
    for direction in ("image_to_caption", "caption_to_image"):
        kinds = result[direction]["kinds"]
        assert kinds and all(v["accuracy"] == want and v["pairwise"] == want for v in kinds.values())
        assert result[direction]["overall"] == want
    r1 = 1 / N if constant else 1.0  # a constant model's argmax is always sample 0
    assert result["r1_image_to_text"] == result["r1_text_to_image"] == pytest.approx(r1)


# --- 8. run outputs and flag names -----------------------------------------------------------


def test_train_writes_a_row_per_step_a_loss_curve_and_resumable_checkpoints(single_run: Path) -> None:
    rows = _log(single_run)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert [r["epoch"] for r in rows] == [0, 0, 0, 1, 1, 1]
    factor = cosine_lambda(WARMUP, STEPS)
    for r in rows:
        assert {"loss", "lr", "logit_scale", "samples_per_s"} <= r.keys()
        assert math.isfinite(r["loss"]) and r["loss"] > 0
        # the rate the step used (it used to log the next step's: 0.0 on the last row)
        assert r["lr"] == pytest.approx(LR * factor(r["step"] - 1), rel=1e-9)
    assert rows[-1]["lr"] > 0
    with Image.open(single_run / "loss.png") as image:
        assert image.format == "PNG" and image.size == (600, 350)
    ckpts = single_run / "checkpoints"
    assert {p.name for p in ckpts.iterdir()} == {"step-000003.pt", "step-000006.pt", "latest.pt", "final.pt"}
    state = torch.load(ckpts / "step-000003.pt", weights_only=False)
    assert state["step"] == 3 and state["model_name"] == "geoforge-tiny"
    assert state["history"] == [r["loss"] for r in rows[:3]]
    assert math.exp(float(state["model"]["logit_scale"])) == pytest.approx(rows[2]["logit_scale"], rel=1e-6)
    params = sum(len(g["params"]) for g in state["optimizer"]["param_groups"])
    assert len(state["optimizer"]["state"]) == params > 0
    assert all(int(s["step"]) == 3 for s in state["optimizer"]["state"].values())
    assert state["scheduler"]["last_epoch"] == 3
    assert set(state["rng"]) == {"torch", "numpy", "python"}
    assert state["config"]["batch_size"] == 8 and state["config"]["text_negatives"] == ["caption"]
    latest = torch.load(ckpts / "latest.pt", weights_only=False)
    assert latest["step"] == STEPS and _max_diff(latest["model"], _weights(ckpts / "final.pt")) == 0


def _train_flags() -> set[str]:
    command = typer.main.get_command(app)
    mmclip = command.commands["train"].commands["mmclip"]  # type: ignore[attr-defined]
    return {o for p in mmclip.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


def test_no_train_flag_is_a_prefix_of_a_torchrun_flag_or_the_reverse() -> None:
    if not TORCHRUN.is_file():
        pytest.skip(f"no torchrun next to {sys.executable}")
    help_text = _ok(
        subprocess.run([str(TORCHRUN), "--help"], capture_output=True, text=True, timeout=120)
    ).stdout
    theirs = set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", help_text)) - {"--help"}
    ours = _train_flags() - {"--help"}
    assert {"--nproc-per-node", "--nproc_per_node", "--log-dir", "--logs-specs"} <= theirs
    assert {"--data", "--out", "--loss", "--lr", "--k-text"} <= ours
    assert not ours & {"--log", "--logs"}
    clashes = [(o, t) for o in ours for t in theirs if t.startswith(o) or o.startswith(t)]
    assert clashes == []
