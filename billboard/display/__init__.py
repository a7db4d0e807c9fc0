"""The billboard's screen: the only package that draws.

`Display.draw(scene)` turns one engine `Scene` into one projected frame: a dark
facade whose windows glow in the colours of the tracks that lit them, a beat strip
with the playhead, a legend of the instrument tracks (who holds each, the loop each
caller built, the playhead running across it), the waiting line, and a banner with
the phone number to call and the QR code of the keypad. Overlays: a HUD, a test
pattern to align the projector, the help for the keys, and a one-line message.

It has to hold a steady frame rate on a projector laptop with software rendering, so
everything that does not change from frame to frame is drawn once and kept. One
module per job:

- `window` opens the SDL window (full screen on a chosen display, or resizable) and
  says why when it cannot;
- `screen` holds `Display`, which lays the layers below on each frame in order;
- `background` is the static layer (building, unlit windows, banner, QR code,
  beat-strip cells): one surface, rebuilt only when the window size, the facade grid
  or the loop length changes, and blitted whole each frame;
- `glows` precomputes window glows per colour, window size and one of `GLOW_LEVELS`
  intensities, added with ``BLEND_ADD``;
- `panel` draws the moving parts beside the facade: the playhead, the legend (each
  row a surface rebuilt only when its content changes; the per-frame work is the
  level swatch and the playhead cell) and the status;
- `overlays` makes the invitation, HUD, help, message and test pattern, each once;
- `mapped` is the projection layout (``layout = "projection"``): the whole output is
  the building, each window the quad billboard/projection/ maps it to, light cut at
  the facade's edge, and the info card warped into its region of the facade;
- `street` shows that card on a second window instead (``info = "window"``);
- `calibration_view` draws the calibration mode's handles, quads and underlay over
  the live output (`Display.mapped` gives effects the same geometry in pixels);
- `text` renders each (string, size, colour) once and keeps it in a small LRU cache;
- `content`, `layout` and `palette` are the decisions a test checks without pixels
  (`caller_label`, `legend_lines`, `compute_layout`, `window_rects`, `rgb`).
"""

from .content import Banner, Hud, LegendLine, caller_label, legend_lines
from .layout import Layout, WindowRect, compute_layout, place_qr, window_rects
from .palette import RGB, WINDOW_OFF, rgb
from .screen import Display

__all__ = [
    "RGB",
    "WINDOW_OFF",
    "Banner",
    "Display",
    "Hud",
    "Layout",
    "LegendLine",
    "WindowRect",
    "caller_label",
    "compute_layout",
    "legend_lines",
    "place_qr",
    "rgb",
    "window_rects",
]
