"""The `[billboard.lights]` table: which protocol, where to, how bright, and the patch
(which DMX channels each window's fixture listens on). Pure: values in, a frozen
`LightsConfig` or a `ConfigError` naming what to fix out."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Final

from relay.config import ConfigError, coerce

PROTOCOLS: Final = ("artnet", "sacn")
# Channels a fixture takes, in the order it reads them from its start channel.
KINDS: Final = {"rgb": 3, "rgbw": 4, "dimmer": 1}
UNIVERSE_SIZE: Final = 512  # DMX512 slots after the start code
# The first and last universe each protocol can address. Art-Net's is a 15-bit
# Port-Address (Net:Sub-Net:Universe, Art-Net 4 spec, "Port-Address"), and 0 is a real
# one: a node out of its box listens on 0:0:0. E1.31 §6.2.7: universes 1–63999.
UNIVERSES: Final = {"artnet": (0, 32767), "sacn": (1, 63999)}
PORTS: Final = {"artnet": 6454, "sacn": 5568}  # Art-Net 4 spec; E1.31 Appendix A
# Art-Net 4 spec, "Refresh rate": a DMX512 line carries at most 44 full frames a second,
# so a node never needs more. sACN feeds pixel controllers too, which take more.
MAX_FPS: Final = {"artnet": 44, "sacn": 100}
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True, slots=True)
class Fixture:
    """Where one window's light listens: `universe`, its first `channel` (1–512, as on
    the fixture's DIP switches or menu) and its `kind` (a key of `KINDS`)."""

    universe: int
    channel: int
    kind: str = "rgb"

    @property
    def width(self) -> int:
        return KINDS[self.kind]

    @property
    def last(self) -> int:
        return self.channel + self.width - 1


@dataclass(frozen=True, slots=True)
class LightsConfig:
    protocol: str = ""  # "artnet", "sacn", or "" (no lights)
    target: str = ""  # a node's IP or host name (or a broadcast address); sACN: "" multicast
    port: int = 0  # 0: the protocol's own (Art-Net 6454, sACN 5568)
    fps: float = 40.0
    master: float = 1.0  # 0–1, over everything
    gamma: float = 2.2  # fixtures are linear in light; colours and fades are perceptual
    idle: float = 0.0  # 0–1: the glow of a window nobody lights (0: dark)
    idle_color: str = "#ffb070"  # warm white, as a lit office seen from the street
    fixture: str = "rgb"  # the kind of every window's fixture in the default patch
    universe: int | None = None  # the default patch's first; None: the protocol's first
    windows: tuple[Fixture, ...] = ()  # floor by floor, bay by bay; () the default patch
    overlap: bool = False  # may two windows share channels (one fixture behind two)?
    source: str = "dialjam"  # sACN's source name, shown by consoles and receivers

    @property
    def enabled(self) -> bool:
        return bool(self.protocol)

    @property
    def first_universe(self) -> int:
        if self.universe is not None:
            return self.universe
        return UNIVERSES.get(self.protocol, (1, 1))[0]

    @property
    def destination_port(self) -> int:
        return self.port or PORTS.get(self.protocol, 0)


_SCALARS: Final = {
    "protocol": "str",
    "target": "str",
    "port": "int",
    "fps": "float",
    "master": "float",
    "gamma": "float",
    "idle": "float",
    "idle_color": "str",
    "fixture": "str",
    "universe": "int",
    "overlap": "bool",
    "source": "str",
}


def parse_lights(value: Any, origin: str) -> LightsConfig:
    """The `[billboard.lights]` table (`origin` names it in messages). Checks each
    setting alone; `check_lights` checks them together against the facade."""
    if not isinstance(value, dict):
        raise ConfigError(f"{origin} must be a table")
    args: dict[str, Any] = {}
    for key, item in value.items():
        if key == "windows":
            args["windows"] = _windows(item, origin)
        elif key in _SCALARS:
            args[key] = coerce(_SCALARS[key], key, item, origin)
        else:
            known = ", ".join(sorted([*_SCALARS, "windows"]))
            raise ConfigError(f"{origin} has no setting {key!r} (known: {known})")
    if args.get("protocol") == "off":
        args["protocol"] = ""
    return LightsConfig(**args)


