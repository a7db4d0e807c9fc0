"""The facade out to DMX fixtures: the pure patch and frames without any I/O, the
settings' messages, and the sender against a real receiver on a real UDP socket that
reads Art-Net and E1.31 by the specs, not with the libraries that write them."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from billboard.config import ConfigError, load_billboard_config
from billboard.engine import Digit, Engine, EngineConfig, Join
from billboard.engine.scene import Facade, Lit, Scene
from billboard.lights.patch import Patch, channel_values, default_patch
from billboard.lights.sender import KEEPALIVE_S, LightsOut, Refresh
from billboard.lights.settings import Fixture, LightsConfig, check_lights
from relay.config import load_installation

BASS = "#8a5cf6"
LEAD = "#22c55e"
FACADE = Facade(6, 14)


def scene(lit: Sequence[Lit] = (), facade: Facade = FACADE) -> Scene:
    return Scene(
        time=0.0,
        step=0,
        loop_steps=32,
        bpm=112.0,
        key="C",
        scale="major",
        facade=facade,
        tracks=(),
        line=(),
        line_length=0,
        lit=tuple(lit),
        attract=False,
        paused=False,
    )


def patch(facade: Facade = FACADE, **settings: object) -> Patch:
    config = check_lights(
        LightsConfig(protocol="sacn", **settings),  # type: ignore[arg-type]
        facade.floors,
        facade.bays,
    )
    return Patch.of(config, facade)


def window(frames: dict[int, bytes], fixture: Fixture) -> tuple[int, ...]:
    return tuple(frames[fixture.universe][fixture.channel - 1 : fixture.last])


# -- the patch and the frames: pure --------------------------------------------------


def test_the_default_patch_packs_170_rgb_windows_a_universe_floor_by_floor() -> None:
    fixtures = default_patch(6, 30, "rgb", 1)
    assert fixtures[0] == Fixture(1, 1, "rgb")
    assert fixtures[1] == Fixture(1, 4, "rgb")
    assert fixtures[30] == Fixture(1, 91, "rgb")  # floor 1, bay 0
    assert fixtures[169] == Fixture(1, 508, "rgb")  # the last that fits: 508–510
    assert fixtures[170] == Fixture(2, 1, "rgb")
    assert default_patch(1, 129, "rgbw", 0)[128] == Fixture(1, 1, "rgbw")  # 128 a universe


def test_the_default_patch_starts_at_each_protocols_first_universe() -> None:
    assert Patch.of(LightsConfig(protocol="sacn"), FACADE).universes == (1,)
    assert Patch.of(LightsConfig(protocol="artnet", target="x"), FACADE).universes == (0,)
    assert Patch.of(LightsConfig(protocol="artnet", universe=7), FACADE).universes == (7,)


def test_a_lit_window_sends_its_colour_on_its_fixtures_channels() -> None:
    lights = patch(gamma=1.0)
    frames = lights.frames(scene([Lit(1, 2, BASS, 1.0)]))
    assert window(frames, lights.fixtures[1 * 14 + 2]) == (0x8A, 0x5C, 0xF6)
    assert window(frames, Fixture(1, 49, "rgb")) == (0x8A, 0x5C, 0xF6)  # window 16 of 84
    assert sum(frames[1]) == 0x8A + 0x5C + 0xF6  # and nothing else is lit


def test_an_unlit_window_sends_the_idle_level() -> None:
    dark = patch().frames(scene([Lit(0, 0, BASS, 1.0)]))
    assert window(dark, Fixture(1, 4)) == (0, 0, 0)  # idle 0: dark, the default
    lights = patch(gamma=1.0, idle=0.5, idle_color="#ffb070")
    frames = lights.frames(scene([Lit(0, 0, BASS, 1.0)]))
    assert window(frames, lights.fixtures[1]) == (128, 88, 56)
    assert window(frames, lights.fixtures[83]) == (128, 88, 56)
    assert window(frames, lights.fixtures[0]) == (0x8A, 0x5C, 0xF6)


def test_a_fading_window_never_dips_below_the_idle_glow() -> None:
    lights = patch(gamma=1.0, idle=0.5, idle_color="#ffffff")
    frames = lights.frames(scene([Lit(0, 0, "#0000ff", 0.1)]))
    assert window(frames, lights.fixtures[0]) == (128, 128, 128)


def test_gamma_turns_half_intensity_into_a_fifth_of_the_light() -> None:
    frames = patch().frames(scene([Lit(0, 0, "#ffffff", 0.5)]))  # gamma 2.2, the default
    assert window(frames, Fixture(1, 1)) == (55, 55, 55)  # 255 × 0.5 ** 2.2
    full = patch().frames(scene([Lit(0, 0, "#ffffff", 1.0)]))
    assert window(full, Fixture(1, 1)) == (255, 255, 255)


def test_the_master_dims_every_window() -> None:
    frames = patch(gamma=1.0, master=0.5).frames(scene([Lit(0, 0, "#ff8000", 1.0)]))
    assert window(frames, Fixture(1, 1)) == (128, 64, 0)


def test_an_rgbw_fixture_takes_the_white_its_colours_share_to_its_white_channel() -> None:
    lights = patch(gamma=1.0, fixture="rgbw")
    frames = lights.frames(scene([Lit(0, 1, "#ff8040", 1.0)]))
    assert lights.fixtures[1] == Fixture(1, 5, "rgbw")
    assert window(frames, lights.fixtures[1]) == (191, 64, 0, 64)
    assert channel_values("rgbw", (1.0, 1.0, 1.0)) == (0, 0, 0, 255)


def test_a_dimmer_gets_the_brightest_of_the_colour() -> None:
    lights = patch(gamma=1.0, fixture="dimmer")
    frames = lights.frames(scene([Lit(0, 3, "#2040ff", 0.5)]))
    assert lights.fixtures[3] == Fixture(1, 4, "dimmer")
    assert frames[1][3] == 128 and frames[1][:3] == bytes(3)


def test_two_lights_on_one_window_the_brightest_wins_on_each_channel() -> None:
    lights = patch(gamma=1.0)
    frames = lights.frames(scene([Lit(0, 0, "#ff0000", 0.5), Lit(0, 0, "#00ff00", 1.0)]))
    assert window(frames, lights.fixtures[0]) == (128, 255, 0)


def test_two_windows_on_one_fixture_light_it_with_the_brighter() -> None:
    small = Facade(1, 2)
    shared = [[1, 1, "rgb"], [1, 1, "rgb"]]
    lights = patch(small, gamma=1.0, overlap=True, windows=tuple(Fixture(*w) for w in shared))
    frames = lights.frames(scene([Lit(0, 0, "#400000", 1.0), Lit(0, 1, "#800000", 1.0)], small))
    assert window(frames, Fixture(1, 1)) == (0x80, 0, 0)


def test_lights_off_the_facade_light_nothing() -> None:
    frames = patch().frames(
        scene([Lit(6, 0, BASS, 1.0), Lit(0, 14, BASS, 1.0), Lit(-1, 3, BASS, 1)])
    )
    assert frames == patch().blackout()


def test_a_changed_universe_goes_out_at_once_and_every_one_again_within_a_second() -> None:
    refresh = Refresh()
    first = {1: b"\x01", 2: b"\x02"}
    assert refresh.due(first, 0.0) == [1, 2]
    for universe, data in first.items():
        refresh.sent(universe, data, 0.0)
    assert refresh.due(first, 0.1) == []
    assert refresh.due({1: b"\x01", 2: b"\x03"}, 0.2) == [2]
    assert KEEPALIVE_S < 1.0 and refresh.due(first, KEEPALIVE_S) == [1, 2]
    refresh.forget()  # after a failure everything goes out again
    assert refresh.due(first, 0.1) == [1, 2]


# -- settings ------------------------------------------------------------------------


def load(tmp_path: Path, toml: str, overrides: dict[str, object] | None = None) -> LightsConfig:
    path = tmp_path / "dialjam.toml"
    path.write_text(toml)
    return load_billboard_config(load_installation(path, env={}), overrides).lights


def test_lights_settings_come_from_the_file_and_flags(tmp_path: Path) -> None:
    toml = (
        "[billboard.facade]\nfloors = 1\nbays = 3\n"
        "[billboard.lights]\nprotocol = 'artnet'\ntarget = '10.0.0.50'\nfps = 30\n"
        "master = 0.8\ngamma = 2.0\nidle = 0.05\nfixture = 'rgbw'\n"
        "windows = [[1, 1, 'rgb'], [1, 4], [3, 509, 'rgbw']]\n"
    )
    lights = load(tmp_path, toml)
    assert (lights.protocol, lights.target, lights.fps, lights.master) == (
        "artnet",
        "10.0.0.50",
        30.0,
        0.8,
    )
    assert lights.destination_port == 6454
    assert lights.windows == (Fixture(1, 1, "rgb"), Fixture(1, 4, "rgbw"), Fixture(3, 509, "rgbw"))
    flagged = load(tmp_path, toml, {"lights": "sacn", "lights_target": ""})
    assert (flagged.protocol, flagged.target, flagged.destination_port) == ("sacn", "", 5568)
    assert load(tmp_path, toml, {"lights": "off"}).enabled is False
    assert load(tmp_path, "").enabled is False  # off by default


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ("protocol = 'dmx'", 'protocol must be "artnet", "sacn"'),
        ("protocol = 'artnet'", "target must name the Art-Net node"),
        ("protocol = 'artnet'\ntarget = 'x'\nfps = 50", "fps must be 1–44 for artnet"),
        ("protocol = 'sacn'\nuniverse = 0", "universe must be 1–63999 for sacn"),
        ("protocol = 'sacn'\nmaster = 1.5", "master must be 0–1"),
        ("protocol = 'sacn'\ngamma = 0.5", "gamma must be 1"),
        ("protocol = 'sacn'\nidle_color = 'warm'", "idle_color must look like"),
        ("protocol = 'sacn'\nfixture = 'rgba'", "fixture must be one of rgb, rgbw, dimmer"),
        ("protocol = 'sacn'\ncolour = 'red'", "no setting 'colour'"),
        ("protocol = 'sacn'\nwindows = [[1, 1]]", "lists 1 fixtures; .* 1 × 2 = 2"),
        ("protocol = 'sacn'\nwindows = [[1, 0], [1, 4]]", r"#1 \(floor 0, bay 0\): channel"),
        ("protocol = 'sacn'\nwindows = [[1, 1], [1, 511]]", "needs channels up to 513.*510"),
        (
            "protocol = 'sacn'\nwindows = [[1, 1], [1, 3]]",
            r"#2 \(floor 0, bay 1\) and #1 \(floor 0, bay 0\) both use .* 3;",
        ),
        ("protocol = 'sacn'\nwindows = [[1, 1], [1, 4, 'rgbx']]", "kind 'rgbx' must be"),
        ("protocol = 'sacn'\nwindows = [[1, 1], 'x']", r"window 2 must be \[universe, chan"),
        ("protocol = 'artnet'\ntarget='x'\nwindows = [[0, 1], [40000, 1]]", "0–32767"),
    ],
)
def test_bad_lights_settings_say_what_to_fix(tmp_path: Path, table: str, fragment: str) -> None:
    toml = f"[billboard.facade]\nfloors = 1\nbays = 2\n[billboard.lights]\n{table}\n"
    with pytest.raises(ConfigError, match=fragment):
        load(tmp_path, toml)


def test_two_windows_may_share_a_fixture_when_the_file_says_so(tmp_path: Path) -> None:
    toml = (
        "[billboard.facade]\nfloors = 1\nbays = 2\n"
        "[billboard.lights]\nprotocol = 'sacn'\noverlap = true\nwindows = [[1, 1], [1, 1]]\n"
    )
    assert load(tmp_path, toml).windows == (Fixture(1, 1, "rgb"), Fixture(1, 1, "rgb"))


# -- a receiver on a real UDP socket, reading the packets by the specs ----------------


@dataclass(frozen=True)
class Received:
    universe: int
    data: bytes
    terminated: bool = False


def read_artnet(packet: bytes) -> Received:
    """ArtDmx, Art-Net 4 spec: ID "Art-Net\\0", OpCode 0x5000 low byte first,
    ProtVer 14 high byte first, Sequence, Physical, SubUni + Net (the 15-bit
    Port-Address, low byte first), Length high byte first (even, 2–512), the data."""
    assert packet[:8] == b"Art-Net\x00"
    assert int.from_bytes(packet[8:10], "little") == 0x5000
    assert int.from_bytes(packet[10:12], "big") >= 14
    universe = int.from_bytes(packet[14:16], "little") & 0x7FFF
    length = int.from_bytes(packet[16:18], "big")
    assert 2 <= length <= 512 and length % 2 == 0 and len(packet) == 18 + length
    return Received(universe, packet[18:])


def read_sacn(packet: bytes) -> Received:
    """An E1.31 (2016) data packet: the root layer (§5), the framing layer (§6), the
    DMP layer (§7); each PDU's flags are 0x7 and its length counts from its start."""

    def pdu_length(at: int) -> int:
        assert packet[at] >> 4 == 0x7
        return int.from_bytes(packet[at : at + 2], "big") & 0x0FFF

    assert packet[0:2] == b"\x00\x10" and packet[2:4] == b"\x00\x00"  # pre- and post-amble
    assert packet[4:16] == b"ASC-E1.17\x00\x00\x00"
    assert pdu_length(16) == len(packet) - 16
    assert packet[18:22] == b"\x00\x00\x00\x04"  # VECTOR_ROOT_E131_DATA
    assert pdu_length(38) == len(packet) - 38
    assert packet[40:44] == b"\x00\x00\x00\x02"  # VECTOR_E131_DATA_PACKET
    assert packet[44:108].rstrip(b"\x00") == b"dialjam"  # source name
    options = packet[112]
    universe = int.from_bytes(packet[113:115], "big")
    assert pdu_length(115) == len(packet) - 115
    assert packet[117] == 0x02 and packet[118] == 0xA1  # VECTOR_DMP_SET_PROPERTY, types
    assert packet[119:121] == b"\x00\x00" and packet[121:123] == b"\x00\x01"
    count = int.from_bytes(packet[123:125], "big")
    assert count == len(packet) - 125 and packet[125] == 0x00  # start code 0: levels
    return Received(universe, packet[126:], terminated=bool(options & 0x40))


