"""The MMCLIP trainer's pieces and outputs: the loss without negatives is open_clip's
``ClipLoss`` on a real batch, the train transform never crops, evaluation, run outputs, flag
names that never prefix torchrun's, and the false negatives that truncation and shared
captions make (with ``geoforge.tokens``, the report of long captions that ``generate`` gives).
The shared corpus and runs are in tests/trainer_support.py."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import re
import subprocess
import sys
import tarfile
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
    normalise_caption,
    text_id,
)
from geoforge_train.evaluate import Loaded, evaluate, load  # noqa: E402
from geoforge_train.logs import RunLog  # noqa: E402
from geoforge_train.loss import HardNegativeClipLoss  # noqa: E402
from geoforge_train.models import create_model  # noqa: E402
from geoforge_train.train import (  # noqa: E402
    TrainConfig,
    _negatives,
    cosine_lambda,
    encode,
    train,
)
from open_clip.tokenizer import SimpleTokenizer  # noqa: E402
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
    _recipe,
    _records,
    _weights,
)

import geoforge.backends.tally  # noqa: E402
from geoforge import tokens  # noqa: E402
from geoforge.cli import app  # noqa: E402
from geoforge.corpus import read_corpus  # noqa: E402
from geoforge.generate import generate_corpus  # noqa: E402
from geoforge.negatives import NegativeConfig  # noqa: E402

# The session corpus and runs (fixtures), shared with the other trainer test module.
pytest_plugins = ["trainer_support"]
#: The preprocessing of ``Transform(32)``: 32 px, OpenAI's statistics.
OPENAI_32 = {"size": [32, 32], "mean": MEAN, "std": STD}


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
    result = evaluate(Loaded("fake", model, tokenizer, 32, OPENAI_32), str(corpus), CPU, batch_size=8)
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
        assert {
            "loss",
            "lr",
            "logit_scale",
            "samples_per_s",
            "caption_duplicates",
            "same_token_negatives",
        } <= r.keys()
        closes_epoch = r["step"] % 3 == 0
        assert ("epoch_caption_duplicates" in r) == ("epoch_same_token_negatives" in r) == closes_epoch
        assert math.isfinite(r["loss"]) and r["loss"] > 0
        # the rate the step used (it used to log the next step's: 0.0 on the last row)
        assert r["lr"] == pytest.approx(LR * factor(r["step"] - 1), rel=1e-9)
    assert rows[-1]["lr"] > 0
    with Image.open(single_run / "loss.png") as image:
        assert image.format == "PNG" and image.size == (600, 350)
    ckpts = single_run / "checkpoints"
    assert {p.name for p in ckpts.iterdir()} == {"step-000003.pt", "step-000006.pt", "latest.pt", "final.pt"}
    state = torch.load(ckpts / "step-000003.pt", weights_only=True)  # no pickled code
    assert state["step"] == 3 and state["model_name"] == "geoforge-tiny"
    assert state["history"] == [r["loss"] for r in rows[:3]]
    assert math.exp(float(state["model"]["logit_scale"])) == pytest.approx(rows[2]["logit_scale"], rel=1e-6)
    params = sum(len(g["params"]) for g in state["optimizer"]["param_groups"])
    assert len(state["optimizer"]["state"]) == params > 0
    assert all(int(s["step"]) == 3 for s in state["optimizer"]["state"].values())
    assert state["scheduler"]["last_epoch"] == 3
    assert set(state["rng"]) == {"torch", "numpy", "python"}
    assert state["config"]["batch_size"] == 8 and state["config"]["text_negatives"] == ["caption"]
    latest = torch.load(ckpts / "latest.pt", weights_only=True)
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


# --- 9. false negatives: shared captions and truncation --------------------------------------

#: 81 BPE tokens; with " Find AB." or " Find AC." after it the two captions differ only at
#: token 83 (start token included), past open_clip's usual context of 77 but within 96.
PREFIX = "In the figure, ABCD is a square. " + " ".join(f"P{i} lies on segment AB." for i in range(1, 11))
#: 105 tokens: two such captions differ only at token 107, past the tiny model's 96.
LONG_PREFIX = "In the figure, ABCD is a square. " + " ".join(
    f"P{i} lies on segment AB." for i in range(1, 14)
)


def test_the_test_captions_differ_only_past_the_context() -> None:
    encode = SimpleTokenizer().encode
    for prefix, first in ((PREFIX, 83), (LONG_PREFIX, 107)):
        a, b = encode(prefix + " Find AB."), encode(prefix + " Find AC.")
        differ = [i + 1 for i, (x, y) in enumerate(zip(a, b)) if x != y]  # +1: the start token
        assert differ == [first], differ


def _hand_corpus(root: Path, samples: list[tuple[str, list[tuple[str, str]]]]) -> Path:
    """A one-shard corpus: sample i is a plain 32-px image of its own colour, caption
    ``samples[i][0]`` and rule caption negatives ``samples[i][1]`` as (text, plugin)."""
    root.mkdir(parents=True)
    with tarfile.open(root / "shard-000000.tar", "w") as tar:
        for i, (caption, negatives) in enumerate(samples):
            key = f"{i:08d}"
            record = {
                "caption": [{"text": t, "plugin": p} for t, p in negatives],
                "retrieval": [],
                "image": [],
            }
            png = io.BytesIO()
            Image.new("RGB", (32, 32), (60 * i, 255 - 60 * i, 0)).save(png, format="PNG")
            meta = json.dumps({"key": key, "negatives": json.dumps(record)}).encode()
            for ext, data in (("json", meta), ("png", png.getvalue()), ("txt", caption.encode())):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return root


def _truncation_corpus(root: Path) -> Path:
    """Sample 0: a caption negative that differs from the positive only past token 77
    (plugin ``cut``) and one that differs at once (``head``); sample 1: one of the latter."""
    return _hand_corpus(
        root,
        [
            (
                PREFIX + " Find AB.",
                [(PREFIX + " Find AC.", "cut"), ("In the figure, ABCE is a square. Find AB.", "head")],
            ),
            ("Circle O passes through A, B and C.", [("Circle O passes through A, B and D.", "head")]),
        ],
    )


def test_a_caption_negative_that_truncation_makes_its_positive_is_masked_and_counted(tmp_path: Path) -> None:
    index = CorpusIndex.build(_truncation_corpus(tmp_path / "corpus"))
    use = NegativeUse(("caption",), 3, 0)
    dataset = HardNegativeDataset(index, SimpleTokenizer(context_length=77), Transform(32), use)
    item = dataset[0]
    assert bool((item["neg_text"][0] == item["text"]).all())  # type: ignore[index]
    assert item["neg_text_mask"].tolist() == [False, True, False]  # type: ignore[union-attr]
    assert item["neg_text_same_tokens"] == 1
    # The same captions at a context of 96 tokens differ, and both negatives count.
    wide = HardNegativeDataset(index, SimpleTokenizer(context_length=96), Transform(32), use)
    assert wide[0]["neg_text_mask"].tolist() == [True, True, False]  # type: ignore[union-attr]
    assert wide[0]["neg_text_same_tokens"] == 0
    batch = collate([item, dataset[1]])
    assert batch["neg_text_same_tokens"].tolist() == [1, 0]  # type: ignore[union-attr]


def test_evaluation_leaves_out_negatives_that_truncation_makes_the_positive(tmp_path: Path) -> None:
    """Sample 0's first negative is masked: the scores of the others keep their own kinds (they
    used to be zipped with the kinds of every negative read, so the ``head`` score of sample 0
    was filed under ``cut``)."""
    corpus = _truncation_corpus(tmp_path / "corpus")
    tokenizer = SimpleTokenizer(context_length=77)
    dataset = HardNegativeDataset(
        CorpusIndex.build(corpus), tokenizer, Transform(32), NegativeUse(("caption", "retrieval"), 64, 64)
    )
    fake = Loaded("fake", _OneHot(dataset, False), tokenizer, 32, OPENAI_32)
    result = evaluate(fake, str(corpus), CPU, batch_size=2)
    kinds = result["image_to_caption"]["kinds"]
    # one "head" negative per sample: a random model wins half the time
    assert kinds == {"head": {"accuracy": 1.0, "pairwise": 1.0, "chance": 0.5, "samples": 2}}


def test_captions_equal_after_normalisation_have_one_text_id() -> None:
    same = ["Find AB.", "find ab", "  FIND\tAB .", "Find  AB..", "find ab. "]
    assert {normalise_caption(t) for t in same} == {"find ab"}
    assert len({text_id(t) for t in same}) == 1
    assert normalise_caption("AB = 3.5.") == "ab = 3.5"
    assert len({text_id(t) for t in ("Find AB.", "Find AC.", "Find AB. Find AC.")}) == 3
    assert all(0 <= text_id(t) < 2**63 for t in same)


def _rewrite_shard(shard: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Rewrite the tar ``shard`` with ``edit(samples)`` applied to its samples, a dict key →
    {extension: bytes}; members keep their order."""
    with tarfile.open(shard) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]  # type: ignore[union-attr]
    samples: dict[str, dict[str, bytes]] = {}
    for name, data in members:
        key, _, ext = name.partition(".")
        samples.setdefault(key, {})[ext] = data
    edit(samples)
    with tarfile.open(shard, "w") as tar:
        for name, _ in members:
            key, _, ext = name.partition(".")
            data = samples[key][ext]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_train_masks_and_logs_shared_captions_and_truncated_negatives(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy of the session corpus in which samples 1 and 2 have sample 0's caption, up to case,
    spacing and a final period, and sample 5 has a caption negative that the tiny model's
    96-token context makes its positive. One batch of all 24 samples per epoch: 3 of 24
    samples share a caption and 1 negative is masked, at every step and in every epoch."""
    data = tmp_path / "corpus"
    data.mkdir()
    for f in corpus.iterdir():
        (data / f.name).write_bytes(f.read_bytes())

    def edit(samples: dict[str, dict[str, bytes]]) -> None:
        first = samples["00000000"]["txt"].decode()
        samples["00000001"]["txt"] = (" " + first.upper() + ".").encode()
        samples["00000002"]["txt"] = first.replace(" ", "  ").encode()
        samples["00000005"]["txt"] = (LONG_PREFIX + " Find AB.").encode()
        meta = json.loads(samples["00000005"]["json"])
        record = json.loads(meta["negatives"])
        record["caption"].insert(0, {**record["caption"][0], "text": LONG_PREFIX + " Find AC."})
        meta["negatives"] = json.dumps(record)
        samples["00000005"]["json"] = json.dumps(meta).encode()

    _rewrite_shard(data / "shard-000000.tar", edit)
    out = tmp_path / "run"
    config = TrainConfig(
        data=str(data), out=str(out), epochs=2, batch_size=24, warmup=1, text_negatives=("caption",), k_text=2
    )
    capsys.readouterr()
    assert train(config)["steps"] == 2
    rows = _log(out)
    assert [r["caption_duplicates"] for r in rows] == [3 / 24, 3 / 24]
    assert [r["same_token_negatives"] for r in rows] == [1, 1]
    assert [r["epoch_caption_duplicates"] for r in rows] == [3 / 24, 3 / 24]
    assert [r["epoch_same_token_negatives"] for r in rows] == [1, 1]
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == 2
    for epoch, line in enumerate(lines):
        assert line.startswith(f"epoch {epoch}: 12.5% of samples") and "; 1 caption negatives" in line


def test_run_log_averages_each_epoch_and_counts_kept_rows_on_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(start: int, steps: list[tuple[int, int, float, int, bool]]) -> None:
        log = RunLog(tmp_path, enabled=True, total=4, start=start)
        for step, epoch, duplicates, same, end in steps:
            log.step(step, epoch, 1.0, 0.1, 10.0, 5.0, duplicates=duplicates, same_tokens=same, epoch_end=end)
        log.close([1.0])

    run(0, [(0, 0, 0.25, 1, False), (1, 0, 0.5, 2, True), (2, 1, 0.0, 0, False)])
    first = _log(tmp_path)
    assert "epoch_caption_duplicates" not in first[0] and "epoch_caption_duplicates" not in first[2]
    assert first[1]["epoch_caption_duplicates"] == 0.375 and first[1]["epoch_same_token_negatives"] == 3
    assert "epoch 0: 37.5% of samples" in capsys.readouterr().err
    # Resumed after step 1: its row is kept and still counts towards epoch 0.
    run(1, [(1, 0, 0.5, 2, True), (2, 1, 0.125, 4, False), (3, 1, 0.375, 0, True)])
    rows = _log(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[1]["epoch_caption_duplicates"] == 0.375 and rows[1]["epoch_same_token_negatives"] == 3
    assert rows[3]["epoch_caption_duplicates"] == 0.25 and rows[3]["epoch_same_token_negatives"] == 4
    err = capsys.readouterr().err
    assert "epoch 0: 37.5% of samples" in err and "epoch 1: 25.0% of samples" in err


# --- 10. long captions in generate's report (geoforge.tokens) --------------------------------


def _captions(corpus: Path) -> list[tuple[str, list[str]]]:
    """Each sample's caption and its caption negatives (rule edits, then retrieval)."""
    out = []
    for r in read_corpus(corpus):
        record = json.loads(str(r.meta.get("negatives") or "{}"))
        out.append(
            (
                r.files["txt"].decode(),
                [n["text"] for k in ("caption", "retrieval") for n in record.get(k, [])],
            )
        )
    return out


def test_long_captions_counts_captions_past_77_tokens_and_negatives_cut_to_their_positive() -> None:
    samples = [
        (PREFIX + " Find AB.", [PREFIX + " Find AC.", "Find AB.", PREFIX + " Find AB, AC and AD."]),
        ("Find AC.", []),
    ]
    result = tokens.long_captions(samples)
    assert result == tokens.LongCaptions(captions=5, longer=3, same_as_positive=2, exact=True)
    assert result.warning() == (
        "3 of 5 captions (positives and text negatives) are longer than 77 tokens, which open_clip "
        "text towers truncate; 2 text negatives become identical to their positive (training masks them)"
    )
    assert tokens.long_captions(samples, context=96).same_as_positive == 0
    assert tokens.long_captions([("Find AB.", ["Find AC."])]).warning() is None


def test_without_open_clip_long_captions_gives_a_lower_bound_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "open_clip.tokenizer", None)  # the import fails
    result = tokens.long_captions([(PREFIX + " Find AB.", [PREFIX + " Find AC.", "Find AB."])])
    assert not result.exact and result.same_as_positive is None
    assert result.captions == 3 and result.longer == 2
    assert result.warning().startswith("at least 2 of 3 captions")  # type: ignore[union-attr]
    assert "estimated without open_clip" in result.warning()  # type: ignore[operator]
    assert result.to_json()["exact"] is False