def _windows(value: Any, origin: str) -> tuple[Fixture, ...]:
    if not isinstance(value, list):
        raise ConfigError(f'{origin}: windows must be a list of [universe, channel, "rgb"]')
    fixtures = []
    for n, item in enumerate(value):
        ok = isinstance(item, list) and len(item) in (2, 3)
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in item[:2])
        ok = ok and (len(item) == 2 or isinstance(item[2], str))
        if not ok:
            raise ConfigError(
                f"{origin}: window {n + 1} must be [universe, channel] or "
                f'[universe, channel, "rgb" | "rgbw" | "dimmer"], not {item!r}'
            )
        fixtures.append(Fixture(*item) if len(item) == 3 else Fixture(item[0], item[1], ""))
    return tuple(fixtures)


def check_lights(config: LightsConfig, floors: int, bays: int) -> LightsConfig:
    """`config` checked whole, for a facade of `floors` × `bays`, its windows' empty
    kinds filled with `fixture`; raises `ConfigError` saying what to fix."""
    where = "[billboard.lights]"
    if config.protocol not in ("", *PROTOCOLS):
        raise ConfigError(f'{where} protocol must be "artnet", "sacn" or "" (off)')
    if not config.enabled:
        return config
    protocol = config.protocol
    if protocol == "artnet" and not config.target:
        raise ConfigError(
            f"{where} target must name the Art-Net node: an IP such as 10.0.0.50, a host "
            "name, or a broadcast address such as 2.255.255.255"
        )
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"{where} port must be 1–65535 (or 0: the protocol's own)")
    if not 1 <= config.fps <= MAX_FPS[protocol]:
        raise ConfigError(f"{where} fps must be 1–{MAX_FPS[protocol]} for {protocol}")
    for name in ("master", "idle"):
        if not 0 <= getattr(config, name) <= 1:
            raise ConfigError(f"{where} {name} must be 0–1")
    if not 1 <= config.gamma <= 4:
        raise ConfigError(f"{where} gamma must be 1 (none) to 4; 2.2 suits most LED fixtures")
    if not _COLOR.fullmatch(config.idle_color):
        raise ConfigError(f"{where} idle_color must look like #ffb070")
    if config.fixture not in KINDS:
        raise ConfigError(f"{where} fixture must be one of {', '.join(KINDS)}")
    if not config.source or len(config.source.encode()) > 63:
        raise ConfigError(f"{where} source must be 1–63 bytes (E1.31 §6.2.2)")
    low, high = UNIVERSES[protocol]
    if config.universe is not None and not low <= config.universe <= high:
        raise ConfigError(f"{where} universe must be {low}–{high} for {protocol}")
    if not config.windows:
        return config
    count = floors * bays
    if len(config.windows) != count:
        raise ConfigError(
            f"{where} windows lists {len(config.windows)} fixtures; the facade's floors × bays "
            f"is {floors} × {bays} = {count} (one per window, floor by floor, bay by bay)"
        )
    windows = tuple(
        Fixture(f.universe, f.channel, f.kind or config.fixture) for f in config.windows
    )
    taken: dict[tuple[int, int], int] = {}
    for n, fixture in enumerate(windows):
        name = f"{where} windows #{n + 1} (floor {n // bays}, bay {n % bays})"
        if fixture.kind not in KINDS:
            raise ConfigError(f"{name}: kind {fixture.kind!r} must be one of {', '.join(KINDS)}")
        if not low <= fixture.universe <= high:
            raise ConfigError(f"{name}: universe must be {low}–{high} for {protocol}")
        if not 1 <= fixture.channel <= UNIVERSE_SIZE:
            raise ConfigError(f"{name}: channel must be 1–512")
        if fixture.last > UNIVERSE_SIZE:
            raise ConfigError(
                f"{name}: a {fixture.kind} fixture at channel {fixture.channel} needs channels "
                f"up to {fixture.last}; a universe ends at 512 (start it at "
                f"{UNIVERSE_SIZE - fixture.width + 1} or lower, or in the next universe)"
            )
        if config.overlap:
            continue
        for channel in range(fixture.channel, fixture.last + 1):
            other = taken.setdefault((fixture.universe, channel), n)
            if other != n:
                raise ConfigError(
                    f"{name} and #{other + 1} (floor {other // bays}, bay {other % bays}) both "
                    f"use universe {fixture.universe} channel {channel}; move one, or set "
                    "overlap = true if one fixture really lights both windows"
                )
    return replace(config, windows=windows)
