"""The built-in construction table.

One row per construction: signature, new points, preconditions, guaranteed facts, sketch.
The first block has AlphaGeometry's 68 constructions with their names, parameter orders and
meanings (``google-deepmind/alphageometry``, ``defs.txt``); the second has Newclid's extras
(``LMCRC/Newclid``, ``src/newclid/default_configs/defs.txt``). AlphaGeometry's ``;`` between
fact groups is flattened: every listed fact holds once the construction is placed.
"""

from __future__ import annotations

from geoforge.constructions import register_construction as C

# fmt: off

# --- AlphaGeometry (defs.txt) --------------------------------------------------------------
AG = "alphageometry"
C("angle_bisector x a b c", "x", pre="ncoll a b c", facts="eqangle b a b x b x b c", sketch="bisect a b c", source=AG,
  doc="x on the bisector of ∠abc")
C("angle_mirror x a b c", "x", pre="ncoll a b c", facts="eqangle b a b c b c b x", sketch="amirror a b c", source=AG,
  doc="x on the mirror of ray ba in line bc")
C("circle x a b c", "x", pre="ncoll a b c", facts="cong x a x b, cong x b x c", sketch="bline a b, bline a c", source=AG,
  doc="x is the centre of the circle through a, b, c")
C("circumcenter x a b c", "x", pre="ncoll a b c", facts="cong x a x b, cong x b x c", sketch="bline a b, bline a c", source=AG,
  doc="x is the circumcentre of triangle abc")
C("eq_quadrangle a b c d", "a b c d", facts="cong d a b c", sketch="eq_quadrangle", source=AG,
  doc="quadrangle abcd with |ad| = |bc|")
C("eq_trapezoid a b c d", "a b c d", facts="para d c a b, cong d a b c", sketch="eq_trapezoid", source=AG,
  doc="isosceles trapezoid abcd, ab ∥ cd")
C("eq_triangle x b c", "x", pre="diff b c", facts="cong x b b c, cong b c c x, eqangle b x b c c b c x, eqangle x c x b b x b c", sketch="circle b b c, circle c b c", source=AG,
  doc="x makes triangle xbc equilateral")
C("eqangle2 x a b c", "x", pre="ncoll a b c", facts="eqangle a b a x c x c b", sketch="eqangle2 a b c", source=AG,
  doc="x with ∠(ab, ax) = ∠(cx, cb)")
C("eqdia_quadrangle a b c d", "a b c d", facts="cong d b a c", sketch="eqdia_quadrangle", source=AG,
  doc="quadrangle abcd with equal diagonals")
C("eqdistance x a b c", "x", pre="diff b c", facts="cong x a b c", sketch="circle a b c", source=AG,
  doc="x at distance |bc| from a")
C("foot x a b c", "x", pre="ncoll a b c", facts="perp x a b c, coll x b c", sketch="tline a b c, line b c", source=AG,
  doc="x is the foot of the perpendicular from a to bc")
C("free a", "a", sketch="free", source=AG,
  doc="a free point")
C("incenter x a b c", "x", pre="ncoll a b c", facts="eqangle a b a x a x a c, eqangle c a c x c x c b, eqangle b c b x b x b a", sketch="incenter a b c", source=AG,
  doc="x is the incentre of triangle abc")
C("incenter2 x y z i a b c", "x y z i", pre="ncoll a b c", facts="eqangle a b a i a i a c, eqangle c a c i c i c b, eqangle b c b i b i b a, coll x b c, perp i x b c, coll y c a, perp i y c a, coll z a b, perp i z a b, cong i x i y, cong i y i z", sketch="incenter2 a b c", source=AG,
  doc="i is the incentre of abc; x, y, z its touch points on bc, ca, ab")
C("excenter x a b c", "x", pre="ncoll a b c", facts="eqangle a b a x a x a c, eqangle c a c x c x c b, eqangle b c b x b x b a", sketch="excenter a b c", source=AG,
  doc="x is the excentre of abc opposite a")
