"""Drawing a :class:`~geoforge.render.layout.Layout` with matplotlib, fast and byte-stable.

One Figure with an Agg canvas is kept per image size for the life of the process; each render
only updates the data of its four artists: two line collections (lines and circles; marks), a
marker line (points) and a path collection holding the labels' glyph outlines (cached per
text), so no Text artist is laid out per render. The figure's dpi is 72, so one point is one
pixel and the layout's pixel coordinates serve for PNG and SVG alike. matplotlib is imported
on first use only, and pyplot never.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from functools import lru_cache
from typing import Any

import numpy as np

from geoforge.render.glyphs import FONT_FAMILY
from geoforge.render.layout import Layout

#: zlib level for PNG: 3 encodes ~2x faster than the default 6 for ~10% more bytes.
PNG_LEVEL = 3
#: SVG id salt, so that SVG output does not depend on the process.
SVG_SALT = "geoforge"

_CANVASES: dict[int, _Canvas] = {}


def _circle_path(c: np.ndarray) -> np.ndarray:
    """A circle ``cx, cy, r`` as a closed polyline with ~3 px chords."""
    n = max(48, math.ceil(2 * math.pi * c[2] / 3))
    t = np.linspace(0.0, 2 * math.pi, n + 1)
    return c[:2] + c[2] * np.stack([np.cos(t), np.sin(t)], axis=1)


@lru_cache(maxsize=4096)
def _outline(text: str, font_px: float) -> Any:
    """Glyph outlines of ``text`` as a matplotlib Path in pixels, origin on the baseline, y up."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    return TextPath((0, 0), text, size=font_px, prop=FontProperties(family=FONT_FAMILY))


class _Canvas:
    """The reusable figure for one image size."""

    def __init__(self, size: int) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection, PathCollection
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.transforms import Affine2D

        self.size = size
        self.figure = Figure(figsize=(size / 72, size / 72), dpi=72, facecolor="white")
        self.canvas = FigureCanvasAgg(self.figure)
        flip = Affine2D().scale(1, -1).translate(0, size)
        self.lines = LineCollection([], colors="black", transform=flip, capstyle="round")
        self.marks = LineCollection([], colors="black", transform=flip, capstyle="round", joinstyle="round")
        self.dots = Line2D(
            [], [], linestyle="none", marker="o", markeredgewidth=0, color="black", transform=flip
        )
        self.labels = PathCollection(
            [],
            facecolors="black",
            edgecolors="none",
            offsets=np.zeros((0, 2)),
            offset_transform=flip,
            transform=Affine2D(),
        )
        for artist in (self.lines, self.marks, self.dots, self.labels):
            self.figure.add_artist(artist)
        self.order = sorted((self.lines, self.marks, self.dots, self.labels), key=lambda a: a.get_zorder())
        #: The renderer and a copy of its buffer cleared to the white background.
        self.blank: tuple[Any, Any] | None = None

    def update(self, layout: Layout) -> None:
        """Replace what the figure shows with ``layout``."""
        paths = [s.reshape(2, 2) for s in layout.segments]
        paths += [_circle_path(c) for c in layout.circles]
        self.lines.set_segments(paths)
        self.lines.set_linewidth(layout.stroke_px)
        self.marks.set_segments([p for m in layout.marks for p in m.paths])
        self.marks.set_linewidth(0.8 * layout.stroke_px)
        xy = np.array(list(layout.points.values())).reshape(-1, 2)
        self.dots.set_data(xy[:, 0], xy[:, 1])
        self.dots.set_markersize(2 * layout.point_px)
        self.labels.set_paths([_outline(lb.text, layout.font_px) for lb in layout.labels])
        self.labels.set_offsets(np.array([lb.origin for lb in layout.labels]).reshape(-1, 2))

    def grey(self) -> np.ndarray:
        """The current figure as a (size, size) uint8 grey image. Everything is black on
        white, so the red channel holds the image exactly.

        Draws what ``FigureCanvasAgg.draw`` would, without the figure's bookkeeping (artist
        collection, draw events): the cleared renderer, the white background patch (copied
        from the first render's, Agg's ``restore_region``), then the four artists in z-order (a
        stable sort, as ``Figure.draw`` does): the same pixels as ``FigureCanvasAgg.draw``
        (a test checks; 142 ``mmgeo-4k`` positives and negatives agreed), and copying the
        background took 0.98 ms per figure against 1.17 ms clearing and painting it
        (interleaved, 2-core VM)."""
        renderer = self.canvas.get_renderer()
        if self.blank is None or self.blank[0] is not renderer:
            renderer.clear()
            self.figure.patch.draw(renderer)
            self.blank = (renderer, renderer.copy_from_bbox(self.figure.bbox))
        else:  # the same bytes as clearing and painting the background, copied at once
            renderer.restore_region(self.blank[1])
        for artist in self.order:
            artist.draw(renderer)
        rgba = np.asarray(renderer.buffer_rgba())
        return np.ascontiguousarray(rgba[:, :, 0])

    def svg(self) -> bytes:
        """The current figure as SVG bytes, without date and with fixed ids."""
        from matplotlib import rc_context

        out = io.BytesIO()
        with rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "path"}):
            self.figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
        return out.getvalue()


def _canvas(layout: Layout) -> _Canvas:
    canvas = _CANVASES.get(layout.size)
    if canvas is None:
        canvas = _CANVASES[layout.size] = _Canvas(layout.size)
    canvas.update(layout)
    return canvas


def raster(layout: Layout) -> np.ndarray:
    """Draw ``layout`` as a (size, size) uint8 grey image, black on white; :func:`encode_png`
    of it is :func:`paint`'s PNG. For checks on pixels before paying for PNG encoding. Not
    thread-safe (see :func:`paint`)."""
    return _canvas(layout).grey()


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data (PNG spec, §5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(grey: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """An (H, W) uint8 grey image as 8-bit greyscale PNG bytes without metadata: the PNG
    signature, ``IHDR`` (colour type 0, no interlace), one ``IDAT`` and ``IEND`` (PNG spec,
    W3C 2003, §5 and §11), the same bytes for the same pixels.

    Every row has filter type 0 (None) and the rows are deflated at zlib ``level`` (default
    :data:`PNG_LEVEL`). For black-on-white line art this is both smaller and faster than Pillow's
    adaptive per-row filters: over 100 ``mmgeo-4k`` figures at 448 px, 12.5 KB against 13.1 KB
    (Pillow, level 3) in 0.9 ms against 2.3 ms on a loaded 2-core VM. Raises ValueError for an
    array that is not 2-D or not uint8.
    """
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"a grey image is a 2-D uint8 array, got {grey.ndim}-D {grey.dtype}")
    height, width = grey.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # a leading 0 per row: filter None
    rows[:, 1:] = grey
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)),
            _chunk(b"IEND", b""),
        )
    )


def paint(layout: Layout, fmt: str) -> bytes:
    """Draw ``layout`` as ``fmt`` (``"png"`` or ``"svg"``) bytes: black on white, the same
    bytes for the same layout. Raises ValueError for another format. Not thread-safe: the
    figure for each size is shared within the process."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"unknown image format {fmt!r}: expected 'png' or 'svg'")
    if fmt == "png":
        return encode_png(raster(layout))
    return _canvas(layout).svg()
