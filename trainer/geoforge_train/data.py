"""Reading geoforge corpora for training: positives, caption negatives and image negatives.

A :class:`CorpusIndex` maps every sample of one or more corpora to the byte ranges of its
members inside the tar shards (no extraction), so :class:`HardNegativeDataset` reads samples at
random with ``seek``. Sources are given as open_clip gives ``--train-data``: corpus directories,
shard files and brace patterns (``out/c{0..3}``, ``DIR/shard-{000000..000009}.tar``), joined by
``::``. Missing or corrupt shards are skipped with a warning and counted (or fail with
``strict``). The same deterministic preprocessing is used at train and eval time; training
may add mild rotation and downscaling, which MMGeoLM studies, and never crops: the whole
diagram, labels included, always stays in the image.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from geoforge.corpus import NEGATIVES, shard_problem, unpack_negatives
from geoforge.errors import GeoforgeError

if TYPE_CHECKING:
    from geoforge_train.cache import ImageCache

#: open_clip's OPENAI_DATASET_MEAN/STD (open_clip/constants.py).
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
#: Caption-negative sources a run can use: rule edits ("caption") and retrieval.
TEXT_SOURCES = ("caption", "retrieval")


class DataError(GeoforgeError):
    """A corpus cannot be used as asked (no shards, no negatives where negatives are needed);
    the CLI exits with status 2."""

    exit_code = 2


class UnreadableSample(DataError):
    """A sample of an indexed shard whose members cannot be read or decoded (the shard was
    damaged or changed after it was indexed: a member cut short, a corrupt PNG or JSON)."""


@dataclass
class CorpusIndex:
    """Byte ranges of each sample's members: ``samples[i][ext] = (path, offset, size)``;
    ``skipped`` lists shards that could not be read, with the reason."""

    samples: list[dict[str, tuple[Path, int, int]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @staticmethod
    def build(data: str | Path, strict: bool | str = False, warn: bool = True) -> CorpusIndex:
        """Index the shards of ``data`` (see :func:`shard_paths`), in order.

        A shard listed in a ``sizes.json`` but missing, or unreadable, is skipped and recorded
        in ``skipped`` (with a Python warning unless ``warn`` is False: the commands say it in
        their own warning lines, :meth:`skipped_warnings`); with ``strict`` it raises DataError
        instead. ``strict`` is True
        for the trainer's ``--strict`` option, which the error names, or why the caller needs
        every shard, which the error gives in its place (``corpus cache`` has no ``--strict``).
        Raises DataError if a source matches nothing or no sample is left.
        """
        shards = shard_paths(data)
        index = CorpusIndex()
        for path, size in shards:
            try:
                samples = _index_shard(path)
                if size is not None and len(samples) != size:
                    raise ValueError(f"{len(samples)} samples, but sizes.json lists {size}")
                index.samples.extend(samples)
            except (OSError, tarfile.TarError, ValueError) as e:
                message = f"{path}: {e if isinstance(e, ValueError) else shard_problem(e)}"
                if strict:
                    why = "--strict" if strict is True else strict
                    raise DataError(f"cannot read shard {message} ({why})") from None
                if warn:
                    warnings.warn(f"skipping shard {message}", stacklevel=2)
                index.skipped.append(message)
        if not index.samples:
            raise DataError(f"{data}: no readable samples in {len(shards)} shard(s)")
        return index

    def skipped_warnings(self) -> list[str]:
        """One warning (without ``warning:``) per shard :meth:`build` skipped,
        ``skipped shard PATH: reason``: what the commands print once, at the start."""
        return [f"skipped shard {skipped}" for skipped in self.skipped]

    def fingerprint(self) -> str:
        """What this index was built from, as 16 hex digits of SHA-256: each indexed shard's
        file name, byte size and sample count, in order, and the seed, recipe hash and sample
        count of each corpus directory's ``manifest.json``. The same corpus read through
        another path (relative or absolute, a trailing ``/``) has the same fingerprint; a
        corpus regenerated with another seed or recipe, or with other shards, has another."""
        import hashlib

        counts: dict[Path, int] = {}
        for spans in self.samples:
            shard = spans["json"][0]
            counts[shard] = counts.get(shard, 0) + 1
        rows: list[object] = [[p.name, p.stat().st_size, n] for p, n in counts.items()]
        for folder in dict.fromkeys(p.parent for p in counts):
            try:
                manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
                rows.append([manifest.get("seed"), manifest.get("config_hash"), manifest.get("samples")])
            except (OSError, ValueError, AttributeError):
                rows.append(None)
        return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]

    def negative_limits(self) -> dict[str, int] | None:
        """The most negatives of each kind (``image``, ``caption``, ``retrieval``) that a sample
        of this index holds: what ``generate`` asked for, per the ``manifest.json`` of each
        directory that holds an indexed shard (the largest over them; 0 for a corpus made without
        negatives). No sample is read. ``None`` if a directory has no readable manifest."""
        limits = dict.fromkeys(("image", *TEXT_SOURCES), 0)
        for folder in {spans["json"][0].parent for spans in self.samples}:
            try:
                manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
                asked = manifest["negatives"] or {}
                for kind in limits:
                    limits[kind] = max(limits[kind], int(asked.get(kind, 0)))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                return None
        return limits


def shard_paths(data: str | Path) -> list[tuple[Path, int | None]]:
    """The shards of ``data`` with the sample count its ``sizes.json`` lists (``None`` where
    none does). ``data`` is one or more sources joined by ``::`` (open_clip's separator), each
    brace-expanded (``{0..3}``, ``{a,b}``) into corpus directories (every shard its
    ``sizes.json`` lists or its folder holds) or shard files. Raises DataError naming a
    source that matches nothing."""
    from braceexpand import braceexpand

    out: list[tuple[Path, int | None]] = []
    for source in str(data).split("::"):
        for item in braceexpand(source):
            path = Path(item)
            if path.is_dir():
                sizes_file = path / "sizes.json"
                sizes: dict[str, int] = json.loads(sizes_file.read_text()) if sizes_file.is_file() else {}
                names = sorted(set(sizes) | {p.name for p in path.glob("shard-*.tar")})
                if not names:
                    ignored = sorted(p.name for p in path.iterdir())
                    more = f" and {len(ignored) - 8} more" if len(ignored) > 8 else ""
                    shown = ", ".join(ignored[:8]) + more
                    raise DataError(
                        f"{item}: no shard-NNNNNN.tar and no sizes.json; ignored "
                        + (shown or "nothing (the directory is empty)")
                    )
                out += [(path / name, sizes.get(name)) for name in names]
            elif path.is_file() or (path.suffix == ".tar" and path.parent.is_dir()):
                out.append((path, None))  # a missing shard file is skipped like a missing listed one
            else:
                raise DataError(f"{item}: no such corpus directory or shard")
    return out


def _index_shard(path: Path) -> list[dict[str, tuple[Path, int, int]]]:
    out: list[dict[str, tuple[Path, int, int]]] = []
    current: dict[str, tuple[Path, int, int]] = {}
    key = None
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            k, _, ext = member.name.partition(".")
            if k != key and current:
                out.append(current)
                current = {}
            key = k
            current[ext] = (path, member.offset_data, member.size)
        end = tar.offset
    # tarfile stops quietly at a file cut on a member boundary; a whole shard ends with
    # two zero blocks (the end-of-archive marker), so their absence means truncation.
    with open(path, "rb") as fh:
        fh.seek(end)
        marker = fh.read(1024)
    if len(marker) < 1024 or marker.count(0) != 1024:
        raise ValueError(f"truncated: no end-of-archive marker after byte {end}")
    if current:
        out.append(current)
    for sample in out:
        if not {"json", "png", "txt"} <= sample.keys():
            raise ValueError(f"sample without json/png/txt members: {sorted(sample)}")
    return out


def _read(span: tuple[Path, int, int]) -> bytes:
    path, offset, size = span
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise UnreadableSample(f"{path}: truncated member at byte {offset}")
    return data


#: What a damaged sample raises: PIL (OSError, SyntaxError, EOFError), json/UTF-8 (ValueError), KeyError.
UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, KeyError)


def unreadable(spans: dict[str, tuple[Path, int, int]], error: Exception) -> UnreadableSample:
    """The UnreadableSample of the sample of member spans ``spans`` for ``error``: its shard, its
    key (where its JSON still reads, else its first byte) and the error's first line."""
    path, offset, _ = spans["json"]
    try:
        name = f"sample {json.loads(_read(spans['json']))['key']}"
    except (*UNREADABLE, DataError):
        name = f"the sample at byte {offset}"
    first = (str(error).strip().splitlines() or [""])[0]
    return UnreadableSample(f"{path}: {name} cannot be read: {type(error).__name__}: {first}")


def read_meta(spans: dict[str, tuple[Path, int, int]]) -> dict[str, Any]:
    """The parsed ``KEY.json`` of a sample (its member ``spans``); UnreadableSample if unreadable."""
    try:
        return json.loads(_read(spans["json"]))  # type: ignore[no-any-return]
    except UNREADABLE as e:
        raise unreadable(spans, e) from None


def normalise_caption(text: str) -> str:
    """The form in which two captions count as the same caption: runs of whitespace collapsed
    to one space, case-folded, and trailing periods and spaces stripped, so "Find AB." and
    "find  AB" are one caption. open_clip's tokenizer lowercases and collapses whitespace
    itself, so a text tower cannot tell such captions apart anyway."""
    return " ".join(text.split()).casefold().rstrip(". ")


def text_id(text: str) -> int:
    """A stable 63-bit id of a caption: the first 8 bytes of the SHA-1 of
    :func:`normalise_caption`, so captions equal after normalisation have equal ids."""
    return int.from_bytes(hashlib.sha1(normalise_caption(text).encode()).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class Transform:
    """An image (PNG bytes or a PIL image) → float32 tensor (3, size, size), normalised with
    ``mean``/``std`` (the model's preprocessing: :func:`geoforge_train.models.preprocess_cfg`;
    OpenAI's by default).

    The whole image is kept, never cropped: its longer side is resized to ``size`` (bicubic)
    and it is centred on a white square, which is open_clip's ``resize_mode="longest"`` with
    ``fill_color=255`` (a plain resize for square figures). With ``train``, a rotation by up to
    ``rotate`` degrees (canvas expanded, white fill) and a downscale to a random fraction in
    [``downscale``, 1] (centred on white) come first, drawn from the ``rng`` given to
    :meth:`__call__`. Deterministic for a given rng state.
    """

    size: int
    train: bool = False
    rotate: float = 0.0
    downscale: float = 1.0
    mean: tuple[float, ...] = MEAN
    std: tuple[float, ...] = STD

    @staticmethod
    def from_cfg(
        cfg: dict[str, Any], train: bool = False, rotate: float = 0.0, downscale: float = 1.0
    ) -> Transform:
        """The transform of an open_clip ``preprocess_cfg`` (its ``size``, ``mean`` and ``std``)."""
        size = cfg["size"]
        size = size[0] if isinstance(size, (tuple, list)) else size
        return Transform(int(size), train, rotate, downscale, tuple(cfg["mean"]), tuple(cfg["std"]))

    def pixels(self, png: bytes | Image.Image, rng: np.random.Generator | None = None) -> np.ndarray:
        """The resized, padded image before normalisation: uint8 (size, size) for a greyscale
        (mode ``L``) image, as every geoforge figure is, else uint8 (size, size, 3) RGB.

        A greyscale image is rotated, resized and padded in ``L``: each operation acts on the
        three equal channels of its RGB form alike, so the values equal those of the RGB path
        (a test checks it) at a third of the cost."""
        image = png if isinstance(png, Image.Image) else Image.open(io.BytesIO(png))
        if image.mode != "L":
            image = image.convert("RGB")
        white = 255 if image.mode == "L" else (255, 255, 255)
        if self.train and rng is not None:
            if self.rotate > 0:
                angle = float(rng.uniform(-self.rotate, self.rotate))
                image = image.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=white)
            if self.downscale < 1:
                f = float(rng.uniform(self.downscale, 1.0))
                side = max(image.size)
                small = image.resize(
                    (max(1, round(image.width * f)), max(1, round(image.height * f))), Image.BICUBIC
                )
                canvas = Image.new(image.mode, (side, side), white)
                canvas.paste(small, ((side - small.width) // 2, (side - small.height) // 2))
                image = canvas
        ratio = max(image.size) / self.size  # open_clip's ResizeKeepRatio(longest=1), then a pad
        image = image.resize((round(image.width / ratio), round(image.height / ratio)), Image.BICUBIC)
        if image.size != (self.size, self.size):
            canvas = Image.new(image.mode, (self.size, self.size), white)
            canvas.paste(image, ((self.size - image.width) // 2, (self.size - image.height) // 2))
            image = canvas
        return np.array(image)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images (..., C, size, size), C = 1 (greyscale) or 3, on any device → float32
        (..., 3, size, size): ``(x / 255 − mean) / std``, a greyscale channel used for all three.
        The same float32 operations as :meth:`__call__`, so the values are equal bit for bit."""
        x = x.to(torch.float32) / 255.0
        if x.shape[-3] == 1:
            x = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
        mean = torch.tensor(self.mean, device=x.device)[:, None, None]
        std = torch.tensor(self.std, device=x.device)[:, None, None]
        return (x - mean) / std

    def __call__(self, png: bytes | Image.Image, rng: np.random.Generator | None = None) -> torch.Tensor:
        """The normalised float32 (3, size, size) image: :meth:`normalise` of :meth:`pixels`."""
        return self.normalise(channels_first(self.pixels(png, rng)))


def channels_first(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (S, S) or (S, S, 3) pixels (:meth:`Transform.pixels`) → a uint8 tensor (1 or 3, S, S)
    sharing their memory."""
    x = torch.from_numpy(pixels)
    return x[None] if x.ndim == 2 else x.permute(2, 0, 1)


@dataclass(frozen=True)
class NegativeUse:
    """Which negatives a run uses: caption negatives from ``text_sources`` (up to ``k_text``
    per sample) and up to ``k_image`` image negatives. All zero: in-batch only."""

    text_sources: tuple[str, ...] = ()
    k_text: int = 0
    k_image: int = 0

    @property
    def any(self) -> bool:
        """True if any negatives are used."""
        return bool((self.text_sources and self.k_text) or self.k_image)


def excess_negatives(index: CorpusIndex, use: NegativeUse) -> list[str]:
    """A warning (without ``warning:``) for ``--k-image`` and for ``--k-text`` when it asks more
    negatives per sample than the corpus holds (:meth:`CorpusIndex.negative_limits`): the extra
    columns are masked padding, so they change nothing. Empty when the limits are unknown."""
    limits = index.negative_limits()
    if limits is None:
        return []
    held = [("--k-image", use.k_image, limits["image"], "image")]
    if use.text_sources:
        text = sum(limits[s] for s in use.text_sources)
        held.append(("--k-text", use.k_text, text, " and ".join(use.text_sources)))
    return [
        f"{option} {k} but the corpus holds at most {most} {kind} negatives per sample "
        "(the rest are masked padding)"
        for option, k, most, kind in held
        if k > most
    ]


@dataclass(frozen=True)
class Decoded:
    """A sample's images already through :meth:`Transform.pixels` (what a
    :class:`geoforge_train.cache.ImageCache` holds): the positive, uint8 (S, S) or (S, S, 3), and
    its first image negatives in record order, each with its id (see :class:`SampleEncoder`)."""

    positive: np.ndarray
    negatives: list[np.ndarray]
    negative_ids: list[int]


def tile_id(tile: Image.Image) -> int:
    """A stable 63-bit id of an image negative: the first 8 bytes of the SHA-1 of its stored
    pixels (the tile of :data:`geoforge.corpus.NEGATIVES`, before any resizing)."""
    return int.from_bytes(hashlib.sha1(tile.tobytes()).digest()[:8], "big") >> 1


def decode_images(files: dict[str, bytes], count: int, transform: Transform, rng: Any = None) -> Decoded:
    """Decode a sample's positive and its first ``count`` image negatives (``files``: its shard
    members) through ``transform.pixels``; ``rng(j)`` gives the generator of image ``j`` (0: the
    positive), or ``None`` for none. The strip is decoded only when ``count`` > 0; a PNG's rows
    run across every tile, so the whole strip is inflated even when fewer tiles are used.
    Raises DataError if negatives are asked and the sample has no :data:`NEGATIVES` member."""
    positive = transform.pixels(files["png"], rng(0) if rng else None)
    if not count:
        return Decoded(positive, [], [])
    if NEGATIVES not in files:
        key = json.loads(files["json"])["key"]
        raise DataError(
            f"sample {key}: image negatives recorded but no {NEGATIVES} member "
            "(a corpus of an older geoforge): generate it again"
        )
    tiles = unpack_negatives(files[NEGATIVES], count)
    mode = "L" if positive.ndim == 2 else "RGB"  # a sample's images share their channels
    arrays = [
        transform.pixels(t if t.mode == mode else t.convert(mode), rng(j + 1) if rng else None)
        for j, t in enumerate(tiles)
    ]
    return Decoded(positive, arrays, [tile_id(t) for t in tiles])


@dataclass(frozen=True)
class SampleEncoder:
    """One sample's members (``{"json", "png", "txt", "negatives.png"}`` bytes, as a shard
    holds them) → a dict of tensors and ids, with the negatives ``use`` asks for.

    Item: ``image`` (3, S, S) float32; ``text`` (C,) int64 tokens; ``text_id`` int
    (:func:`text_id`); ``key``; ``neg_text`` (k_text, C) int64 with ``neg_text_mask``
    (k_text,) bool and ``neg_text_id`` (k_text,) int64; ``neg_image`` (k_image, 3, S, S) with
    ``neg_image_mask`` and ``neg_image_id`` (:func:`tile_id`); ``neg_text_kind``/``neg_image_kind``:
    the plugin of each negative read (for evaluation). A caption negative whose token ids equal
    the positive's (the two differ only past the tokenizer's context of C tokens, which truncates
    them) is masked like padding; ``neg_text_same_tokens`` (int) counts them. The augmentation
    of sample ``i`` in ``epoch`` is drawn from ``(seed, epoch, i)``.

    With ``uint8``, ``image`` is uint8 (1 or 3, S, S) and ``neg_image`` uint8 (k_image, 1 or 3,
    S, S) (1 channel for greyscale figures), not yet normalised: a quarter of the bytes (a twelfth
    for greyscale) to pass between processes and to the device, where
    :func:`geoforge_train.loader.to_device` normalises them to the float32 values above.
    """

    tokenizer: Any
    transform: Transform
    use: NegativeUse
    seed: int = 0
    uint8: bool = False

    def __call__(
        self, files: dict[str, bytes], epoch: int, i: int, decoded: Decoded | None = None
    ) -> dict[str, object]:
        """The item of sample ``i`` (its members ``files``); ``decoded``: its images already
        decoded (then ``files`` needs only ``json`` and ``txt``)."""
        meta = json.loads(files["json"])
        text = files["txt"].decode()
        record = json.loads(meta.get("negatives", "{}") or "{}")
        images = record.get("image", [])[: self.use.k_image]
        if decoded is None:
            seeds = [self.seed, epoch, i]  # image j > 0 (negative j − 1) adds j
            decoded = decode_images(
                files, len(images), self.transform, lambda j: np.random.default_rng(seeds + [j] * (j > 0))
            )
        item: dict[str, object] = {
            "image": self._tensor(decoded.positive),
            "text": self.tokenizer([text])[0],
            "text_id": text_id(text),
            "key": meta["key"],
        }
        texts: list[tuple[str, str]] = []
        for source in self.use.text_sources:
            texts += [(n["text"], n["plugin"]) for n in record.get(source, [])]
        texts = texts[: self.use.k_text]
        k = self.use.k_text
        ctx = item["text"].shape[0]  # type: ignore[union-attr]
        neg_text = torch.zeros((k, ctx), dtype=torch.long)
        if texts:
            neg_text[: len(texts)] = self.tokenizer([t for t, _ in texts])
        same = torch.zeros(k, dtype=torch.bool)
        same[: len(texts)] = (neg_text[: len(texts)] == item["text"]).all(dim=1)
        item["neg_text"] = neg_text
        item["neg_text_mask"] = (torch.arange(k) < len(texts)) & ~same
        item["neg_text_same_tokens"] = int(same.sum())
        item["neg_text_id"] = torch.tensor(
            [text_id(t) for t, _ in texts] + [-1] * (k - len(texts)), dtype=torch.long
        )
        item["neg_text_kind"] = [p for _, p in texts]
        shape = item["image"].shape  # type: ignore[union-attr]
        neg_image = torch.zeros((self.use.k_image, *shape), dtype=item["image"].dtype)  # type: ignore[union-attr]
        for j, pixels in enumerate(decoded.negatives[: len(images)]):
            neg_image[j] = self._tensor(pixels)
        ids = decoded.negative_ids[: len(images)]
        item["neg_image"] = neg_image
        item["neg_image_mask"] = torch.arange(self.use.k_image) < len(images)
        item["neg_image_id"] = torch.tensor(ids + [-1] * (self.use.k_image - len(ids)), dtype=torch.long)
        item["neg_image_kind"] = [n["plugin"] for n in images]
        return item

    def _tensor(self, pixels: np.ndarray) -> torch.Tensor:
        x = channels_first(pixels)
        return x if self.uint8 else self.transform.normalise(x)


class HardNegativeDataset(Dataset):
    """Samples of a corpus as dicts of tensors and ids (:class:`SampleEncoder`), read at random
    through a :class:`CorpusIndex`.

    ``epoch`` seeds the training augmentation (``set_epoch``). ``uint8``: items carry uint8
    images to be normalised on the device (:class:`SampleEncoder`). ``cache``: a
    :class:`geoforge_train.cache.ImageCache` of this corpus; its images are read instead of
    decoding PNGs (the shards give only each sample's JSON and caption), with the values the
    decoding gives. Raises DataError if negatives are asked for and the corpus records none,
    if the cache was made for other shards, another size or with augmentation asked, or, with
    ``require_each`` (training), if no sample has a negative of some asked kind (the samples are
    scanned until each is found).
    """

    def __init__(
        self,
        index: CorpusIndex,
        tokenizer: Any,
        transform: Transform,
        use: NegativeUse,
        seed: int = 0,
        require_each: bool = False,
        uint8: bool = False,
        cache: ImageCache | None = None,
    ) -> None:
        self.index, self.use, self.cache = index, use, cache
        self.encode = SampleEncoder(tokenizer, transform, use, seed, uint8)
        if cache is not None:
            cache.check(index, transform)
        self.epoch = 0
        if use.any and "negatives" not in read_meta(index.samples[0]):
            raise DataError(
                "negatives were asked for but the corpus has none: generate it with "
                "--image-negatives/--caption-negatives/--retrieval-negatives"
            )
        if use.any and require_each:
            self._require_each_kind()

    def _require_each_kind(self) -> None:
        asked = {s: f"--text-negatives {s}" for s in self.use.text_sources if self.use.k_text}
        if self.use.k_image:
            asked["image"] = "--k-image"
        missing = set(asked)
        for spans in self.index.samples:
            if not missing:
                return
            record = json.loads(read_meta(spans).get("negatives", "{}") or "{}")
            missing -= {kind for kind in missing if record.get(kind)}
        if missing:
            made_by = {"caption": "--caption-negatives", "image": "--image-negatives"}
            raise DataError(
                "; ".join(f"{asked[k]}: no sample of the corpus has {k} negatives" for k in sorted(missing))
                + ": generate it with "
                + " / ".join(made_by.get(k, f"--{k}-negatives") + " N" for k in sorted(missing))
            )

    def __len__(self) -> int:
        return len(self.index.samples)

    def set_epoch(self, epoch: int) -> None:
        """Reseed the augmentation for ``epoch``."""
        self.epoch = epoch

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, object]:
        """Sample ``key``: an index, or ``(epoch, index)`` to seed augmentation for that epoch
        (what the training loader passes, so worker processes need no shared state). Raises
        UnreadableSample, naming the shard and the sample, if its members cannot be read or
        decoded."""
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        spans = self.index.samples[i]
        decoded = self.cache.decoded(i) if self.cache is not None else None  # its errors name the cache
        negatives = (NEGATIVES,) if self.use.k_image and NEGATIVES in spans else ()
        wanted = ("json", "txt") if decoded is not None else ("json", "png", "txt", *negatives)
        try:
            return self.encode({ext: _read(spans[ext]) for ext in wanted}, epoch, i, decoded)
        except UNREADABLE as e:
            raise unreadable(spans, e) from None


def collate(items: list[dict[str, object]]) -> dict[str, object]:
    """Stack items into a batch; lists of strings stay lists. uint8 images of greyscale (1
    channel) and colour (3) figures in one batch are stacked with 3 channels."""
    out: dict[str, object] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        if isinstance(values[0], torch.Tensor):
            if len({v.shape for v in values}) > 1 and values[0].dtype == torch.uint8:  # grey and colour
                values = [v.expand(*v.shape[:-3], 3, *v.shape[-2:]) for v in values]
            out[key] = torch.stack(values)  # type: ignore[arg-type]
        elif isinstance(values[0], int):
            out[key] = torch.tensor(values, dtype=torch.long)
        else:
            out[key] = values
    return out


def epoch_order(n: int, seed: int, epoch: int, rank: int, world_size: int, batch: int) -> list[list[int]]:
    """The batches of ``rank`` for ``epoch``: a permutation of ``range(n)`` seeded by
    ``(seed, epoch)``, cut into global batches of ``batch · world_size`` (the last, partial
    one dropped), each split into per-rank slices. Same result on every rank."""
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    per_step = batch * world_size
    steps = n // per_step
    return [
        perm[s * per_step + rank * batch : s * per_step + (rank + 1) * batch].tolist() for s in range(steps)
    ]


def steps_per_epoch(n: int, batch: int, world_size: int) -> int:
    """Full global batches per epoch."""
    return math.floor(n / (batch * world_size))
