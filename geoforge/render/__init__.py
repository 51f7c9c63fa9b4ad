"""Rendering realised Scenes: pixel layout with label placement, then matplotlib drawing.

:func:`layout` is pure numpy; :func:`render` and :func:`save` import matplotlib on first use.
"""

from __future__ import annotations

from pathlib import Path

from geoforge.render.layout import Label, Layout, layout
from geoforge.render.marks import Mark
from geoforge.scene import Scene

__all__ = ["Label", "Layout", "Mark", "layout", "render", "save"]


def render(scene: Scene, size: int = 448, fmt: str = "png", *, auto_marks: bool = True) -> bytes:
    """Render ``scene`` as a ``size`` × ``size`` pixel image: ``fmt`` is ``"png"`` (8-bit
    grayscale) or ``"svg"`` (``size`` pt square). The same scene always gives the same bytes.

    Raises ValueError for an unknown ``fmt``, ``size`` < 64 or non-finite coordinates.
    """
    from geoforge.render.draw import paint

    return paint(layout(scene, size, auto_marks=auto_marks), fmt)


def save(
    scene: Scene, path: str | Path, size: int = 448, svg: bool = False, *, auto_marks: bool = True
) -> list[Path]:
    """Write ``scene`` to ``path``: as SVG if its suffix is ``.svg``, else as PNG and, with
    ``svg``, also as SVG next to it (same name, ``.svg`` suffix); returns the paths written.
    Raises ValueError as :func:`render` does and OSError if a file cannot be written."""
    from geoforge.render.draw import paint

    plan = layout(scene, size, auto_marks=auto_marks)
    path = Path(path)
    if path.suffix.lower() == ".svg":
        path.write_bytes(paint(plan, "svg"))
        return [path]
    path.write_bytes(paint(plan, "png"))
    written = [path]
    if svg:
        written.append(path.with_suffix(".svg"))
        written[-1].write_bytes(paint(plan, "svg"))
    return written