PROTOCOLS: dict[str, Callable[[bytes], Received]] = {"artnet": read_artnet, "sacn": read_sacn}


class Receiver:
    """A fixture's view of the network: a UDP socket on 127.0.0.1, a free port."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.read = PROTOCOLS[protocol]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.seen: list[Received] = []

    def next(self, timeout: float = 20.0) -> Received:
        self.sock.settimeout(timeout)
        packet = self.sock.recv(2048)
        self.seen.append(self.read(packet))
        return self.seen[-1]

    def until(self, wanted: Callable[[Received], bool], timeout: float = 30.0) -> Received:
        deadline = time.monotonic() + timeout  # a bound on a hang, not a measurement
        while time.monotonic() < deadline:
            got = self.next(max(0.1, deadline - time.monotonic()))
            if wanted(got):
                return got
        raise AssertionError("the receiver never saw it")

    def drain(self) -> list[Received]:
        """What is still queued: called after the sender has stopped, when every
        datagram it sent over loopback is already here."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.read(self.sock.recv(2048)))
        except BlockingIOError:
            pass
        return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=sorted(PROTOCOLS))
def receiver(request: pytest.FixtureRequest) -> Receiver:
    receiver = Receiver(request.param)
    request.addfinalizer(receiver.close)
    return receiver


