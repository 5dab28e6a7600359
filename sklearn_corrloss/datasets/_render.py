"""Parametric face renderer and imaging chain for the synthetic AU data set (private).

A face is described in *face units*: origin between the eyes and the mouth, ``x`` to the
image right, ``y`` down, the head about two units wide. Every Action Unit moves its own
anatomical region with graded intensity ``a`` in [0, 1] (FACS intensity / 5), following the
appearance changes described in the FACS manual (Ekman, Friesen and Hager 2002):

====  ==================================================================================
AU01  inner brow corners up, short wrinkles across the centre of the forehead
AU02  outer brows up (arched), wrinkles over the lateral forehead
AU04  brows lowered and drawn together, vertical furrows between the brows
AU05  upper lid raised, more sclera shows above the iris
AU06  cheeks raised, lower lid pushed up, crow's feet, infraorbital furrow
AU07  lids tightened, lower lid raised and straightened with a bulge below it
AU09  nose wrinkled, nostril wings raised, inner brows pulled down a little
AU10  upper lip raised (angular shape), nostril wings up, deeper nasolabial furrow
AU12  lip corners pulled up and out, deeper nasolabial furrow, cheeks lifted
AU14  lip corners tightened inwards, dimples beside the corners
AU15  lip corners pulled down
AU17  chin boss pushed up: lower lip raised, chin wrinkles, deeper mentolabial furrow
AU23  lips tightened: narrower red parts, shorter mouth, sharper lip margins
AU24  lips pressed: thin straight red parts, bulges above and below the lips
AU25  lips parted (teeth show)
AU26  jaw dropped (mouth opens, chin lowers)
AU43  eyes closed
====  ==================================================================================

Drawing is plain OpenCV (anti-aliased polygons and polylines with sub-pixel coordinates).
Every point of one head is projected at once, both sides of the face are computed together,
and what does not move with the AUs (hair, ears, glasses, body) is built once per subject.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Every AU the generator simulates; ``make_au_faces(aus=...)`` picks columns from these.
ALL_AUS = (
    "AU01",
    "AU02",
    "AU04",
    "AU05",
    "AU06",
    "AU07",
    "AU09",
    "AU10",
    "AU12",
    "AU14",
    "AU15",
    "AU17",
    "AU23",
    "AU24",
    "AU25",
    "AU26",
    "AU43",
)
AU_INDEX = {name: i for i, name in enumerate(ALL_AUS)}
(_I01, _I02, _I04, _I05, _I06, _I07, _I09, _I10, _I12, _I14, _I15, _I17, _I23, _I24, _I25,
 _I26, _I43) = range(len(ALL_AUS))  # fmt: skip

_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_ONE = 1 << _SHIFT
_LINE = cv2.LINE_AA

# RGB palettes (images are RGB, as everywhere in the package).
_SKIN = np.array(
    [
        [250, 221, 196],
        [241, 194, 167],
        [226, 175, 140],
        [205, 150, 110],
        [176, 120, 84],
        [140, 92, 62],
        [105, 68, 46],
        [80, 54, 40],
    ],
    dtype=np.float64,
)
_HAIR = np.array(
    [
        [28, 24, 24],
        [55, 38, 28],
        [95, 64, 40],
        [150, 110, 65],
        [205, 175, 115],
        [140, 64, 36],
        [150, 150, 150],
        [215, 215, 210],
    ],
    dtype=np.float64,
)
_HAIR_P = np.array([0.28, 0.24, 0.16, 0.08, 0.08, 0.05, 0.07, 0.04])
_IRIS = np.array([[70, 45, 30], [95, 65, 40], [70, 110, 150], [80, 115, 80], [40, 30, 25]])
_SCLERA = (236, 234, 228)
_MOUTH_INSIDE = (70, 25, 30)
_TEETH = (235, 232, 220)
_PUPIL = (15, 12, 12)

_T7 = np.linspace(0.0, 1.0, 7)
_T9 = np.linspace(0.0, 1.0, 9)
_SIN9 = np.sin(np.pi * _T9)
_SIDES = np.array([-1.0, 1.0])
_BASIS = {  # quadratic Bezier basis per number of samples
    n: np.column_stack([(1 - t) ** 2, 2 * (1 - t) * t, t**2]) for n, t in ((7, _T7), (9, _T9))
}
_CIRCLE = {
    n: (np.cos(np.linspace(0, 2 * np.pi, n, endpoint=False)),
        np.sin(np.linspace(0, 2 * np.pi, n, endpoint=False)))
    for n in (6, 8, 24, 40)
}  # fmt: skip


def _mix(color, target, alpha):
    """Colour ``alpha`` of the way from ``color`` to ``target`` (tuples), as int tuple."""
    a = 0.0 if alpha < 0.0 else (1.0 if alpha > 1.0 else float(alpha))
    return tuple(int(c + (t - c) * a) for c, t in zip(color, target))


def _col(color):
    return tuple(int(min(max(float(c), 0.0), 255.0)) for c in color)


def _curves(p0, pm, p2, n=7):
    """Quadratic curves from ``p0`` through ``pm`` (at t = 0.5) to ``p2``.

    Each argument has shape (..., 2); the result has shape (..., n, 2).
    """
    p0, pm, p2 = np.asarray(p0, float), np.asarray(pm, float), np.asarray(p2, float)
    ctrl = np.empty((*p0.shape[:-1], 3, 2))
    ctrl[..., 0, :] = p0
    ctrl[..., 1, :] = 2.0 * pm - 0.5 * (p0 + p2)
    ctrl[..., 2, :] = p2
    return _BASIS[n] @ ctrl


def _lr(x, y):
    """The point ``(x, y)`` mirrored: ``[[-x, y], [x, y]]`` (left and right side)."""
    return np.array([[-x, y], [x, y]], dtype=float)


def _ellipse(cx, cy, rx, ry, n=24):
    cos, sin = _CIRCLE[n]
    out = np.empty((n, 2))
    out[:, 0] = cx + rx * cos
    out[:, 1] = cy + ry * sin
    return out


def _ribbons(centre, half_widths):
    """Closed polygons of strokes of varying width along centre lines (..., n, 2)."""
    d = np.empty_like(centre)
    d[..., 1:-1, :] = centre[..., 2:, :] - centre[..., :-2, :]
    d[..., 0, :] = centre[..., 1, :] - centre[..., 0, :]
    d[..., -1, :] = centre[..., -1, :] - centre[..., -2, :]
    normal = np.empty_like(d)
    normal[..., 0], normal[..., 1] = -d[..., 1], d[..., 0]
    normal /= np.maximum(np.sqrt((normal * normal).sum(axis=-1, keepdims=True)), 1e-9)
    offset = normal * np.asarray(half_widths, float)[:, None]
    return np.concatenate([centre + offset, (centre - offset)[..., ::-1, :]], axis=-2)


def sample_identity(rng: np.random.Generator) -> dict:
    """Draw the appearance of one subject (shape, proportions, colours, hair, glasses)."""
    skin = _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.94, 1.05, 3)
    hair = _HAIR[rng.choice(len(_HAIR), p=_HAIR_P)] * rng.uniform(0.9, 1.1, 3)
    male = rng.random() < 0.5
    style = str(rng.choice(["short", "long", "bald", "fringe"], p=[0.4, 0.35, 0.08, 0.17]))
    if male and style == "long":
        style = "short" if rng.random() < 0.6 else "long"
    lip = skin * np.array([0.86, 0.62, 0.62]) + np.array([30, 5, 10])
    if not male and rng.random() < 0.3:
        lip = np.array([170, 45, 60]) * rng.uniform(0.8, 1.1)
    shade = skin * rng.uniform(0.72, 0.82)
    brow = hair * 0.75 if hair.mean() < 120 else skin * 0.45 + hair * 0.2
    glasses = (_HAIR[0] if rng.random() < 0.6 else np.array([170, 150, 110])) * rng.uniform(
        0.8, 1.2
    )
    palette = {
        "skin": skin,
        "shade": shade,
        "wrinkle": shade * 0.8,
        "fold": shade * 0.85,
        "deep": shade * 0.7,
        "nostril": shade * 0.45,
        "ear": shade * 1.08,
        "neck": skin * 0.85,
        "cheek": skin * np.array([1.07, 0.92, 0.9]) + 12,
        "hair": hair,
        "beard": hair * 0.9,
        "lash": hair * 0.5,
        "brow": brow,
        "lip_u": lip,
        "lip_l": lip * 1.05,
        "lip_line": lip * 0.45,
        "lip_edge": lip * 0.55,
        "iris": _IRIS[rng.integers(len(_IRIS))] * rng.uniform(0.9, 1.1),
        "glasses": glasses,
        "cloth": rng.uniform(20, 230, 3),
    }
    return {
        "pal": {k: _col(v) for k, v in palette.items()},
        "fw": rng.uniform(0.86, 1.0),  # half-width of the head
        "fh": rng.uniform(1.22, 1.38),  # half-height of the head
        "jaw": rng.uniform(0.12, 0.38),  # narrowing towards the chin
        "style": style,
        "hairline": rng.uniform(-0.98, -0.74) if style != "fringe" else rng.uniform(-0.62, -0.5),
        "part": rng.uniform(-0.4, 0.4),
        "ex": rng.uniform(0.3, 0.37),  # eye centre |x|
        "ey": rng.uniform(-0.09, 0.0),
        "ew": rng.uniform(0.15, 0.19),  # eye half-width
        "eo": rng.uniform(0.055, 0.085),  # upper-lid opening
        "tilt": rng.uniform(-0.02, 0.03),
        "by": rng.uniform(0.2, 0.28),  # brow height above the eye
        "bt": rng.uniform(0.028, 0.05),  # brow half-thickness
        "barch": rng.uniform(0.0, 0.06),
        "blen": rng.uniform(0.52, 0.62),
        "tip": rng.uniform(0.3, 0.42),  # nose tip y
        "nw": rng.uniform(0.1, 0.15),
        "my": rng.uniform(0.68, 0.78),  # mouth y
        "mw": rng.uniform(0.24, 0.31),  # mouth half-width
        "lu": rng.uniform(0.035, 0.06),  # upper lip height
        "ll": rng.uniform(0.05, 0.085),  # lower lip height
        "rest": rng.uniform(-0.025, 0.02),  # resting corner height (negative: up)
        "glasses": rng.random() < 0.2,
        "mustache": male and rng.random() < 0.12,
        "beard": male and rng.random() < 0.08,
        "ear": rng.uniform(0.85, 1.15),
        "nasolabial": rng.uniform(0.05, 0.25),
    }


class _Scene:
    """Display list in face units, projected in one go, then drawn with OpenCV."""

    def __init__(self):
        self.items = []  # (kind, points, colour, thickness_units, z_extra, surface)

    def poly(self, pts, color, z=0.0, surface=True):
        self.items.append(("poly", pts, color, 0.0, z, surface))

    def line(self, pts, color, thick, z=0.0, surface=True, closed=False):
        self.items.append(("closed" if closed else "line", pts, color, thick, z, surface))

    def draw(self, img, project, scale):
        items = self.items
        counts = [len(it[1]) for it in items]
        pts = np.concatenate([np.asarray(it[1], float).reshape(-1, 2) for it in items])
        z = np.repeat([it[4] for it in items], counts)
        surface = np.repeat([it[5] for it in items], counts)
        fixed = np.round(project(pts, z, surface) * _ONE).astype(np.int32)
        start = 0
        for (kind, _, color, thick, _, _), n in zip(items, counts):
            p = fixed[start : start + n]
            start += n
            if kind == "poly":
                cv2.fillPoly(img, [p], color, _LINE, _SHIFT)
            else:
                t = max(1, round(thick * scale))
                cv2.polylines(img, [p], kind == "closed", color, t, _LINE, _SHIFT)


def make_projection(idt, yaw, pitch, roll, scale, cx, cy):
    """Orthographic projection of face-unit points with a head pose (radians).

    Surface points get a depth from an ellipsoid-like head, so that yaw and pitch shift the
    features against the silhouette; ``z_extra`` lifts the nose and the glasses.
    """
    fw, fh = idt["fw"], idt["fh"]
    cyaw, syaw, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll) * scale, np.sin(roll) * scale

    def project(pts, z_extra, surface):
        x, y = pts[:, 0], pts[:, 1]
        zb = 0.7 * np.sqrt(np.clip(1.0 - (x / fw) ** 2 - 0.3 * (y / fh) ** 2, 0.0, 1.0))
        z = np.where(surface, zb, 0.0) + z_extra
        x1 = x * cyaw + z * syaw
        y1 = y * cp - (z * cyaw - x * syaw) * sp
        out = np.empty_like(pts)
        out[:, 0] = cx + x1 * cr - y1 * sr
        out[:, 1] = cy + x1 * sr + y1 * cr
        return out

    return project


_OUT_COS, _OUT_SIN = _CIRCLE[40]


def head_outline(idt, a):
    """Closed outline of the head (skin); a jaw drop (AU26, AU25) lowers the chin."""
    fw, fh, jaw = idt["fw"], idt["fh"], idt["jaw"]
    out = np.empty((40, 2))
    out[:, 0] = fw * _OUT_COS * (1.0 - jaw * np.clip(_OUT_SIN, 0, None) ** 2)
    y = fh * _OUT_SIN
    drop = 0.16 * a[_I26] + 0.04 * a[_I25]
    out[:, 1] = y + drop * np.clip((y - 0.2) / (fh - 0.2), 0, 1)
    return out


def _static_parts(idt):
    """Items that do not move with the AUs, built once per subject and cached."""
    if "_static" in idt:
        return idt["_static"]
    pal, fw, fh, style = idt["pal"], idt["fw"], idt["fh"], idt["style"]
    skin, shade = pal["skin"], pal["shade"]
    back, mid, front = _Scene(), _Scene(), _Scene()
    if style == "long":
        top = _ellipse(0.0, -0.12, fw * 1.22, fh * 1.12)
        top = top[top[:, 1] < 0.2]
        top = top[np.argsort(np.arctan2(top[:, 1], top[:, 0]))]
        back.poly(
            np.vstack([[[fw * 1.25, 1.75]], top[top[:, 0] > 0], top[top[:, 0] <= 0],
                       [[-fw * 1.25, 1.75]]]),
            pal["hair"], z=-0.4, surface=False,
        )  # fmt: skip
    elif style != "bald":
        back.poly(_ellipse(0.0, -0.14, fw * 1.07, fh * 1.02), pal["hair"], z=-0.2, surface=False)
    for sgn in (-1.0, 1.0):
        ear = idt["ear"]
        back.poly(
            _ellipse(sgn * fw * 0.97, idt["ey"] + 0.12, 0.11 * ear, 0.22 * ear),
            pal["ear"],
            surface=False,
        )
    # soft shading: eye sockets, the side of the nose
    outline = head_outline(idt, np.zeros(len(ALL_AUS)))
    for sgn in (-1.0, 1.0):
        mid.poly(
            _ellipse(sgn * idt["ex"], idt["ey"] - 0.08, idt["ew"] * 1.35, 0.11),
            _mix(skin, shade, 0.22),
        )
    ey, tip = idt["ey"], idt["tip"]
    mid.line(
        _curves([0.06, ey + 0.08], [0.085, (ey + tip) / 2], [0.07, tip - 0.08]),
        _mix(skin, shade, 0.45),
        0.02,
        z=0.1,
    )
    if style != "bald":  # the cap between the head outline and the hairline
        big = outline * np.array([1.05, 1.04])
        xs = np.linspace(-fw * 1.05, fw * 1.05, 9)
        arch = idt["hairline"] + 0.18 * (xs / fw) ** 2
        if style == "short":
            arch = arch + 0.05 * np.abs(xs - idt["part"])
        elif style == "fringe":
            arch = arch + 0.05 * np.cos(xs * 14.0)
        cap = big[big[:, 1] < np.interp(big[:, 0], xs, arch)]
        cap = cap[np.argsort(np.arctan2(cap[:, 1], cap[:, 0]))]
        front.poly(np.vstack([cap, np.column_stack([xs, arch])[::-1]]), pal["hair"])
    if idt["glasses"]:
        ex, ew = idt["ex"], idt["ew"]
        for sgn in (-1.0, 1.0):
            front.line(
                _ellipse(sgn * ex, ey + 0.01, ew * 1.45, ew * 1.05),
                pal["glasses"],
                0.022,
                z=0.22,
                closed=True,
            )
        front.line(
            np.array([[-ex + ew * 1.45, ey - 0.01], [ex - ew * 1.45, ey - 0.01]]),
            pal["glasses"],
            0.022,
            z=0.22,
        )
    body = _Scene()
    body.poly(
        np.array([[-0.42, 0.7], [0.42, 0.7], [0.46, 1.9], [-0.46, 1.9]]),
        pal["neck"],
        surface=False,
    )
    body.poly(
        np.array([[-0.5, 1.45], [0.5, 1.45], [1.5, 1.85], [1.7, 3.0], [-1.7, 3.0], [-1.5, 1.85]]),
        pal["cloth"],
        surface=False,
    )
    idt["_static"] = {"back": back.items, "mid": mid.items, "front": front.items, "body": body}
    return idt["_static"]


def draw_body(img, idt, scale, centre):
    """Neck and shoulders (they do not follow the head pose)."""
    project = make_projection(idt, 0.0, 0.0, 0.0, scale, centre[0], centre[1])
    _static_parts(idt)["body"].draw(img, project, scale)


def _brows(sc: _Scene, idt, a):
    a1, a2, a4, a9 = a[_I01], a[_I02], a[_I04], a[_I09]
    pal = idt["pal"]
    skin, wrinkle = pal["skin"], pal["wrinkle"]
    base = idt["ey"] - idt["by"]
    xi, xo = 0.1 - 0.05 * a4, 0.1 + idt["blen"]
    inner = _lr(xi, base - 0.2 * a1 + 0.13 * a4 + 0.05 * a9)
    mid = _lr((xi + xo) / 2, base - idt["barch"] - 0.06 * a1 - 0.15 * a2 + 0.08 * a4)
    outer = _lr(xo, base + 0.04 - 0.15 * a2 + 0.02 * a4)
    brows = _ribbons(_curves(inner, mid, outer), idt["bt"] * np.linspace(1.25, 0.55, 7))
    sc.poly(brows[0], pal["brow"])
    sc.poly(brows[1], pal["brow"])
    if a4 > 0.05:  # vertical furrows between the brows
        x, y0 = 0.05 + 0.02 * a4, inner[0, 1]
        furrows = np.array([[[-x, y0 + 0.02], [-0.8 * x, y0 - 0.13 * a4]],
                            [[x, y0 + 0.02], [0.8 * x, y0 - 0.13 * a4]]])  # fmt: skip
        color = _mix(skin, wrinkle, a4 + 0.1)
        sc.line(furrows[0], color, 0.024)
        sc.line(furrows[1], color, 0.024)
    rows = (base - 0.14 - 0.075 * np.arange(3))[:, None]
    if a1 > 0.05:  # central forehead wrinkles
        one = np.ones_like(rows)
        lines = _curves(np.hstack([-0.22 * one, rows + 0.015]), np.hstack([0 * one, rows - 0.015]),
                        np.hstack([0.22 * one, rows + 0.015]))  # fmt: skip
        color = _mix(skin, wrinkle, a1 + 0.1)
        for line in lines:
            sc.line(line, color, 0.022)
    if a2 > 0.05:  # lateral forehead wrinkles
        sx = np.repeat(_SIDES, 3)[:, None]
        ry = np.tile(rows, (2, 1))
        lines = _curves(np.hstack([sx * 0.26, ry + 0.01]),
                        np.hstack([sx * 0.42, ry - 0.01 - 0.02 * a2]),
                        np.hstack([sx * 0.6, ry + 0.03]))  # fmt: skip
        color = _mix(skin, wrinkle, a2 + 0.1)
        for line in lines:
            sc.line(line, color, 0.022)


def _lid(t, ey, tilt, height, power):
    return ey - tilt * t + height * np.sin(np.pi * t) ** power


def _eyes(sc: _Scene, idt, a):
    a5, a6, a7, a9, a43 = a[_I05], a[_I06], a[_I07], a[_I09], a[_I43]
    pal = idt["pal"]
    skin = pal["skin"]
    ex, ey, ew, eo, tilt = idt["ex"], idt["ey"], idt["ew"], idt["eo"], idt["tilt"]
    hu = max(eo * (1 + 0.8 * a5 - 0.35 * a7 - 0.25 * a6 - 0.15 * a9) * (1 - a43), 0.004)
    hl = max(eo * 0.75 * (1 - 0.55 * a6 - 0.6 * a7 - 0.2 * a9) * (1 - 0.85 * a43), 0.004)
    power = 1.0 - 0.5 * a7
    xs = _SIDES[:, None] * (ex - ew + 2 * ew * _T9)  # (2, 9), inner corner first
    upper_y = _lid(_T9, ey, tilt, -hu, 0.8)
    lower_y = _lid(_T9, ey, tilt, hl, power)
    sclera = np.empty((2, 18, 2))  # upper lid, then the lower lid backwards
    sclera[:, :9, 0], sclera[:, 9:, 0] = xs, xs[:, ::-1]
    sclera[:, :9, 1], sclera[:, 9:, 1] = upper_y, lower_y[::-1]
    upper, lower = sclera[:, :9], sclera[:, 9:][:, ::-1]
    # iris and pupil, clipped to the lids
    ri = min(ew * 0.5, 0.085)
    cos, sin = _CIRCLE[24]
    radii = np.array([ri, ri * 0.45])[:, None]
    t = np.clip((ew + radii * cos) / (2 * ew), 0.0, 1.0)  # (2 radii, 24); symmetric sides
    y = np.clip(
        ey - 0.006 + radii * sin, _lid(t, ey, tilt, -hu, 0.8), _lid(t, ey, tilt, hl, power)
    )
    crease = upper[:, 1:-1].copy()
    crease[..., 1] -= 0.045 + 0.02 * a5 - 0.02 * a43
    lower_col = _mix(skin, pal["deep"], 0.7)
    crease_col = _mix(skin, pal["shade"], 0.6)
    for k, sgn in enumerate(_SIDES):
        sc.poly(sclera[k], _SCLERA)
        x = sgn * (ex + radii * cos)
        iris = np.empty((2, 24, 2))
        iris[..., 0], iris[..., 1] = x, y
        sc.poly(iris[0], pal["iris"])
        sc.poly(iris[1], _PUPIL)
        sc.line(upper[k], pal["lash"], 0.022)
        sc.line(lower[k], lower_col, 0.012)
        sc.line(crease[k], crease_col, 0.012)
    lo_y = ey + hl
    if a7 > 0.05:  # lower-lid bulge
        bulge = _curves(
            _lr(ex - ew * 0.8, lo_y + 0.02), _lr(ex, lo_y + 0.045), _lr(ex + ew * 0.8, lo_y + 0.02)
        )
        color = _mix(skin, pal["deep"], 0.9 * a7)
        sc.line(bulge[0], color, 0.018)
        sc.line(bulge[1], color, 0.018)
    if a6 > 0.05:  # infraorbital furrow and crow's feet
        furrow = _curves(
            _lr(ex - ew * 0.9, lo_y + 0.06), _lr(ex, lo_y + 0.1), _lr(ex + ew * 1.1, lo_y + 0.05)
        )
        color = _mix(skin, pal["deep"], 0.9 * a6)
        sc.line(furrow[0], color, 0.018)
        sc.line(furrow[1], color, 0.018)
        for sgn in _SIDES:
            x0 = sgn * (ex + ew + 0.03)
            for k, dy in enumerate((-0.05, 0.0, 0.05)):
                sc.line(
                    np.array([[x0, ey + dy * 0.4], [x0 + sgn * 0.1, ey + dy * (1.5 + k * 0.1)]]),
                    color,
                    0.018,
                )


def _nose_and_cheeks(sc: _Scene, idt, a, corners):
    a6, a9, a10, a12 = a[_I06], a[_I09], a[_I10], a[_I12]
    pal = idt["pal"]
    skin, shade = pal["skin"], pal["shade"]
    tip, nw, ey = idt["tip"], idt["nw"], idt["ey"]
    wing_y = tip - 0.04 * a10 - 0.05 * a9
    w = nw * (1 + 0.25 * a10 + 0.15 * a9)
    # cheeks: raised by AU6 (and a little by AU12)
    cheek = _mix(skin, pal["cheek"], 0.35 + 0.5 * a6)
    cy, ry = 0.3 - 0.12 * a6 - 0.05 * a12, 0.11 * (1 + 0.4 * a6)
    sc.poly(_ellipse(-0.5, cy, 0.19, ry), cheek)
    sc.poly(_ellipse(0.5, cy, 0.19, ry), cheek)
    # nasolabial furrows, from the nose wing to beyond the lip corner
    s = _SIDES[:, None]
    p0 = _lr(w + 0.04, wing_y - 0.02 - 0.03 * a10)
    p2 = corners + _lr(0.07, 0.06 - 0.04 * a12)
    pm = np.hstack([s * (np.maximum(abs(p0[:, :1]), abs(p2[:, :1])) + 0.06 + 0.03 * a12),
                    (p0[:, 1:] + p2[:, 1:]) / 2])  # fmt: skip
    folds = _curves(p0, pm, p2)
    depth = idt["nasolabial"] + 0.5 * a12 + 0.4 * a10 + 0.3 * a6 + 0.3 * a9
    color = _mix(skin, pal["fold"], depth)
    sc.line(folds[0], color, 0.02)
    sc.line(folds[1], color, 0.02)
    # tip, wings, nostrils
    sc.line(_curves([-w, wing_y - 0.02], [0.0, tip + 0.06], [w, wing_y - 0.02]),
            _mix(skin, shade, 0.75), 0.018, z=0.25)  # fmt: skip
    wings = _curves(
        _lr(w * 0.6, wing_y - 0.09), _lr(w + 0.02, wing_y - 0.02), _lr(w * 0.75, wing_y + 0.04)
    )
    wing_col = _mix(skin, shade, 0.8)
    for k, sgn in enumerate(_SIDES):
        sc.poly(_ellipse(sgn * nw * 0.45, wing_y + 0.025, 0.04, 0.018, n=8), pal["nostril"], z=0.2)
        sc.line(wings[k], wing_col, 0.016, z=0.12)
    if a9 > 0.05:  # nose wrinkles
        color = _mix(skin, pal["deep"], 0.9 * a9)
        for j in range(3):
            y = ey + 0.09 + 0.045 * j
            sc.line(np.array([[-0.07, y], [0.07, y - 0.01]]), color, 0.014, z=0.2)


_BOW = np.array([0, 0.25, 0.45, 0.25, 0.45, 0.25, 0])
_BOW_X = np.array([-1.0, -0.45, -0.18, 0.0, 0.18, 0.45, 1.0])
_SMALL_DOTS = ((-0.08, 0.0), (0.0, 0.03), (0.08, 0.0), (-0.04, 0.07), (0.05, 0.07))


def _mouth(sc: _Scene, idt, a):
    a10, a12, a14, a15, a17 = a[_I10], a[_I12], a[_I14], a[_I15], a[_I17]
    a23, a24, a25, a26 = a[_I23], a[_I24], a[_I25], a[_I26]
    pal = idt["pal"]
    skin = pal["skin"]
    my = idt["my"]
    gap = (0.05 * a25 + 0.12 * a26) * (1 - a24)
    thin = (1 - 0.35 * a23) * (1 - 0.55 * a24)
    lu, ll = idt["lu"] * thin, idt["ll"] * thin
    cx = idt["mw"] + 0.08 * a12 - 0.05 * a14 - 0.05 * a23 + 0.01 * a26
    cy = my + idt["rest"] - 0.14 * a12 + 0.13 * a15 - 0.025 * a14 + 0.02 * a26
    chin_up = 0.05 * a17
    centre_u = my - 0.045 * a10 - chin_up * 0.5
    centre_l = my + gap - chin_up
    top_c = centre_u - lu - 0.05 * a10
    # upper lip top with a cupid's bow; AU10 lifts the parts beside the philtrum
    upper_top = np.empty((7, 2))
    upper_top[:, 0] = _BOW_X * cx
    upper_top[:, 1] = top_c - _BOW * lu * 0.6
    upper_top[[1, 5], 1] -= 0.03 * a10
    upper_top[[0, -1], 1] = cy
    left, right = [-cx, cy], [cx, cy]
    stom_u, stom_l, bottom = _curves(
        [left, left, left],
        [[0.0, centre_u], [0.0, centre_l], [0.0, centre_l + ll * 1.9]],
        [right, right, right],
    )
    if gap > 0.008:
        sc.poly(np.vstack([stom_u, stom_l[::-1]]), _MOUTH_INSIDE)
        teeth = np.minimum(stom_u[1:-1, 1] + 0.045, stom_l[1:-1, 1])
        sc.poly(np.vstack([stom_u[1:-1], np.column_stack([stom_u[1:-1, 0], teeth])[::-1]]), _TEETH)
    sc.poly(np.vstack([upper_top, stom_u[::-1]]), pal["lip_u"])
    sc.poly(np.vstack([stom_l, bottom[::-1]]), pal["lip_l"])
    sc.line(upper_top, _mix(pal["lip_u"], pal["lip_edge"], 0.35 + 0.6 * a23), 0.008 + 0.01 * a23)
    sc.line(stom_u, pal["lip_line"], 0.014)
    if a14 > 0.05:  # dimples
        color = _mix(skin, pal["deep"], a14 + 0.1)
        for sgn in _SIDES:
            sc.line(
                _curves([sgn * (cx + 0.03), cy - 0.05], [sgn * (cx + 0.055), cy],
                        [sgn * (cx + 0.03), cy + 0.05]),
                color, 0.022,
            )  # fmt: skip
    if a24 > 0.05:  # bulges above and below the pressed lips
        color = _mix(skin, pal["deep"], 0.9 * a24)
        for y0 in (top_c - 0.04, centre_l + ll * 1.2 + 0.05):
            sc.line(_curves([-cx * 0.55, y0], [0.0, y0 + 0.012], [cx * 0.55, y0]), color, 0.02)
    chin_y = centre_l + ll * 1.2
    sc.line(
        _curves([-0.15, chin_y + 0.08], [0.0, chin_y + 0.06 - 0.02 * a17], [0.15, chin_y + 0.08]),
        _mix(skin, pal["shade"], 0.25 + 0.6 * a17),
        0.016,
    )
    if a17 > 0.05:  # chin boss wrinkles
        base = chin_y + 0.17 + 0.5 * gap
        color = _mix(skin, pal["deep"], 0.9 * a17)
        for dx, dy in _SMALL_DOTS:
            sc.poly(_ellipse(dx, base + dy, 0.028, 0.017, n=6), color)
    return np.array([left, right]), top_c, chin_y


_RIM = np.array([0.95, 0.97])


def render_head(img, idt, a, pose, scale, centre):
    """Draw one head with AU intensities ``a`` (length ``len(ALL_AUS)``, in [0, 1]).

    Returns the face box ``(x, y, w, h)``: the head's skin outline, clipped to the image.
    """
    pal = idt["pal"]
    static = _static_parts(idt)
    outline = head_outline(idt, a)
    sc = _Scene()
    sc.items.extend(static["back"])
    sc.poly(outline, _mix(pal["skin"], pal["shade"], 0.45), surface=False)  # darker rim
    sc.poly(outline * _RIM, pal["skin"], surface=False)
    sc.items.extend(static["mid"])
    mouth = _Scene()
    corners, lip_top, chin_y = _mouth(mouth, idt, a)
    _nose_and_cheeks(sc, idt, a, corners)  # cheeks and furrows first, then the lips
    sc.items.extend(mouth.items)
    _eyes(sc, idt, a)
    _brows(sc, idt, a)
    sc.items.extend(static["front"][:1] if idt["style"] != "bald" else [])
    if idt["mustache"]:
        y0 = lip_top - 0.01
        centre_line = _curves([-0.25, y0 + 0.03], [0.0, y0 - 0.02], [0.25, y0 + 0.03])
        sc.poly(_ribbons(centre_line, np.full(7, 0.028)), pal["hair"], z=0.03)
    if idt["beard"]:
        fw = idt["fw"]
        jaw = outline[outline[:, 1] > 0.35]
        jaw = jaw[np.argsort(jaw[:, 0])]
        inner = _curves([-fw * 0.75, 0.4], [0.0, chin_y + 0.1], [fw * 0.75, 0.4])
        sc.poly(np.vstack([jaw, inner[::-1]]), pal["beard"], surface=False)
    sc.items.extend(static["front"][1:] if idt["style"] != "bald" else static["front"])
    project = make_projection(idt, *pose, scale, centre[0], centre[1])
    sc.draw(img, project, scale)
    uv = project(outline, 0.0, False)
    h, w = img.shape[:2]
    x0, y0 = np.clip(np.floor(uv.min(axis=0)), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(uv.max(axis=0)), 0, [w, h])
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def background(rng: np.random.Generator, domain: str, size: int) -> np.ndarray:
    """A plain lab backdrop with a gentle gradient, or a cluttered scene for the wild."""
    if domain == "wild":
        top, bottom = rng.uniform(30, 230, 3), rng.uniform(20, 200, 3)
        ramp = np.linspace(0.0, 1.0, size)[:, None, None]
        img = np.ascontiguousarray(
            np.broadcast_to(top + (bottom - top) * ramp, (size, size, 3)).astype(np.uint8)
        )
        for _ in range(rng.integers(6, 16)):
            color = _col(rng.uniform(0, 255, 3))
            kind = rng.integers(4)
            x, y = (int(v) for v in rng.integers(0, size, 2))
            r = int(rng.uniform(0.05, 0.4) * size)
            if kind == 0:
                cv2.rectangle(img, (x, y), (x + r, y + r // 2), color, -1)
            elif kind == 1:
                cv2.circle(img, (x, y), max(r // 2, 1), color, -1, _LINE)
            elif kind == 2:
                x2, y2 = (int(v) for v in rng.integers(0, size, 2))
                cv2.line(img, (x, y), (x2, y2), color, max(1, size // 40), _LINE)
            else:
                cv2.fillPoly(img, [rng.integers(0, size, (3, 2)).astype(np.int32)], color, _LINE)
        return img
    base = rng.uniform(60, 200) * rng.uniform(0.85, 1.1, 3)
    ramp = np.linspace(1.06, 0.9, size)[:, None, None]
    return np.ascontiguousarray(
        np.broadcast_to(np.clip(base * ramp, 0, 255), (size, size, 3)).astype(np.uint8)
    )


_NOISE_PAD = 16


def noise_bank(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Sensor noise, int16, a little larger than a frame; frames take shifted crops."""
    n = size + _NOISE_PAD
    return np.round(rng.standard_normal((n, n, 3), dtype=np.float32) * sigma).astype(np.int16)


