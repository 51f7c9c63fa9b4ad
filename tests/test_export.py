"""``geoforge export mmclip``: a checkpoint becomes an open_clip ``local-dir`` and a Hugging Face
``CLIPVisionModelWithProjection``, which a process that never imports geoforge loads with
open_clip's and transformers' own code; their image features match the trainer's within 1e-5
on the same images."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402
from geoforge_train.evaluate import load  # noqa: E402
from geoforge_train.export import ExportError, hf_vision  # noqa: E402
from geoforge_train.models import create_model, read_checkpoint, save_checkpoint  # noqa: E402
from geoforge_train.train import TrainConfig, _get_rng  # noqa: E402
from PIL import Image  # noqa: E402

from geoforge.cli import main  # noqa: E402
from geoforge.program import parse_program  # noqa: E402
from geoforge.realise import realise  # noqa: E402
from geoforge.render import render  # noqa: E402

CPU = torch.device("cpu")
#: Features of the exported models vs the trainer's, per coordinate (float32 rounding is ~1e-6).
FEATURE_TOL = 1e-5

#: Loads both exports with open_clip's and transformers' own code and prints the features of
#: each image as JSON, and the geoforge modules it imported (none).
LOADER = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch, open_clip
    from PIL import Image
    from transformers import AutoImageProcessor, CLIPVisionModelWithProjection

    oc_dir, hf_dir, *images = sys.argv[1:]
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + oc_dir)
    tokens = open_clip.get_tokenizer("local-dir:" + oc_dir)(["a triangle"])
    vision = CLIPVisionModelWithProjection.from_pretrained(hf_dir).eval()
    processor = AutoImageProcessor.from_pretrained(hf_dir, backend="pil")
    out = {"open_clip": [], "hf": [], "context": tokens.shape[1]}
    with torch.no_grad():
        for path in images:
            image = Image.open(path)
            out["open_clip"].append(model.encode_image(preprocess(image)[None])[0].tolist())
            pixels = processor(images=image, return_tensors="pt")["pixel_values"]
            out["hf"].append(vision(pixel_values=pixels).image_embeds[0].tolist())
    out["imported"] = sorted(m for m in sys.modules if m.split(".")[0].startswith("geoforge"))
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory whose final checkpoint holds geoforge-tiny with every weight perturbed
    (untrained LayerNorms are all ones and biases all zeros, which would hide a swapped
    mapping)."""
    out = tmp_path_factory.mktemp("export") / "run"
    torch.manual_seed(0)
    model, _, _ = create_model("geoforge-tiny", None, CPU)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    config = TrainConfig(data="corpus", out=str(out))
    save_checkpoint(out, 3, model, optimizer, scheduler, config, [1.0, 0.9, 0.8], _get_rng(), final=True)
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 448 px figure, as a corpus stores it, and a non-square crop of it."""
    root = tmp_path_factory.mktemp("images")
    scene = realise(parse_program("a b c = triangle a b c; h = foot h a b c; m = midpoint m b c"), seed=3)
    (root / "figure.png").write_bytes(render(scene, 448))
    with Image.open(root / "figure.png") as figure:
        figure.crop((0, 60, 448, 380)).save(root / "wide.png")
    return [root / "figure.png", root / "wide.png"]


def _cli(*args: object) -> int:
    """Run the CLI in this process; its exit status."""
    old = sys.argv
    sys.argv = ["geoforge", *map(str, args)]
    try:
        main()
    except SystemExit as e:
        return int(e.code or 0)
    finally:
        sys.argv = old
    return 0


@pytest.fixture(scope="module")
def exported(run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exported")
    for to in ("open_clip", "hf"):
        assert _cli("export", "mmclip", run, "--to", to, root / to) == 0
    return {"open_clip": root / "open_clip", "hf": root / "hf"}


def test_export_writes_safetensors_and_the_training_preprocessing(exported: dict[str, Path]) -> None:
    assert sorted(p.name for p in exported["open_clip"].iterdir()) == [
        "open_clip_config.json",
        "open_clip_model.safetensors",
    ]
    config = json.loads((exported["open_clip"] / "open_clip_config.json").read_text())
    assert config["model_cfg"] == open_clip.get_model_config("geoforge-tiny")
    pre = config["preprocess_cfg"]
    assert (pre["mean"], pre["std"]) == ([1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
    assert (pre["resize_mode"], pre["fill_color"], pre["interpolation"]) == ("longest", 255, "bicubic")
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {
        p.name for p in exported["hf"].iterdir()
    }
    processor = json.loads((exported["hf"] / "preprocessor_config.json").read_text())
    assert processor["do_center_crop"] is False and processor["size"] == {"height": 160, "width": 160}
    assert processor["image_mean"] == [1.0, 1.0, 1.0] and processor["image_std"] == [0.5, 0.5, 0.5]


def test_exports_load_without_geoforge_and_match_the_trainer(
    run: Path, exported: dict[str, Path], images: list[Path]
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, exported["open_clip"], exported["hf"], *images],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=images[0].parent,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["imported"] == [] and got["context"] == 96
    loaded = load(str(run), CPU)  # the trainer's own path: checkpoint, preprocessing, model
    from geoforge_train.data import Transform

    transform = Transform.from_cfg(loaded.preprocess)
    with torch.no_grad():
        ours = [loaded.model.encode_image(transform(p.read_bytes())[None])[0].numpy() for p in images]
    oc = [np.abs(np.array(f) - o).max() for f, o in zip(got["open_clip"], ours)]
    hf = np.abs(np.array(got["hf"][0]) - ours[0]).max()  # the square figure: HF stretches others
    print(f"max feature difference: open_clip {oc}, transformers {hf:.2g}")
    assert max(oc) <= FEATURE_TOL and hf <= FEATURE_TOL
    assert np.abs(ours[0]).max() > 0.1  # features of a real size, not all zero


def test_hf_mapping_alone_matches_on_the_same_pixels(run: Path) -> None:
    """Same input tensor, no preprocessing: only the weight mapping is compared."""
    state = read_checkpoint(run)
    loaded = load(str(run), CPU)
    vision, _ = hf_vision(state)
    x = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (vision(pixel_values=x).image_embeds - loaded.model.encode_image(x)).abs().max()
    assert float(diff) <= FEATURE_TOL


def test_export_refuses_a_non_empty_directory_and_an_unknown_target(
    run: Path, exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (exported["hf"] / "model.safetensors").read_bytes()
    assert _cli("export", "mmclip", run, "--to", "hf", exported["hf"]) == 2
    assert (exported["hf"] / "model.safetensors").read_bytes() == before
    assert _cli("export", "mmclip", run, "--to", "onnx", tmp_path / "x") == 2
    assert not (tmp_path / "x").exists()
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: ") and "--overwrite" in err[0]
    assert err[1] == "error: --to onnx: expected open_clip or hf"
    assert _cli("export", "mmclip", run, "--to", "hf", exported["hf"], "--overwrite") == 0


def test_towers_without_a_clip_vision_form_are_refused(run: Path) -> None:
    state = read_checkpoint(run)
    vision_cfg = {**state["model_cfg"]["vision_cfg"], "pool_type": "avg"}
    state["model_cfg"] = {**state["model_cfg"], "vision_cfg": vision_cfg}
    with pytest.raises(ExportError, match="pool_type='avg'"):
        hf_vision(state)
    del state["model_cfg"]
    with pytest.raises(ExportError, match="no model_cfg"):
        hf_vision(state)
