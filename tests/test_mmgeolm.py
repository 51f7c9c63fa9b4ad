"""MMGeoLM: the LLaVA model on the MMCLIP tower, its two training stages, evaluation, benchmark
adapters and `geoforge ask`, end to end on a CPU with a tiny MMCLIP, a tiny LM and a
tokenizer built in-process (nothing is downloaded)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from geoforge_train.mmgeolm import model as mm  # noqa: E402
from geoforge_train.mmgeolm.data import Collate, DataError, Example, qa_examples  # noqa: E402
from geoforge_train.mmgeolm.evaluate import extract, is_right, read_benchmark, score  # noqa: E402
from geoforge_train.mmgeolm.tiny import tiny_llm  # noqa: E402
from geoforge_train.mmgeolm.train import MMGeoLMConfig, train_mmgeolm  # noqa: E402
from geoforge_train.train import TrainConfig, train  # noqa: E402
from trainer_support import Ran, _one_line_error  # noqa: E402

from geoforge.corpus import read_corpus  # noqa: E402
from geoforge.errors import UsageError  # noqa: E402
from geoforge.generate import generate_corpus  # noqa: E402
from geoforge.negatives import NegativeConfig  # noqa: E402
from geoforge.qa import QAConfig  # noqa: E402
from geoforge.sampler.recipe import recipe_from_dict  # noqa: E402

pytest_plugins = ["trainer_support"]  # the in-process `cli` fixture

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "mmgeolm"
RECIPE = {
    "corpus": {"name": "mmgeolm", "image_size": 224, "shard_size": 16},
    "families": {"triangle": 3, "quadrilateral": 2, "circle": 2, "parallel": 1},
    "difficulty": {"min_clauses": 3, "max_clauses": 7, "givens": 0.7},
}


def _one_line_error_with(result: Ran, code: int, *needles: str) -> None:
    line = _one_line_error(result, code)
    for needle in needles:
        assert needle in line, (needle, line)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """MMCLIP tiny → align → sft on one Q&A corpus with image negatives (a few steps each)."""
    root = tmp_path_factory.mktemp("mmgeolm")
    corpus = root / "qa"
    generate_corpus(
        recipe_from_dict(RECIPE), corpus, n=12, seed=3, negatives=NegativeConfig(image=2), qa=QAConfig()
    )
    clip = root / "clip"
    train(TrainConfig(data=str(corpus), out=str(clip), max_steps=2, batch_size=6, warmup=1))
    texts = []
    for record in read_corpus(corpus):
        texts.append(record.files["txt"].decode())
        texts += [i["prompt"] + " " + i["response"] for i in json.loads(record.meta["qa"])["items"]]
    llm = tiny_llm(root / "llm", texts, arch="qwen2", hidden=48)
    common = {"data": str(corpus), "batch_size": 4, "device": "cpu", "max_length": 384, "seed": 0}
    align = root / "align"
    train_mmgeolm(
        MMGeoLMConfig(stage="align", out=str(align), tower=str(clip), llm=str(llm), max_steps=2, **common)
    )
    sft = root / "sft"
    train_mmgeolm(
        MMGeoLMConfig(
            stage="sft", out=str(sft), init=str(align), max_steps=2, save_every=1, flips=True, **common
        )
    )
    return {"corpus": corpus, "clip": clip, "llm": llm, "align": align, "sft": sft, "root": root}


def _weights(bundle: mm.MMGeoLM, part: str) -> dict[str, torch.Tensor]:
    module = {
        "tower": bundle.model.model.vision_tower,
        "projector": bundle.model.model.multi_modal_projector,
        "llm": bundle.model.model.language_model,
    }[part]
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_end_to_end_eval_reports_accuracy_per_type_relation_and_pairs(runs, cli) -> None:
    evaluate = ("eval", "mmgeolm", "--checkpoint", runs["sft"], "--data", runs["corpus"], "--device", "cpu")
    result = cli(*evaluate, "--limit", "2")
    assert result.returncode == 0, result.stderr
    assert "overall" in result.stdout and "flipped questions: paired" in result.stdout
    result = cli(*evaluate, "--limit", "6", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["by_type"]) <= {"perception", "reasoning"} and report["by_type"]
    assert report["overall"]["n"] == sum(v["n"] for v in report["by_type"].values())
    assert all(0.0 <= v["accuracy"] <= 1.0 for v in report["by_relation"].values())
    assert {"flipped_positive", "flipped_negative", "paired"} <= set(report)
    assert report["paired"]["n"] == report["flipped_positive"]["n"]


def test_align_trains_only_the_projector_and_sft_keeps_the_tower(runs) -> None:
    from geoforge_train.mmgeolm.train import build

    start = build(
        MMGeoLMConfig(stage="align", data="", out="", tower=str(runs["clip"]), llm=str(runs["llm"]), seed=0)
    )
    align, sft = mm.load(runs["align"]), mm.load(runs["sft"])
    assert _same(_weights(start, "tower"), _weights(align, "tower"))
    assert _same(_weights(start, "llm"), _weights(align, "llm"))
    assert not _same(_weights(start, "projector"), _weights(align, "projector"))
    assert _same(_weights(align, "tower"), _weights(sft, "tower"))
    assert not _same(_weights(align, "llm"), _weights(sft, "llm"))
    assert sft.meta["stage"] == "sft" and align.meta["tower"] == str(runs["clip"])


def test_the_tower_inside_mmgeolm_gives_open_clip_image_features(runs) -> None:
    """The converted tower's pooled output, projected as open_clip projects it, equals
    open_clip's image features of the MMCLIP checkpoint within 1e-5."""
    from geoforge_train.models import create_model, read_checkpoint

    state = read_checkpoint(runs["clip"])
    model, _, size = create_model(state["model_name"], None, torch.device("cpu"))
    model.load_state_dict(state["model"])
    model.eval()
    bundle = mm.load(runs["sft"])
    record = next(iter(read_corpus(runs["corpus"])))
    pixels = mm.pixels(bundle, [Example(record.files["png"], "", "").pil()])
    with torch.no_grad():
        theirs = model.encode_image(pixels)
        pooled = bundle.model.model.vision_tower(pixel_values=pixels).pooler_output
        ours = pooled @ state["model"]["visual.proj"]
    assert size == pixels.shape[-1] == 160
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_resume_continues_from_the_latest_checkpoint_and_prunes_older_ones(runs, tmp_path: Path) -> None:
    out = tmp_path / "sft"
    shutil.copytree(runs["sft"], out)
    shutil.rmtree(out / "checkpoint-2")
    summary = train_mmgeolm(
        MMGeoLMConfig(
            stage="sft",
            data=str(runs["corpus"]),
            out=str(out),
            init=str(runs["align"]),
            max_steps=3,
            batch_size=4,
            device="cpu",
            max_length=384,
            save_every=1,
            save_total_limit=1,
            resume=True,
            flips=True,
            lr=2e-5,  # the sft default, which the run left unset: the same rate
        )
    )
    assert summary["steps"] == 3
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3"]  # --save-total-limit 1
    steps = [json.loads(r)["step"] for r in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lr": 1e-3}, "--resume: --lr 0.001 differs from 2e-05, which the run in"),
        ({"batch_size": 2}, "--resume: --batch-size 2 differs from 4, which the run in"),
        ({"flips": False}, "--resume: --flips False differs from True, which the run in"),
        ({"data": "other"}, "--resume: the corpus at --data"),
    ],
)
def test_resume_with_other_settings_or_another_corpus_is_refused_and_keeps_the_config(
    runs, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    out = tmp_path / "sft"
    shutil.copytree(runs["sft"], out)
    before = (out / "config.json").read_bytes()
    if change.get("data") == "other":
        other = tmp_path / "other"
        generate_corpus(recipe_from_dict(RECIPE), other, n=4, seed=4, qa=QAConfig())
        change = {"data": str(other)}
    settings = {
        "stage": "sft",
        "data": str(runs["corpus"]),
        "out": str(out),
        "init": str(runs["align"]),
        "max_steps": 3,
        "batch_size": 4,
        "device": "cpu",
        "max_length": 384,
        "resume": True,
        "flips": True,
    }
    with pytest.raises(UsageError) as info:
        train_mmgeolm(MMGeoLMConfig(**{**settings, **change}))  # type: ignore[arg-type]
    assert str(info.value).startswith(message), str(info.value)
    assert (out / "config.json").read_bytes() == before
    assert json.loads(before)["data_fingerprint"] is not None
    assert json.loads(before)["lr"] == 2e-5  # the rate sft trained at, not the None it was given
    assert json.loads((runs["align"] / "config.json").read_text())["lr"] == 1e-3


def test_lora_sft_saves_a_merged_model(runs, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    out = tmp_path / "lora"
    summary = train_mmgeolm(
        MMGeoLMConfig(
            stage="sft",
            data=str(runs["corpus"]),
            out=str(out),
            init=str(runs["align"]),
            max_steps=1,
            batch_size=2,
            device="cpu",
            max_length=384,
            lora=True,
            lora_r=4,
            limit=2,
        )
    )
    merged = mm.load(summary["model"])
    assert not any("lora" in k for k in merged.model.state_dict())
    assert merged.meta["lora"] is True
    assert _same(_weights(mm.load(runs["align"]), "tower"), _weights(merged, "tower"))


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_any_causal_lm_assembles_and_scores_an_answer(runs, arch: str, tmp_path: Path) -> None:
    llm, tokenizer = mm.load_llm(tiny_llm(tmp_path / arch, ["Is AD ⊥ BC? \\boxed{yes}"] * 4, arch=arch))
    tower, processor = mm.load_tower(runs["clip"])
    bundle = mm.assemble(tower, processor, llm, tokenizer)
    assert bundle.image_seq_length == (160 // 16) ** 2  # geoforge-tiny: 160 px, 16 px patches, CLS dropped
    record = next(iter(read_corpus(runs["corpus"])))
    batch = Collate(bundle, 256)([Example(record.files["png"], "Is AD ⊥ BC?", "\\boxed{yes}")])
    assert (batch["labels"] != -100).sum() == len(
        tokenizer(" \\boxed{yes}", add_special_tokens=False)["input_ids"]
    ) + 1
    loss = bundle.model(**batch).loss
    assert torch.isfinite(loss) and loss > 0


def test_image_tokens_that_do_not_match_features_fail_clearly(runs) -> None:
    bundle = mm.load(runs["align"])
    record = next(iter(read_corpus(runs["corpus"])))
    example = Example(record.files["png"], "Is AB ∥ CD?", "\\boxed{no}")
    with pytest.raises(mm.ImageTokenError, match="the prompt has 2 `<image>` tokens"):
        mm.image_tokens(bundle, "Compare <image> with it.", 512)
    with pytest.raises(
        mm.ImageTokenError, match="exceeds --max-length 50: truncation would cut image tokens"
    ):
        Collate(bundle, 50)([example])
    bundle.model.config.vision_feature_select_strategy = "full"  # CLS kept: one feature more
    bundle.model.config.image_seq_length += 1
    ids = Collate(bundle, 512)([example])["input_ids"]
    bundle.model.config.image_seq_length -= 1
    with pytest.raises(
        mm.ImageTokenError, match=r"image-token mismatch: 101 `<image>` tokens for 1 image\(s\) of 100"
    ):
        mm.check_image_tokens(bundle, ids, 1)


def test_ask_answers_a_question_about_a_figure(runs, cli, tmp_path: Path) -> None:
    record = next(iter(read_corpus(runs["corpus"])))
    figure = tmp_path / "figure.png"
    figure.write_bytes(record.files["png"])
    result = cli(
        "ask", figure, "Is AB ∥ CD?", "--checkpoint", runs["sft"], "--device", "cpu", "--max-new-tokens", "4"
    )
    assert result.returncode == 0, result.stderr
    from geoforge_train.mmgeolm.evaluate import answer

    bundle = mm.load(runs["sft"])
    reply = answer(bundle, [Example(record.files["png"], "Is AB ∥ CD?", "")], "cpu", max_new_tokens=4)[0]
    assert result.stdout == reply.strip() + "\n"
    # an empty reply is said on stderr (it read as a hang), and only then
    assert ("warning: the model's reply is empty" in result.stderr) == (not reply.strip())
    _one_line_error_with(
        cli("ask", tmp_path / "none.png", "Is AB ∥ CD?", "--checkpoint", runs["sft"]), 2, "none.png"
    )


def test_bad_inputs_get_one_line_errors_naming_the_thing(runs, cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    align = (
        "train",
        "mmgeolm",
        "--stage",
        "align",
        "--data",
        runs["corpus"],
        "--out",
        out,
        "--device",
        "cpu",
    )
    _one_line_error_with(
        cli(*align, "--tower", runs["clip"], "--llm", tmp_path / "nope"), 2, "--llm", "no such directory"
    )
    bad_llm = tmp_path / "bad_llm"
    shutil.copytree(runs["llm"], bad_llm)
    (bad_llm / "config.json").write_text("{not json", encoding="utf-8")
    _one_line_error_with(cli(*align, "--tower", runs["clip"], "--llm", bad_llm), 2, "malformed config.json")
    tower = tmp_path / "tower"
    t, processor = mm.load_tower(runs["clip"])
    t.save_pretrained(tower)
    processor.save_pretrained(tower)
    config = json.loads((tower / "config.json").read_text())
    config["intermediate_size"] += 16  # the MLP weights no longer fit
    (tower / "config.json").write_text(json.dumps(config))
    _one_line_error_with(
        cli(*align, "--tower", tower, "--llm", runs["llm"]),
        2,
        "the vision checkpoint does not match its config",
    )
    plain = tmp_path / "plain"
    generate_corpus(recipe_from_dict(RECIPE), plain, n=2, seed=5)
    sft = ("train", "mmgeolm", "--stage", "sft", "--init", runs["align"], "--out", out, "--device", "cpu")
    _one_line_error_with(cli(*sft, "--data", plain), 2, "has no Q&A: generate the corpus with --qa")
    with pytest.raises(DataError, match="no Q&A items with answers"):
        empty = tmp_path / "empty"
        generate_corpus(recipe_from_dict(RECIPE), empty, n=1, seed=5, qa=QAConfig(perception=0, reasoning=0))
        qa_examples(empty)
    broken = tmp_path / "geoqa.jsonl"
    broken.write_text((FIXTURES / "geoqa.jsonl").read_text() + '{"subject": "Find x.", "choices": ["1"]}\n')
    shutil.copy(FIXTURES / "fig1.png", tmp_path)
    shutil.copy(FIXTURES / "fig2.png", tmp_path)
    evaluate = ("eval", "mmgeolm", "--checkpoint", runs["sft"], "--device", "cpu", "--format", "geoqa")
    _one_line_error_with(cli(*evaluate, "--data", broken), 2, f"{broken}:3", "2 to 4 `choices`")


def test_benchmark_adapters_read_geoqa_and_the_mathvista_geometry_subset() -> None:
    geoqa = read_benchmark(FIXTURES / "geoqa.jsonl", "geoqa")
    assert [(e.answer, e.options[0]) for e in geoqa] == [("C", "40°"), ("A", "5")]
    assert geoqa[0].question.endswith("Choices: A. 40° B. 50° C. 70° D. 140°")
    one = Path(tempfile.mkdtemp()) / "one.jsonl"  # one line is one entry, not an object of entries
    one.write_text((FIXTURES / "geoqa.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n")
    shutil.copytree(FIXTURES, one.parent, dirs_exist_ok=True)
    assert [e.answer for e in read_benchmark(one, "geoqa")] == ["C"]
    vista = read_benchmark(FIXTURES / "mathvista.json", "mathvista")
    assert [(e.key, e.format, e.answer) for e in vista] == [("1", "choice", "C"), ("2", "free", "5")]
    assert vista[0].pil().size == (96, 96)


def test_answers_are_read_from_boxes_letters_and_numbers() -> None:
    value = Example(None, "Find BC.", "", kind="length", answer="3√2")
    assert extract("so BC = \\boxed{3√2}.") == "3√2" and is_right("3√2", value)
    assert is_right(extract("BC is about 4.243"), value) and not is_right("4.5", value)
    choice = Example(None, "", "", answer="B", options=("30°", "60°", "120°", "150°"))
    assert extract("The answer is B.", choice.options) == "B" and is_right("B", choice)
    assert is_right("60°", choice) and not is_right("A", choice)
    assert is_right("Yes", Example(None, "", "", answer="yes"))
    pos = Example(None, "", "", key="k", item="q0", type="perception", relation="perpendicular", answer="yes")
    neg = Example(
        None, "", "", key="k", item="q0", type="perception", relation="perpendicular", answer="no", tile=0
    )
    report = score([pos, neg], ["\\boxed{yes}", "\\boxed{yes}"])
    assert report["overall"] == {"accuracy": 1.0, "n": 1}
    assert report["flipped_negative"]["accuracy"] == 0.0 and report["paired"] == {"accuracy": 0.0, "n": 1}


def test_stage_settings_that_do_not_fit_are_refused_by_name() -> None:
    from geoforge_train.mmgeolm.train import ZERO_CONFIGS

    from geoforge.errors import UsageError

    config = MMGeoLMConfig(stage="sft", data="d", out="o", init="a", deepspeed="zero2")
    config.check()
    assert config.deepspeed == str(ZERO_CONFIGS["zero2"])
    assert json.loads(Path(config.deepspeed).read_text())["zero_optimization"]["stage"] == 2
    bad = [
        (MMGeoLMConfig(stage="pretrain", data="d", out="o"), "--stage pretrain"),
        (MMGeoLMConfig(stage="align", data="d", out="o", llm="l"), "--stage align needs --tower"),
        (MMGeoLMConfig(stage="sft", data="d", out="o", init="a", llm="l"), "--tower and --llm belong"),
        (MMGeoLMConfig(stage="align", data="d", out="o", tower="t", llm="l", lora=True), "--lora trains"),
        (MMGeoLMConfig(stage="sft", data="d", out="o", init="a", deepspeed="z9"), "--deepspeed z9"),
    ]
    for config, message in bad:
        with pytest.raises(UsageError, match=message):
            config.check()


@pytest.mark.slow
def test_gpu_benchmark_runs_in_smoke_mode_on_the_cpu() -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mmgeolm_sft.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["smoke"] and report["steps"] == 4 and report["timed_steps"] == 3
    assert report["tokens_per_example"] > 196 // 4 and report["tokens_per_s"] > 0
