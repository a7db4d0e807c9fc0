"""The billboard's screen: the only package that draws.

`Display.draw(scene)` turns one engine `Scene` into one projected frame: a facade
alive with the music (windows lit in their track's colour and pattern, light spilling
on the wall, ripples, the beat's pulse, a section's wash, the idle show's colour
waves, each player's name at their region and their join as a moment), a beat strip
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
- `background` is the static layer (building, unlit windows, banner, beat-strip
  cells): one surface, rebuilt only when the window size, the facade grid or the
  loop length changes, and blitted whole each frame; and the QR code's card;
- `alive` decides, without pixels, what keeps the building alive (pulse, wash,
  idle waves, ripples, the playhead in each region, join moments, each track's
  window pattern), all pure functions of the scene's time and step;
- `facade` draws that light on the windows, the same in both layouts (a window is
  a polygon: a rectangle on the dashboard, a mapped quad in the projection);
- `glows` precomputes window glows per colour, window size and one of `GLOW_LEVELS`
  intensities, added with ``BLEND_ADD``;
- `panel` draws the moving parts beside the facade: the playhead, the legend (each
  row a surface rebuilt only when its content changes; the per-frame work is the
  level swatch and the playhead cell) and the status;
- `overlays` makes the idle show's invitation (a large QR code and the number in
  front of the building), HUD, help, message and test pattern, each once;
- `mapped` is the projection layout (``layout = "projection"``): the whole output is
  the building, each window the quad billboard/projection/ maps it to, light cut at
  the facade's edge, and the info card warped into its region of the facade;
- `street` shows that card on a second window instead (``info = "window"``);
- `calibration_view` draws the calibration mode's handles, quads and underlay over
  the live output (`Display.mapped` gives effects the same geometry in pixels);
- `present` shows a frame from a thread of its own (the copy to the window and the
  flip, which let the GIL go) while the next one is drawn, when asked
  (``DIALJAM_PRESENT=thread``, a full-screen window under X11);
- `text` renders each (string, size, colour) once and keeps it in a small LRU cache;
- `content`, `layout` and `palette` are the decisions a test checks without pixels
  (`caller_label`, `player_label`, `legend_lines`, `compute_layout`,
  `window_rects`, `rgb`).
"""

from .content import Banner, Hud, LegendLine, caller_label, legend_lines, player_label
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
    "player_label",
    "rgb",
    "window_rects",
]