C("excenter2 x y z i a b c", "x y z i", pre="ncoll a b c", facts="eqangle a b a i a i a c, eqangle c a c i c i c b, eqangle b c b i b i b a, coll x b c, perp i x b c, coll y c a, perp i y c a, coll z a b, perp i z a b, cong i x i y, cong i y i z", sketch="excenter2 a b c", source=AG,
  doc="i is the excentre opposite a; x, y, z its touch points on bc, ca, ab")
C("centroid x y z i a b c", "x y z i", pre="ncoll a b c", facts="coll x b c, cong x b x c, coll y c a, cong y c y a, coll z a b, cong z a z b, coll a x i, coll b y i, coll c z i", sketch="centroid a b c", source=AG,
  doc="x, y, z are the midpoints of bc, ca, ab; i is the centroid")
C("ninepoints x y z i a b c", "x y z i", pre="ncoll a b c", facts="coll x b c, cong x b x c, coll y c a, cong y c y a, coll z a b, cong z a z b, cong i x i y, cong i y i z", sketch="ninepoints a b c", source=AG,
  doc="x, y, z are the midpoints of bc, ca, ab; i is the nine-point centre")
C("intersection_cc x o w a", "x", pre="ncoll o w a", facts="cong o a o x, cong w a w x", sketch="cc_other o w a", draws="circle o a, circle w a", source=AG,
  doc="x is the second meeting point of the circles about o and w through a")
C("intersection_lc x a o b", "x", pre="diff a b, diff o b, nperp b o b a", facts="coll x a b, cong o b o x", sketch="lc_other a o b", draws="circle o b", source=AG,
  doc="x is the second point where line ab meets the circle about o through b")
C("intersection_ll x a b c d", "x", pre="npara a b c d, ncoll a b c d", facts="coll x a b, coll x c d", sketch="line a b, line c d", source=AG,
  doc="x is where lines ab and cd meet")
C("intersection_lp x a b c m n", "x", pre="npara m n a b, ncoll a b c, ncoll c m n", facts="coll x a b, para c x m n", sketch="line a b, pline c m n", source=AG,
  doc="x is on ab and on the parallel to mn through c")
C("intersection_lt x a b c d e", "x", pre="ncoll a b c, nperp a b d e", facts="coll x a b, perp x c d e", sketch="line a b, tline c d e", source=AG,
  doc="x is on ab and on the perpendicular to de through c")
C("intersection_pp x a b c d e f", "x", pre="diff a d, npara b c e f", facts="para x a b c, para x d e f", sketch="pline a b c, pline d e f", source=AG,
  doc="x is on the parallel to bc through a and to ef through d")
C("intersection_tt x a b c d e f", "x", pre="diff a d, npara b c e f", facts="perp x a b c, perp x d e f", sketch="tline a b c, tline d e f", source=AG,
  doc="x is on the perpendicular to bc through a and to ef through d")
C("iso_triangle a b c", "a b c", facts="eqangle b a b c c b c a, cong a b a c", sketch="iso_triangle", source=AG,
  doc="isosceles triangle with apex a")
C("lc_tangent x a o", "x", pre="diff a o", facts="perp a x a o", sketch="tline a a o", draws="circle o a", source=AG,
  doc="x on the tangent at a to a circle about o")
C("midpoint x a b", "x", pre="diff a b", facts="coll x a b, cong x a x b, midp x a b", sketch="midp a b", source=AG,
  doc="x is the midpoint of ab")
C("mirror x a b", "x", pre="diff a b", facts="coll x a b, cong b a b x", sketch="pmirror a b", source=AG,
  doc="x is the mirror of a through b")
C("nsquare x a b", "x", pre="diff a b", facts="cong x a a b, perp x a a b", sketch="rotaten90 a b", source=AG,
  doc="x is b turned −90° about a")
C("on_aline x a b c d e", "x", pre="ncoll c d e", facts="eqangle a x a b d c d e", sketch="aline a b c d e", source=AG,
  doc="x with ∠(ax, ab) = ∠(dc, de)")
C("on_aline2 x a b c d e", "x", pre="ncoll c d e", facts="eqangle x a x b d c d e", sketch="aline2 a b c d e", source=AG,
  doc="x with ∠(xa, xb) = ∠(dc, de)")
C("on_bline x a b", "x", pre="diff a b", facts="cong x a x b, eqangle a x a b b a b x", sketch="bline a b", source=AG,
  doc="x on the perpendicular bisector of ab")