class Camera:
    """The imaging chain of one recording: optics, light, sensor noise, compression.

    ``"lab"``: slight defocus, global exposure, mild noise. ``"lab_gray"``: the same, then
    grayscale. ``"wild"``: uneven light (a linear light field), colour cast, Gaussian or
    motion blur, sometimes low resolution, stronger noise, JPEG compression.
    """

    def __init__(self, rng: np.random.Generator, domain: str, size: int, noise: np.ndarray):
        self.size, self.noise = size, noise
        self.gray = domain == "lab_gray"
        self.wild = domain == "wild"
        self.gain = rng.uniform(0.8, 1.15)
        self.sigma = 0.35 * size / 96
        if not self.wild:
            return
        angle = rng.uniform(0, 2 * np.pi)
        grid = np.linspace(-0.5, 0.5, size, dtype=np.float32)
        field = np.cos(angle) * grid[None, :] + np.sin(angle) * grid[:, None]
        light = rng.uniform(0.65, 1.2) * (1 + rng.uniform(0.4, 1.0) * field)
        cast = rng.uniform(0.85, 1.15, 3).astype(np.float32)
        self.light = np.ascontiguousarray(light[:, :, None] * cast, dtype=np.float32)
        self.small = max(16, int(size * rng.uniform(0.45, 0.8))) if rng.random() < 0.3 else 0
        self.kernel = None
        if rng.random() < 0.3:  # motion blur
            k = max(3, int(size * rng.uniform(0.03, 0.06)) | 1)
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0
            rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
            kernel = cv2.warpAffine(kernel, rot, (k, k))
            self.kernel = kernel / max(float(kernel.sum()), 1e-6)
        else:
            self.sigma = rng.uniform(0.3, 1.3) * size / 96
        self.quality = rng.uniform(20, 70)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        size = self.size
        dx, dy = (int(v) for v in rng.integers(0, _NOISE_PAD, 2))
        noise = self.noise[dy : dy + size, dx : dx + size]
        if self.wild:
            lit = cv2.multiply(img, self.light, dtype=cv2.CV_32F)
            img = np.clip(lit + noise, 0, 255).astype(np.uint8)
            if self.small:
                small = cv2.resize(img, (self.small, self.small), interpolation=cv2.INTER_AREA)
                img = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
            if self.kernel is not None:
                img = cv2.filter2D(img, -1, self.kernel)
            else:
                img = cv2.GaussianBlur(img, (0, 0), self.sigma)
            quality = int(np.clip(self.quality + rng.normal(0, 5), 10, 95))
            _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
            return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        img = cv2.GaussianBlur(img, (0, 0), self.sigma)
        out = cv2.convertScaleAbs(img, alpha=self.gain).astype(np.int16)
        out += noise
        img = np.clip(out, 0, 255).astype(np.uint8)
        if self.gray:
            img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        return img