def lights_to(receiver: Receiver, **settings: object) -> LightsConfig:
    config = LightsConfig(
        protocol=receiver.protocol,
        target="127.0.0.1",
        port=receiver.port,
        **settings,  # type: ignore[arg-type]
    )
    return check_lights(config, FACADE.floors, FACADE.bays)


def engine_scene() -> Scene:
    """A real engine's scene: two callers press keys, their windows light."""
    engine = Engine(EngineConfig(attract_after_s=1e9, style="none"), start=0.0)
    engine.handle(Join("c-lights0001", "twilio", "…01"), 0.0)
    engine.handle(Join("c-lights0002", "twilio", "…02"), 0.0)
    for n in range(8):
        engine.handle(Digit(f"c-lights000{1 + n % 2}", "13579"[n % 5]), n * 0.1)
        engine.advance(n * 0.1, 0.05)
    shown = engine.scene(0.8)
    assert shown.lit, "the callers lit no window"
    return shown


def test_the_receiver_sees_the_lit_windows_colours_and_the_building_dark_on_stop(
    receiver: Receiver,
) -> None:
    shown = engine_scene()
    config = lights_to(receiver)
    lights = LightsOut(config, Patch.of(config, shown.facade), lambda: shown)
    lights.start()
    try:
        frame = receiver.until(lambda r: any(r.data))
    finally:
        lights.stop()
    first = config.first_universe
    assert frame.universe == first and len(frame.data) == 512
    for light in shown.lit:  # the level each channel should get, computed here again
        n = light.floor * shown.facade.bays + light.bay
        r, g, b = (int(light.color[i : i + 2], 16) for i in (1, 3, 5))
        want = tuple(round(255 * (c / 255 * light.intensity) ** 2.2) for c in (r, g, b))
        assert tuple(frame.data[3 * n : 3 * n + 3]) == want, light
    lit = {light.floor * shown.facade.bays + light.bay for light in shown.lit}
    assert not any(frame.data[3 * n] for n in range(84) if n not in lit)
    rest = receiver.drain()
    frames = [r for r in rest if not r.terminated]
    assert frames[-1].universe == first and not any(frames[-1].data)  # dark, last
    if receiver.protocol == "sacn":
        # E1.31 §6.2.6: the stream ends with three packets that say so, after the dark.
        assert [r.terminated for r in rest[-4:]] == [False, True, True, True]
    else:
        assert not any(r.terminated for r in rest)