C("on_circle x o a", "x", pre="diff o a", facts="cong o x o a", sketch="circle o o a", draws="circle o a", source=AG,
  doc="x on the circle about o through a")
C("on_line x a b", "x", pre="diff a b", facts="coll x a b", sketch="line a b", source=AG,
  doc="x on line ab")
C("on_pline x a b c", "x", pre="diff b c, ncoll a b c", facts="para x a b c", sketch="pline a b c", source=AG,
  doc="x on the parallel to bc through a")
C("on_tline x a b c", "x", pre="diff b c", facts="perp x a b c", sketch="tline a b c", source=AG,
  doc="x on the perpendicular to bc through a")
C("orthocenter x a b c", "x", pre="ncoll a b c", facts="perp x a b c, perp x b c a, perp x c a b", sketch="tline a b c, tline b c a", source=AG,
  doc="x is the orthocentre of abc")
C("parallelogram a b c x", "x", pre="ncoll a b c", facts="para a b c x, para a x b c, cong a b c x, cong a x b c", sketch="parallelogram a b c", source=AG,
  doc="x completes the parallelogram abcx")
C("pentagon a b c d e", "a b c d e", sketch="pentagon", source=AG,
  doc="a convex pentagon")
C("psquare x a b", "x", pre="diff a b", facts="cong x a a b, perp x a a b", sketch="rotatep90 a b", source=AG,
  doc="x is b turned +90° about a")
C("quadrangle a b c d", "a b c d", sketch="quadrangle", source=AG,
  doc="a convex quadrangle")
C("r_trapezoid a b c d", "a b c d", facts="para a b c d, perp a b a d", sketch="r_trapezoid", source=AG,
  doc="right trapezoid, ab ∥ cd, right angle at a")
C("r_triangle a b c", "a b c", facts="perp a b a c", sketch="r_triangle", source=AG,
  doc="right angle at a")
C("rectangle a b c d", "a b c d", facts="perp a b b c, para a b c d, para a d b c, perp a b a d, cong a b c d, cong a d b c, cong a c b d", sketch="rectangle", source=AG,
  doc="rectangle abcd")
C("reflect x a b c", "x", pre="diff b c, ncoll a b c", facts="cong b a b x, cong c a c x, perp b c a x", sketch="reflect a b c", source=AG,
  doc="x is the mirror of a in line bc")
C("risos a b c", "a b c", facts="perp a b a c, cong a b a c, eqangle b a b c c b c a", sketch="risos", source=AG,
  doc="right isosceles triangle, right angle at a")
C("s_angle a b x y", "x", literals="y", pre="diff a b", facts="s_angle a b x y", sketch="s_angle a b y", source=AG,
  doc="x on the line through b at y degrees from ba")
C("segment a b", "a b", sketch="segment", source=AG,
  doc="a free segment")
C("shift x b c d", "x", pre="diff d b", facts="cong x b c d, cong x c b d", sketch="shift b c d", source=AG,
  doc="x = b + c − d")
C("square a b x y", "x y", pre="diff a b", facts="perp a b b x, cong a b b x, para a b x y, para a y b x, perp a y y x, cong b x x y, cong x y y a, perp a x b y, cong a x b y", sketch="square a b", source=AG,
  doc="abxy is a square on side ab")
C("isquare a b c d", "a b c d", facts="perp a b b c, cong a b b c, para a b c d, para a d b c, perp a d d c, cong b c c d, cong c d d a, perp a c b d, cong a c b d", sketch="isquare", source=AG,
  doc="a free square abcd")
C("trapezoid a b c d", "a b c d", facts="para a b c d", sketch="trapezoid", source=AG,
  doc="trapezoid, ab ∥ cd")
C("triangle a b c", "a b c", sketch="triangle", source=AG,
  doc="a free triangle")
C("triangle12 a b c", "a b c", facts="rconst a b a c 1/2", sketch="triangle12", source=AG,
  doc="triangle with |ab| : |ac| = 1 : 2")
