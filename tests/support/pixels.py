"""Reading pictures: counting their colours (`np.unique(..., axis=0)` sorts every
pixel, 2.6 s for a 1920×1080 frame here; a count per packed colour takes a tenth of
that), and the QR code in one (zbarimg)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tests.services import need_tool


def colours(image: np.ndarray) -> set[tuple[int, int, int]]:
    """The distinct RGB colours of `image` (any shape ending in 3 channels of 0–255)."""
    rgb = image.reshape(-1, 3).astype(np.int32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    present = np.flatnonzero(np.bincount(packed, minlength=1 << 24))
    return {(int(c >> 16), int(c >> 8 & 0xFF), int(c & 0xFF)) for c in present}


def colour_count(image: np.ndarray) -> int:
    """How many distinct RGB colours `image` holds."""
    rgb = image.reshape(-1, 3).astype(np.int32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    return int(np.count_nonzero(np.bincount(packed, minlength=1 << 24)))


def qr_text(image: Path) -> str:
    """What zbarimg reads in `image`: its one QR code's text (none found: a failure
    saying so)."""
    zbarimg = need_tool("zbarimg", "apt-get install zbar-tools (make test installs it)")
    out = subprocess.run(
        [zbarimg, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", str(image)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"zbarimg read no QR code in {image}: {out.stderr}"
    return out.stdout.strip()
