"""Contact sheets: a grid of corpus samples with their captions, for people to look at."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from geoforge.corpus import CorpusError, Record, read_corpus, read_shard


def select(target: str, n: int) -> list[Record]:
    """The samples to show: ``target`` is a corpus directory (its first ``n`` samples), a shard
    file, or ``DIR/KEY`` for one sample. Raises CorpusError if nothing matches."""
    path = Path(target)
    if path.is_dir():
        records = read_corpus(path)
    elif path.is_file():
        records = read_shard(path)
    elif path.parent.is_dir():
        found = [r for r in read_corpus(path.parent) if r.key == path.name]
        if not found:
            raise CorpusError(f"no sample with key {path.name!r} in {path.parent}")
        return found
    else:
        raise CorpusError(f"{target}: no such corpus directory, shard or DIR/KEY")
    out = []
    for r in records:
        out.append(r)
        if len(out) >= n:
            break
    return out


def contact_sheet(records: list[Record], columns: int = 4, tile: int = 320) -> bytes:
    """A PNG grid: each sample's image (``tile`` pixels wide) with its key and caption below.

    Uses Pillow and matplotlib's bundled DejaVu Sans (for √, ∠, ⊙). Returns PNG bytes.
    """
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font_path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    font = ImageFont.truetype(str(font_path), 13)
    wrap = max(20, tile // 7)
    blocks = []
    for r in records:
        text = f"{r.key}: " + r.files.get("txt", b"").decode()
        lines = textwrap.wrap(text, wrap)[:9]
        blocks.append((r, lines))
    text_h = 16 * max((len(lines) for _, lines in blocks), default=1) + 8
    columns = max(1, min(columns, len(records)))
    rows = (len(records) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (tile + 10) + 10, rows * (tile + text_h + 10) + 10), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (r, lines) in enumerate(blocks):
        x = 10 + (i % columns) * (tile + 10)
        y = 10 + (i // columns) * (tile + text_h + 10)
        image = Image.open(io.BytesIO(r.files["png"])).convert("RGB").resize((tile, tile))
        sheet.paste(image, (x, y))
        draw.rectangle((x - 1, y - 1, x + tile, y + tile), outline=(200, 200, 200))
        for k, line in enumerate(lines):
            draw.text((x, y + tile + 4 + 16 * k), line, fill="black", font=font)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()
