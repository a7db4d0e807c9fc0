"""Light without a projector: the scene the projector shows, out to DMX fixtures behind
the building's windows over Art-Net or sACN (E1.31), as Blinkenlights (2001) made every
window of a building a pixel.

One module per job, the first two pure (no socket, no thread, no pygame):

- `settings`: the `[billboard.lights]` table (`LightsConfig`, `parse_lights`,
  `check_lights`) and the `Fixture` a window has: a universe, a start channel, a kind
  (`rgb`, `rgbw`, `dimmer`);
- `patch`: the patch (each window's fixture; by default `rgb` fixtures packed 170 to a
  universe, floor by floor, bay by bay) and `Patch.frames`: a `Scene` in, one 512-slot
  DMX frame per universe out, with master, gamma and an idle glow;
- `wire`: the packets of each protocol, made by kept libraries (`sacn`, `stupidArtnet`;
  why not their senders is said there), and the UDP socket;
- `sender`: `LightsOut`, the thread that sends the latest scene `fps` times a second,
  only what changed plus a keep-alive, riding out a network that fails, dark on stop.

Universes: sACN's are 1–63999; Art-Net's Port-Address 0–32767, where 0 is a node's
factory setting. The default patch starts at each protocol's first (sACN 1, Art-Net 0)
unless `universe` says otherwise.

Nothing is imported here: the billboard's config reads `settings` without the
libraries of `wire` (nor the display's palette `patch` borrows).

The show starts it with the engine and stops it after (`billboard/show.py`):

    lights = LightsOut(config.lights, Patch.of(config.lights, facade), lambda: scheduler.scene)
    lights.start()
    ...
    lights.stop()  # every universe dark
"""