def test_only_changed_universes_go_out_and_each_again_within_a_second(
    receiver: Receiver,
) -> None:
    wide = Facade(2, 100)  # 200 windows: universes 1 and 2 (0 and 1 for Art-Net)
    config = check_lights(replace(lights_to(receiver), gamma=1.0), wide.floors, wide.bays)
    shown = [scene([Lit(0, 0, "#ff0000", 1.0)], wide)]
    lights = LightsOut(config, Patch.of(config, wide), lambda: shown[0])
    first, second = config.first_universe, config.first_universe + 1
    lights.step(0.0)
    got = [receiver.next(), receiver.next()]
    assert sorted(r.universe for r in got) == [first, second]
    assert next(r for r in got if r.universe == first).data[:3] == b"\xff\x00\x00"
    lights.step(0.1)  # nothing changed: nothing goes out
    shown[0] = scene([Lit(0, 0, "#ff0000", 1.0), Lit(1, 99, "#0000ff", 1.0)], wide)
    lights.step(0.2)  # window 199 is channel 88 of the second universe
    changed = receiver.next()
    assert changed.universe == second and changed.data[87:90] == b"\x00\x00\xff"
    lights.step(0.9)  # nothing changed, but the first was sent 0.9 s ago
    assert receiver.next().universe == first
    lights.step(1.05)
    assert receiver.next().universe == second
    lights.link.close()