def test_the_lower_bound_never_exceeds_the_bpe_count(corpus: Path) -> None:
    texts = [t for positive, negatives in _captions(corpus) for t in (positive, *negatives)]
    texts += [
        "it's AB's",
        "x_1._y",
        "&amp;lt; 3 &lt; 4",
        "AB=3.5cm²",
        "∠ABC = 40°, AB ⊥ CD",
        "Ⅻ ½ 1/2",
        "",
        "  ",
    ]
    encode = SimpleTokenizer().encode
    counts = [(tokens.lower_bound(t), len(encode(t))) for t in texts]
    assert all(low <= true for low, true in counts), [(t, c) for t, c in zip(texts, counts) if c[0] > c[1]]
    assert sum(low for low, _ in counts) >= 0.7 * sum(true for _, true in counts)  # and it is close


def test_generate_reports_long_captions_in_the_manifest_and_its_warning_line(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    encode = SimpleTokenizer().encode
    samples = _captions(corpus)
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["long_captions"] == {
        "context": 77,
        "captions": sum(1 + len(negatives) for _, negatives in samples),
        "longer": sum(len(encode(t)) > 75 for p, negatives in samples for t in (p, *negatives)),
        "same_as_positive": sum(
            encode(n)[:75] == encode(p)[:75] for p, negatives in samples for n in negatives
        ),
        "exact": True,
    }
    # A context of 12 tokens makes long captions of a small corpus: one warning line on stderr.
    monkeypatch.setattr(
        geoforge.backends.tally, "long_captions", functools.partial(tokens.long_captions, context=12)
    )
    capsys.readouterr()
    out = tmp_path / "small"
    small = generate_corpus(_recipe(), out, n=3, seed=0, negatives=NegativeConfig(caption=2))
    err = capsys.readouterr().err.splitlines()
    captions = _captions(out)
    longer = sum(len(encode(t)) > 10 for p, negatives in captions for t in (p, *negatives))
    assert longer > 0 and small["long_captions"]["longer"] == longer
    total = sum(1 + len(n) for _, n in captions)
    assert err == []  # the library prints nothing; the CLI prints the manifest's warning
    assert tokens.LongCaptions(**small["long_captions"]).warning() == (
        f"{longer} of {total} captions (positives and text negatives) "
        "are longer than 12 tokens, which open_clip text towers truncate; "
        f"{small['long_captions']['same_as_positive']} text negatives become identical to their positive "
        "(training masks them)"
    )
