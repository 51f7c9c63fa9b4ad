"""Contact sheets: a grid of corpus samples with their captions, and their hard negatives
beside them, for people to look at."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from geoforge.corpus import CorpusError, Record, read_corpus, read_shard, shards_in
from geoforge.errors import UsageError

if TYPE_CHECKING:
    from PIL import Image


def select(target: str, n: int) -> list[Record]:
    """The samples to show: ``target`` is a corpus directory (its first ``n`` samples), a shard
    file, or ``DIR/KEY`` for one sample. Raises UsageError (bad input, exit 2) for a target
    that is none of these or a directory without shards, CorpusError for a key not in it."""
    path = Path(target)
    if path.is_dir():
        if not shards_in(path):
            raise UsageError(f"{target}: holds no shard-NNNNNN.tar")
        records = read_corpus(path)
    elif path.is_file():
        records = read_shard(path)
    elif path.parent.is_dir() and shards_in(path.parent):
        found = [r for r in read_corpus(path.parent) if r.key == path.name]
        if not found:
            raise CorpusError(f"no sample with key {path.name!r} in {path.parent}")
        return found
    else:
        raise UsageError(f"{target}: no such corpus directory, shard or DIR/KEY")
    out = []
    for r in records:
        out.append(r)
        if len(out) >= n:
            break
    return out


def tiles(records: list[Record], negatives: int = 4) -> tuple[list[tuple[bytes | Image.Image, str]], int]:
    """The tiles of a sheet (PNG bytes or an image, ``b""`` for a blank cell, and a caption)
    and its column count. Without negatives, one tile per sample (image, key and caption).
    With negatives, one row per sample: the positive (with its first caption negatives marked
    ✗) beside up to ``negatives`` image negatives, each labelled with its plugin and change."""
    has_negatives = any("negatives" in r.meta for r in records)
    out: list[tuple[bytes | Image.Image, str]] = []
    if not has_negatives:
        return [(r.files["png"], f"{r.key}: " + r.files.get("txt", b"").decode()) for r in records], 0
    for r in records:
        record = json.loads(str(r.meta.get("negatives", "{}"))) or {"image": [], "caption": []}
        lines = [f"{r.key}: " + r.files["txt"].decode()]
        lines += [f"✗ {c['text']}" for c in record["caption"][:2]]
        out.append((r.files["png"], "\n".join(lines)))
        row = record["image"][:negatives]
        for neg, tile in zip(row, r.image_negatives()):
            out.append((tile, f"negative {neg['tile']} [{neg['plugin']}] {neg['change']}"))
        out.extend([(b"", "")] * (negatives - len(row)))
    return out, negatives + 1


def contact_sheet(records: list[Record], columns: int = 4, tile: int = 320, negatives: int = 4) -> bytes:
    """A PNG grid of samples (``tile`` pixels wide) with their captions below; with hard
    negatives, each positive is followed by its image negatives (see :func:`tiles`).

    Uses Pillow and matplotlib's bundled DejaVu Sans (for √, ∠, ⊙). Returns PNG bytes.
    """
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font_path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    font = ImageFont.truetype(str(font_path), 13)
    wrap = max(20, tile // 7)
    cells, forced = tiles(records, negatives)
    columns = forced or max(1, min(columns, len(cells)))
    blocks = [
        (png, [w for part in text.split("\n") for w in textwrap.wrap(part, wrap)][:10]) for png, text in cells
    ]
    text_h = 16 * max((len(lines) for _, lines in blocks), default=1) + 8
    rows = (len(blocks) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (tile + 10) + 10, rows * (tile + text_h + 10) + 10), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (png, lines) in enumerate(blocks):
        if not png:
            continue
        x = 10 + (i % columns) * (tile + 10)
        y = 10 + (i // columns) * (tile + text_h + 10)
        image = (png if isinstance(png, Image.Image) else Image.open(io.BytesIO(png))).convert("RGB")
        image = image.resize((tile, tile))
        sheet.paste(image, (x, y))
        draw.rectangle((x - 1, y - 1, x + tile, y + tile), outline=(200, 200, 200))
        for k, line in enumerate(lines):
            draw.text((x, y + tile + 4 + 16 * k), line, fill="black", font=font)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()
