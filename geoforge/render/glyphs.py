"""Glyph metrics of DejaVu Sans (the font matplotlib ships), so label boxes need no font file.

Each row: character, advance, ink x-min, ink x-max, ink y-min, ink y-max, in em units (1 em =
the font size in pixels), y up from the baseline; read from ``DejaVuSans.ttf`` without hinting.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Font family used to draw labels; the metrics below are this font's.
FONT_FAMILY = "DejaVu Sans"

_TABLE = """
a 0.613 0.060 0.522 -0.014 0.560
b 0.635 0.091 0.580 -0.014 0.760
c 0.550 0.055 0.488 -0.014 0.560
d 0.635 0.055 0.544 -0.014 0.760
e 0.615 0.055 0.562 -0.014 0.560
f 0.352 0.023 0.371 0.000 0.760
g 0.635 0.055 0.544 -0.208 0.560
h 0.634 0.091 0.549 0.000 0.760
i 0.278 0.094 0.184 0.000 0.760
j 0.278 -0.018 0.184 -0.208 0.760
k 0.579 0.091 0.576 0.000 0.760
l 0.278 0.094 0.184 0.000 0.760
m 0.974 0.091 0.889 0.000 0.560
n 0.634 0.091 0.549 0.000 0.560
o 0.612 0.055 0.557 -0.014 0.560
p 0.635 0.091 0.580 -0.208 0.560
q 0.635 0.055 0.544 -0.208 0.560
r 0.411 0.091 0.411 0.000 0.560
s 0.521 0.054 0.472 -0.014 0.560
t 0.392 0.027 0.368 0.000 0.702
u 0.634 0.085 0.543 -0.014 0.560
v 0.592 0.030 0.562 0.000 0.547
w 0.818 0.042 0.776 0.000 0.547
x 0.592 0.029 0.559 0.000 0.547
y 0.592 0.030 0.562 -0.208 0.547
z 0.525 0.043 0.482 0.000 0.547
A 0.684 0.008 0.676 0.000 0.729
B 0.686 0.098 0.615 0.000 0.729
C 0.698 0.056 0.644 -0.014 0.742
D 0.770 0.098 0.711 0.000 0.729
E 0.632 0.098 0.568 0.000 0.729
F 0.575 0.098 0.517 0.000 0.729
G 0.775 0.056 0.693 -0.014 0.742
H 0.752 0.098 0.654 0.000 0.729
I 0.295 0.098 0.197 0.000 0.729
J 0.295 -0.052 0.197 -0.200 0.729
K 0.656 0.098 0.677 0.000 0.729
L 0.557 0.098 0.552 0.000 0.729
M 0.863 0.098 0.765 0.000 0.729
N 0.748 0.098 0.650 0.000 0.729
O 0.787 0.056 0.731 -0.014 0.742
P 0.603 0.098 0.569 0.000 0.729
Q 0.787 0.056 0.731 -0.129 0.742
R 0.695 0.098 0.666 0.000 0.729
S 0.635 0.066 0.579 -0.014 0.742
T 0.611 -0.003 0.614 0.000 0.729
U 0.732 0.087 0.645 -0.014 0.729
V 0.684 0.008 0.676 0.000 0.729
W 0.989 0.033 0.956 0.000 0.729
X 0.685 0.030 0.654 0.000 0.729
Y 0.611 -0.002 0.613 0.000 0.729
Z 0.685 0.045 0.640 0.000 0.729
0 0.636 0.066 0.570 -0.014 0.742
1 0.636 0.110 0.544 0.000 0.729
2 0.636 0.073 0.536 0.000 0.742
3 0.636 0.076 0.556 -0.014 0.742
4 0.636 0.049 0.580 0.000 0.729
5 0.636 0.077 0.549 -0.014 0.729
6 0.636 0.070 0.573 -0.014 0.742
7 0.636 0.082 0.551 0.000 0.729
8 0.636 0.068 0.568 -0.014 0.742
9 0.636 0.063 0.566 -0.014 0.742
_ 0.500 -0.010 0.510 -0.236 -0.166
' 0.275 0.096 0.179 0.458 0.729
√ 0.637 0.030 0.637 -0.020 0.811
° 0.500 0.095 0.405 0.432 0.742
. 0.318 0.107 0.210 0.000 0.124
/ 0.337 0.000 0.337 -0.093 0.729
- 0.361 0.049 0.312 0.234 0.314
+ 0.838 0.106 0.732 0.000 0.627
( 0.390 0.086 0.310 -0.132 0.759
) 0.390 0.080 0.304 -0.132 0.759
π 0.602 0.036 0.574 -0.019 0.547
, 0.318 0.077 0.220 -0.116 0.124
"""

_METRICS: dict[str, tuple[float, ...]] = {
    row[0]: tuple(float(v) for v in row[1:])
    for row in (line.split(" ") for line in _TABLE.strip().splitlines())
}
#: Metrics assumed for a character missing from the table: wide and tall, so boxes stay safe.
_UNKNOWN = (0.75, 0.0, 0.75, -0.24, 0.78)


@dataclass(frozen=True)
class TextExtent:
    """Ink extent of a one-line text in pixels, relative to its origin (pen start on the
    baseline), y up: ``x0 < x1`` horizontally, ``y0 < y1`` vertically (``y0`` negative below
    the baseline)."""

    x0: float
    x1: float
    y0: float
    y1: float


def text_extent(text: str, font_px: float) -> TextExtent:
    """Ink extent of ``text`` drawn in :data:`FONT_FAMILY` at ``font_px`` pixels per em,
    ignoring kerning. Raises ValueError for an empty text."""
    if not text:
        raise ValueError("cannot measure an empty label")
    pen = 0.0
    x0 = y0 = float("inf")
    x1 = y1 = float("-inf")
    for ch in text:
        adv, gx0, gx1, gy0, gy1 = _METRICS.get(ch, _UNKNOWN)
        x0, x1 = min(x0, pen + gx0), max(x1, pen + gx1)
        y0, y1 = min(y0, gy0), max(y1, gy1)
        pen += adv
    return TextExtent(x0 * font_px, x1 * font_px, y0 * font_px, y1 * font_px)