def test_a_network_that_fails_is_logged_once_retried_and_never_stops_the_show(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = lights_to(receiver, gamma=1.0)
    shown = scene([Lit(0, 0, "#00ff00", 1.0)])
    lights = LightsOut(config, Patch.of(config, FACADE), lambda: shown, rand=lambda: 0.0)
    send = lights.link.send
    failures = [0]

    def unreachable(host: str, payload: bytes) -> None:
        if failures[0] < 3:
            failures[0] += 1
            raise OSError(101, "Network is unreachable")
        send(host, payload)

    monkeypatch.setattr(lights.link, "send", unreachable)
    with caplog.at_level(logging.INFO, logger="billboard.lights"):
        now = 0.0
        while failures[0] < 3:
            lights.step(now)
            assert lights.status == "offline: Network is unreachable"
            now += 30.0  # past any backoff
        lights.step(now)
    assert lights.status == "sending"
    assert receiver.next().data[:3] == b"\x00\xff\x00"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot send" in warnings[0].getMessage()
    assert any("sending again" in r.getMessage() for r in caplog.records)
    lights.link.close()


def test_a_retry_waits_out_its_backoff(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    config = lights_to(receiver)
    lights = LightsOut(config, Patch.of(config, FACADE), scene, rand=lambda: 1.0)
    calls: list[str] = []

    def unreachable(host: str, payload: bytes) -> None:
        calls.append(host)
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(lights.link, "send", unreachable)
    lights.step(0.0)
    lights.step(0.4)  # the first retry waits 0.5 s (RETRY_FIRST_S, its jitter at the top)
    assert len(calls) == 1
    lights.step(0.5)
    assert len(calls) == 2


def test_a_show_with_lights_sends_its_callers_windows_and_ends_dark() -> None:
    from billboard.config import BillboardConfig
    from billboard.show import Options, Show
    from relay.config import RelayConfig

    receiver = Receiver("sacn")
    try:
        lights = LightsConfig(protocol="sacn", target="127.0.0.1", port=receiver.port)
        board = BillboardConfig(style="none", attract_after_s=1e9, lights=lights)
        show = Show(board, RelayConfig(host="127.0.0.1", port=0), Options(headless=True))
        show.start_background()
        try:
            show.submit(Join("c-lights0001", "twilio", "…01"))
            for digit in "13579":
                show.submit(Digit("c-lights0001", digit))
            lit = receiver.until(lambda r: any(r.data))
        finally:
            show.stop()
        assert lit.universe == 1
        last = [r for r in receiver.drain() if not r.terminated][-1]
        assert last.universe == 1 and not any(last.data)
        assert show.lights is not None
        assert show.lights.status == "stopped"
    finally:
        receiver.close()


def test_the_lights_read_colours_as_the_screen_does_without_opening_pygame() -> None:
    code = (
        "import sys; from billboard.lights.patch import levels; "
        "from billboard.colors import rgb; "
        "assert levels('#ff8000', 1.0, 1.0, 1.0) == (1.0, 128 / 255, 0.0); "
        "assert rgb('#f80') == (255, 136, 0) and rgb('nope') == rgb('#zzzzzz'); "
        "print('pygame' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert out.stdout.strip() == "False"