C("2l1c x y z i a b c o", "x y z i", pre="cong o a o b, ncoll a b c", facts="coll x a c, coll y b c, cong o a o z, coll i o z, cong i x i y, cong i y i z, perp i x a c, perp i y b c", sketch="two_lines_one_circle a b c o", draws="circle o a, circle i x", source=AG,
  doc="circle about i tangent to ca at x, cb at y and to the circle about o at z")
C("e5128 x y a b c d", "x y", pre="cong c b c d, perp b c b a", facts="cong c b c x, coll y a b, coll x y d, eqangle a b a d x a x y", sketch="e5128 a b c d", source=AG,
  doc="y is the midpoint of ab; x is on line dy and the circle about c through b")
C("3peq x y z a b c", "x y z", pre="ncoll a b c", facts="coll z b c, coll x a b, coll y a c, coll x y z, cong z x z y", sketch="three_peq a b c", source=AG,
  doc="z on bc is the midpoint of xy, x on ab, y on ac")
C("trisect x y a b c", "x y", pre="ncoll a b c", facts="coll x a c, coll y a c, eqangle b a b x b x b y, eqangle b x b y b y b c", sketch="trisect a b c", source=AG,
  doc="bx, by trisect ∠abc, with x, y on ac")
C("trisegment x y a b", "x y", pre="diff a b", facts="coll x a b, coll y a b, cong x a x y, cong y x y b", sketch="trisegment a b", source=AG,
  doc="x, y divide ab in three equal parts")
C("on_dia x a b", "x", pre="diff a b", facts="perp x a x b", sketch="dia a b", source=AG,
  doc="x on the circle on diameter ab")
C("ieq_triangle a b c", "a b c", facts="cong a b b c, cong b c c a, eqangle a b a c c a c b, eqangle c a c b b c b a", sketch="ieq_triangle", source=AG,
  doc="a free equilateral triangle")
C("on_opline x a b", "x", pre="diff a b", facts="coll x a b", sketch="opline a b", source=AG,
  doc="x on line ab, on the side of a away from b")
C("cc_tangent0 x y o a w b", "x y", pre="diff o a, diff w b, diff o w", facts="cong o x o a, cong w y w b, perp x o x y, perp y w y x", sketch="cc_tangent0 o a w b", draws="circle o a, circle w b", source=AG,
  doc="xy is a common tangent of the circles about o through a and about w through b")
C("cc_tangent x y z i o a w b", "x y z i", pre="diff o a, diff w b, diff o w", facts="cong o x o a, cong w y w b, perp x o x y, perp y w y x, cong o z o a, cong w i w b, perp z o z i, perp i w i z", sketch="cc_tangent o a w b", draws="circle o a, circle w b", source=AG,
  doc="xy and zi are the external common tangents of two circles")
C("eqangle3 x a b d e f", "x", pre="ncoll d e f, diff a b, diff d e, diff e f", facts="eqangle x a x b d e d f", sketch="eqangle3 a b d e f", source=AG,
  doc="x with ∠(xa, xb) = ∠(de, df)")
C("tangent x y a o b", "x y", pre="diff o a, diff o b, diff a b", facts="cong o x o b, perp a x o x, cong o y o b, perp a y o y", sketch="tangent a o b", draws="circle o b", source=AG,
  doc="ax and ay touch the circle about o through b")
C("on_circum x a b c", "x", pre="ncoll a b c", facts="cyclic a b c x", sketch="cyclic a b c", draws="circumcircle a b c", source=AG,
  doc="x on the circumcircle of abc")

# --- Newclid extras (LMCRC/Newclid defs.txt) -------------------------------------------------
NC = "newclid"
C("iso_trapezoid a b c d", "a b c d", facts="para d c a b, cong d a b c", sketch="eq_trapezoid", source=NC,
  doc="isosceles trapezoid abcd, ab ∥ cd")
C("on_pline0 x a b c", "x", pre="diff b c", facts="para x a b c", sketch="pline a b c", source=NC,
  doc="x on the parallel to bc through a (a may lie on bc)")
C("iso_triangle0 a b c", "a b c", facts="cong a b a c", sketch="iso_triangle", source=NC,
  doc="isosceles, apex a")
C("iso_triangle_vertex x b c", "x", pre="diff b c", facts="cong x b x c", sketch="bline b c", source=NC,
  doc="x is the apex of an isosceles triangle on bc")
