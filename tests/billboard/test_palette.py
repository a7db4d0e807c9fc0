"""The tracks' colours stay apart for colour-blind eyes, and never alone: every pair
of the eight default colours keeps a CIEDE2000 difference of at least `MIN_DELTA_E`
under simulated protanopia, deuteranopia and tritanopia, and each track also lights
its windows with a pattern of its own (test_alive.py checks those pixels).

The simulation is Machado, Oliveira & Fernandes, "A Physiologically-based Model for
Simulation of Color Vision Deficiency", IEEE TVCG 15(6), 2009: the 3 × 3 matrices of
its Table 1 at severity 1.0 (dichromacy), applied to linear sRGB. Colour difference is
CIEDE2000 (Sharma, Wu & Dalal, "The CIEDE2000 Color-Difference Formula:
Implementation Notes", Color Res. Appl. 30(1), 2005), from CIELAB under D65.

Why 10: a CIEDE2000 difference near 1 is just noticeable side by side; windows lit
across a building are seen apart, some fading, from far away, so we ask for ten
times that. The old palette (Tailwind's orange, violet, green, red, yellow, cyan,
pink, lime) fell to 4.3 under deuteranopia, with five of eight colours merging into
two; Okabe & Ito's set, white in place of its black, keeps 10.8 or more under all
three.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from billboard.display.alive import pattern_of
from billboard.display.palette import rgb
from billboard.engine.tracks import DEFAULT_TRACKS

MIN_DELTA_E = 10.0

MACHADO_2009 = {
    "protanopia": [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ],
    "deuteranopia": [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ],
    "tritanopia": [
        [1.255528, -0.076749, -0.178779],
        [-0.078411, 0.930809, 0.147602],
        [0.004733, 0.691367, 0.303900],
    ],
}
OLD_PALETTE = ("#f97316", "#8a5cf6", "#22c55e", "#ef4444", "#eab308", "#06b6d4", "#ec4899")
OLD_PALETTE += ("#a3e635",)


def linear(colors: list[str]) -> np.ndarray:
    """sRGB "#rrggbb" → linear RGB, 0 … 1 (IEC 61966-2-1)."""
    c = np.array([rgb(color) for color in colors], dtype=float) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(linear_rgb: np.ndarray) -> np.ndarray:
    """Linear sRGB → CIELAB (D65)."""
    to_xyz = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    )
    xyz = linear_rgb @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """The CIEDE2000 difference of two CIELAB colours (Sharma et al., eqs. 1–17)."""
    l1, a1, b1 = lab1
    l2, a2, b2 = lab2
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dlp, dcp = l2 - l1, c2p - c1p
    dh = h2p - h1p
    if c1p * c2p == 0:
        dh = 0.0
    elif dh > 180:
        dh -= 360
    elif dh < -180:
        dh += 360
    dhp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lp_mean, cp_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hp_mean = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hp_mean = (h1p + h2p) / 2
    else:
        hp_mean = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (
        1
        - 0.17 * np.cos(np.radians(hp_mean - 30))
        + 0.24 * np.cos(np.radians(2 * hp_mean))
        + 0.32 * np.cos(np.radians(3 * hp_mean + 6))
        - 0.20 * np.cos(np.radians(4 * hp_mean - 63))
    )
    d_theta = 30 * np.exp(-(((hp_mean - 275) / 25) ** 2))
    rc = 2 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25**7))
    sl = 1 + 0.015 * (lp_mean - 50) ** 2 / np.sqrt(20 + (lp_mean - 50) ** 2)
    sc = 1 + 0.045 * cp_mean
    sh = 1 + 0.015 * cp_mean * t
    rt = -np.sin(np.radians(2 * d_theta)) * rc
    return float(
        np.sqrt((dlp / sl) ** 2 + (dcp / sc) ** 2 + (dhp / sh) ** 2 + rt * (dcp / sc) * (dhp / sh))
    )


def closest_pair(colors: list[str], deficiency: str | None) -> tuple[float, str, str]:
    """The smallest CIEDE2000 difference between two of `colors` as seen with
    `deficiency` (None: normal vision), and which two."""
    seen = linear(colors)
    if deficiency is not None:
        seen = np.clip(seen @ np.array(MACHADO_2009[deficiency]).T, 0, 1)
    points = lab(seen)
    return min(
        (ciede2000(points[i], points[j]), colors[i], colors[j])
        for i, j in itertools.combinations(range(len(colors)), 2)
    )


def test_ciede2000_matches_sharmas_published_pairs() -> None:
    # Pairs 1, 7 and 17 of Sharma et al.'s Table 1.
    pairs = [
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ]
    for one, two, expected in pairs:
        assert ciede2000(np.array(one), np.array(two)) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("deficiency", [None, *MACHADO_2009])
def test_every_pair_of_track_colours_stays_apart(deficiency: str | None) -> None:
    colors = [spec.color for spec in DEFAULT_TRACKS]
    assert len(set(colors)) == 8
    delta, one, two = closest_pair(colors, deficiency)
    assert delta >= MIN_DELTA_E, (deficiency, one, two, delta)


def test_the_old_palette_merged_under_deuteranopia() -> None:
    # Why the palette changed: the check above fails it.
    delta, _, _ = closest_pair(list(OLD_PALETTE), "deuteranopia")
    assert delta < 5


def test_each_track_also_has_a_window_pattern_of_its_own() -> None:
    patterns = [pattern_of(i) for i in range(len(DEFAULT_TRACKS))]
    assert len(set(patterns)) == len(DEFAULT_TRACKS)
