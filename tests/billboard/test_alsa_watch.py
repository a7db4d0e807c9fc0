"""A synth connected to our ALSA port mid-show (billboard/alsa_watch.py): the kernel's
/proc/asound/seq/clients read totally, in the formats its format strings print
(sound/core/seq/seq_clientmgr.c: before 6.5 and after), and a new subscriber handed to
the same resend path as JACK's (MidiOut.connected)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billboard.alsa_watch import AlsaWatch, SeqPort, links, our_ports, parse_clients
from billboard.midi_out import MidiOut
from billboard.midi_ports import CLIENT_NAME, OWN_PORT

# "Client %3d : \"%s\" [%s]", "  Port %3d : \"%s\" (%c%c%c%c)", "    Connecting To: "
# with "%d:%d" items joined by ", ", each maybe "[%c:%d]" and "[ex]"; then the pools.
BEFORE_6_5 = """Client info
  cur  clients : 4
  peak clients : 5
  max  clients : 192

Client   0 : "System" [Kernel]
  Port   0 : "Timer" (Rwe-)
    Connecting To: 15:0
  Port   1 : "Announce" (R-e-)
    Connecting To: 128:1
Client  14 : "Midi Through" [Kernel]
  Port   0 : "Midi Through Port-0" (RWe-)
Client 128 : "dialjam" [User]
  Port   0 : "out" (R-e-)
  Output pool :
    Pool size          : 500
    Cells in use       : 0
    Peak cells in use  : 12
    Alloc success      : 340
    Alloc failures     : 0
Client 129 : "FLUID Synth (4242)" [User]
  Port   0 : "Synth input port (4242:0)" (-We-)
  Input pool :
    Pool size          : 200
"""

# 6.5 and later: "[%s %s]" (User/Kernel, Legacy/UMP MIDI 1.0/UMP MIDI 2.0) and
# "(%c%c%c%c) [%s]" (the port's direction: -, In, Out, In/Out).
AFTER_6_5 = """Client info
  cur  clients : 5
  peak clients : 5
  max  clients : 192

Client   0 : "System" [Kernel Legacy]
  Port   0 : "Timer" (Rwe-) [Out]
  Port   1 : "Announce" (R-e-) [Out]
Client 128 : "dialjam" [User Legacy]
  Port   0 : "out" (R-e-) [Out]
    Connecting To: 129:0
Client 129 : "FLUID Synth (4242)" [User Legacy]
  Port   0 : "Synth input port (4242:0)" (-We-) [In]
    Connected From: 128:0
Client 130 : "Surge XT "Main"" [User UMP MIDI 2.0]
  Port   0 : "MIDI 2.0" (RWeX) [In/Out]
    Connected From: 128:0[t:1][ex]
"""


def subscribed(to: str) -> str:
    """AFTER_6_5 with our port connecting to `to` (the kernel's list, as printed)."""
    return AFTER_6_5.replace("    Connecting To: 129:0\n", f"    Connecting To: {to}\n")


def test_both_formats_are_read_with_their_subscriptions() -> None:
    old = parse_clients(BEFORE_6_5)
    assert old[(128, 0)] == SeqPort("dialjam", "out")
    assert old[(0, 1)].to == frozenset({(128, 1)})
    assert (128, 1) not in old  # a pool's lines are not ports
    new = parse_clients(subscribed("129:0, 130:0[t:1][ex]"))
    assert new[(128, 0)].to == frozenset({(129, 0), (130, 0)})
    assert new[(130, 0)].client == 'Surge XT "Main"'
    assert links(new, [(128, 0)]) == {
        ("128:0", "FLUID Synth (4242):Synth input port (4242:0) 129:0"),
        ("128:0", 'Surge XT "Main":MIDI 2.0 130:0'),
    }


def test_our_port_is_the_one_connected_to_the_synth_we_opened_onto() -> None:
    two = AFTER_6_5 + 'Client 131 : "dialjam" [User Legacy]\n  Port   0 : "out" (R-e-) [Out]\n'
    ports = parse_clients(two)
    assert our_ports(ports, "dialjam", "out", None) == [(128, 0), (131, 0)]
    target = "FLUID Synth (4242):Synth input port (4242:0) 129:0"  # rtmidi's name for it
    assert our_ports(ports, "dialjam", "out", target) == [(128, 0)]


@given(st.text(max_size=400))
def test_any_text_is_read_without_an_exception(text: str) -> None:
    parse_clients(text)
    parse_clients(AFTER_6_5[: len(text)] + text)  # a file cut anywhere, then noise


class Port:
    """A MIDI output that keeps what it was sent (mido messages)."""

    name = "FLUID Synth (4242):Synth input port (4242:0) 129:0"

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, msg: Any) -> None:
        self.sent.append(msg)

    def close(self) -> None:
        pass


def test_a_new_subscriber_asks_for_the_resend_as_a_jack_connection_does(tmp_path: Path) -> None:
    clients = tmp_path / "clients"
    clients.write_text(subscribed("129:0"))
    watch = AlsaWatch(clients, poll_s=3600)  # looked at by the test, not the clock
    out = MidiOut(Port(), alsa_watch=watch)
    follower = watch.follow(CLIENT_NAME, OWN_PORT, Port.name, out.connected)
    assert follower is not None
    try:
        assert follower.step() and not out.sync_requested()  # the synth we opened onto
        clients.write_text(subscribed("129:0, 130:0"))  # a second synth patched in
        assert follower.step() and out.sync_requested()
        assert follower.step() and not out.sync_requested()  # once per connection
        clients.write_text(subscribed("129:0"))
        follower.step()
        clients.write_text(subscribed("130:0, 129:0"))  # unplugged and back: new again
        assert follower.step() and out.sync_requested()
        clients.unlink()  # the sequencer's module unloaded: the watch stops
        assert not follower.step()
    finally:
        out.close()


def test_without_the_file_nothing_is_watched_and_it_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="billboard.alsa_watch")
    watch = AlsaWatch(tmp_path / "absent")
    out = MidiOut(Port(), alsa_watch=watch)
    assert watch.follow(CLIENT_NAME, OWN_PORT, None, out.connected) is None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "is not there" in said[0] and "MIDI sync" in said[0]
    out.close()
    # A file without our port: said too, and nothing followed.
    clients = tmp_path / "clients"
    clients.write_text(BEFORE_6_5.replace('"dialjam"', '"someone"'))
    assert AlsaWatch(clients).follow(CLIENT_NAME, OWN_PORT, None, out.connected) is None