C("iso_triangle_vertex_angle x b c", "x", pre="diff b c", facts="eqangle x b b c b c x c", sketch="bline b c", source=NC,
  doc="x is the apex of an isosceles triangle on bc")
C("on_aline0 x a b c d e f g", "x", pre="ncoll a b c d", facts="eqangle a b c d e f g x", sketch="aline0 a b c d e f g", source=NC,
  doc="x with ∠(ab, cd) = ∠(ef, gx)")
C("eqratio x a b c d e f g", "x", pre="diff a b, diff c d, diff e f", facts="eqratio a b c d e f g x", sketch="eqratio a b c d e f g", source=NC,
  doc="x with |ab|/|cd| = |ef|/|gx|")
C("eqratio6 x a c e f g h", "x", pre="diff e f, diff g h", facts="eqratio a x c x e f g h", sketch="eqratio6 a c e f g h", source=NC,
  doc="x with |ax|/|cx| = |ef|/|gh|")
C("rconst a b c x r", "x", literals="r", pre="diff a b", facts="rconst a b c x r", sketch="rconst a b c r", source=NC,
  doc="x with |ab|/|cx| = r")
C("rconst2 x a b r", "x", literals="r", pre="diff a b", facts="rconst x a x b r", sketch="rconst2 a b r", source=NC,
  doc="x with |xa|/|xb| = r")
C("aconst a b c x r", "x", literals="r", pre="diff a b", facts="aconst a b c x r", sketch="aconst a b c r", source=NC,
  doc="x with directed ∠(ab, cx) = r (2pi/3 is radians, 60 degrees)")
C("lconst x a l", "x", literals="l", facts="lconst x a l", sketch="lconst a l", source=NC,
  doc="x at distance l from a")
C("iso_trapezoid2 x a b c", "x", pre="ncoll a b c", facts="cong x b a c, cong x a b c", sketch="iso_trapezoid2 a b c", source=NC,
  doc="x is c mirrored in the perpendicular bisector of ab: |xb| = |ac|, |xa| = |bc|")
C("l2const x a l", "x", literals="l", facts="l2const x a l", sketch="l2const a l", source=NC,
  doc="x with |xa|² = l")
C("r2const a b c x r", "x", literals="r", pre="diff a b", facts="r2const a b c x r", sketch="r2const a b c r", source=NC,
  doc="x with (|ab|/|cx|)² = r")
C("between c a b", "c a b", facts="coll a b c, obtuse_angle a c b", sketch="between", source=NC,
  doc="a free segment ab and c strictly between a and b")
C("between_bound x a b", "x", pre="diff a b", facts="coll a b x, obtuse_angle a x b", sketch="between_bound a b", source=NC,
  doc="x strictly between a and b")
C("acute_triangle a b c", "a b c", sketch="acute_triangle", source=NC,
  doc="a free triangle whose angles are all acute")
C("cc_itangent x y z i o a w b", "x y z i", pre="diff o a, diff w b, diff o w", facts="cong o x o a, cong w y w b, perp x o x y, perp y w y x, cong o z o a, cong w i w b, perp z o z i, perp i w i z", sketch="cc_itangent o a w b", draws="circle o a, circle w b", source=NC,
  doc="xy and zi are the internal common tangents of the circles about o through a and about w through b")
C("simtri r a b c p q", "r", pre="ncoll a b c, diff p q", facts="simtri a b c p q r", sketch="simtri a b c p q", source=NC,
  doc="r makes pqr directly similar to abc")
C("simtrir r a b c p q", "r", pre="ncoll a b c, diff p q", facts="simtrir a b c p q r", sketch="simtrir a b c p q", source=NC,
  doc="r makes pqr similar to abc, mirrored")
C("contri q r a b c p", "q r", pre="ncoll a b c", facts="contri a b c p q r", sketch="contri a b c p", source=NC,
  doc="q, r make pqr congruent to abc (turned about p)")
C("contrir q r a b c p", "q r", pre="ncoll a b c", facts="contrir a b c p q r", sketch="contrir a b c p", source=NC,
  doc="q, r make pqr congruent to abc, mirrored")
