"""A synth connected to our ALSA MIDI port mid-show, noticed without the sequencer.

The JACK watch asks libjack who our port is connected to; ALSA's sequencer could be
asked too, but only through /dev/snd/seq, which a machine may not give us. The kernel
also prints every client, port and subscription in ``/proc/asound/seq/clients``
(sound/core/seq/seq_clientmgr.c, ``snd_seq_info_clients_read``)::

    Client info
      cur  clients : 4
    …
    Client 128 : "dialjam" [User Legacy]
      Port   0 : "out" (R-e-) [Out]
        Connecting To: 129:0, 130:0[t:0]
    Client 129 : "FLUID Synth (1234)" [User Legacy]
      Port   0 : "Synth input port (1234:0)" (-We-) [In]
        Connected From: 128:0

(kernels before 6.5 print ``[User]`` and no ``[Out]``). `parse_clients` reads that text
totally: any line it cannot read is skipped, never an exception. `AlsaWatch` reads the
file a few times a second and, when our port ("dialjam"'s `own`) gains a subscriber —
a port it is "Connecting To" —, hands its name to the same path the JACK watch uses
(midi_follow.py → MidiOut.connected: programs, Song Position and Continue). Without the
file (no ALSA sequencer in this kernel, /proc not mounted) it does nothing and says so
once: the operator's R key and the console's "MIDI sync" still resend.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .midi_follow import Follower, Links

log = logging.getLogger(__name__)

SEQ_CLIENTS: Final = Path("/proc/asound/seq/clients")
POLL_S: Final = 0.25  # how often the file is read: a synth is in time within a bar
READ_MAX: Final = 1 << 20  # a few KB in practice; a file larger than this is cut here
_CLIENT: Final = re.compile(r'Client +(\d{1,5}) : "(.*)" \[[^\]]*\]')
_PORT: Final = re.compile(r'  Port +(\d{1,5}) : "(.*)" \([-rRwWeX]{4}\)(?: \[[^\]]*\])?')
_TO: Final = "    Connecting To: "
_ADDRESS: Final = re.compile(r"(\d{1,5}):(\d{1,5})(?:\[[rt]:\d+\])?(?:\[ex\])?")
# The sequencer address rtmidi puts at the end of an ALSA port's name ("… 129:0").
_NAMED_ADDRESS: Final = re.compile(r"(\d{1,5}):(\d{1,5})$")

Address = tuple[int, int]  # (client, port)


@dataclass(frozen=True, slots=True)
class SeqPort:
    """One port of the sequencer: its client's name, its own, and where it sends."""

    client: str
    name: str
    to: frozenset[Address] = frozenset()

    def label(self, address: Address) -> str:
        """As rtmidi names an ALSA port: "client:port c:p"."""
        return f"{self.client}:{self.name} {address[0]}:{address[1]}"


def parse_clients(text: str) -> dict[Address, SeqPort]:
    """Every port ``/proc/asound/seq/clients`` lists, with the ports it connects to."""
    ports: dict[Address, SeqPort] = {}
    client: tuple[int, str] | None = None
    current: Address | None = None
    for line in text.splitlines():
        if match := _CLIENT.fullmatch(line):
            client, current = (int(match[1]), match[2]), None
        elif client is not None and (match := _PORT.fullmatch(line)):
            current = (client[0], int(match[1]))
            ports[current] = SeqPort(client[1], match[2])
        elif current is not None and line.startswith(_TO):
            items = (_ADDRESS.fullmatch(item.strip()) for item in line[len(_TO) :].split(","))
            to = frozenset((int(m[1]), int(m[2])) for m in items if m is not None)
            ports[current] = SeqPort(ports[current].client, ports[current].name, to)
        elif not line.startswith("    "):  # a port's subscriptions end at its client's next line
            current = None
    return ports


def our_ports(
    ports: dict[Address, SeqPort], client: str, own: str, target: str | None
) -> list[Address]:
    """Our port: `own` of a client named `client`; with several (two shows on one
    machine), the one connected to `target` (an rtmidi ALSA name ending "c:p")."""
    ours = [a for a, p in ports.items() if p.client == client and p.name == own]
    named = _NAMED_ADDRESS.search(target or "")
    if named is not None:
        wanted = (int(named[1]), int(named[2]))
        return [a for a in ours if wanted in ports[a].to] or ours
    return ours


def links(ports: dict[Address, SeqPort], ours: list[Address]) -> Links:
    """(our port, the peer's name) for every subscriber of our ports."""
    out: Links = set()
    for address in ours:
        port = ports.get(address)
        for peer in port.to if port is not None else ():
            named = ports.get(peer)
            label = named.label(peer) if named is not None else f"{peer[0]}:{peer[1]}"
            out.add((f"{address[0]}:{address[1]}", label))
    return out


class AlsaWatch:
    """Reads `path` (``/proc/asound/seq/clients``) to follow our port's subscribers."""

    def __init__(self, path: Path = SEQ_CLIENTS, poll_s: float = POLL_S) -> None:
        self.path = path
        self.poll_s = poll_s
        self._follower: Follower | None = None
        self._gone_said = False

    def _read(self) -> str | None:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                return f.read(READ_MAX)
        except OSError:
            return None

    def follow(
        self, client: str, own: str, target: str | None, on_connect: Callable[[list[str]], None]
    ) -> Follower | None:
        """Hand `on_connect` the names of the ports newly subscribed to our output
        `own` of the client named `client`, from a thread of ours, until `close`;
        None, said once, when the file or our port is not there."""
        text = self._read()
        if text is None:
            log.info(
                "MIDI: %s is not there (no ALSA sequencer in this kernel): a synth connected "
                "mid-show is not noticed; press R or the console's MIDI sync to send it "
                "the sounds and the song position",
                self.path,
            )
            return None
        ports = parse_clients(text)
        ours = our_ports(ports, client, own, target)
        if not ours:
            log.warning(
                "MIDI: our ALSA port %s:%s is not in %s: connections go unnoticed",
                client,
                own,
                self.path,
            )
            return None
        look = lambda: self._look(ours)  # noqa: E731 — the follower's one question
        self._follower = Follower(look, on_connect, links(ports, ours), self.poll_s).start()
        return self._follower

    def _look(self, ours: list[Address]) -> Links | None:
        text = self._read()
        if text is None:
            if not self._gone_said:
                self._gone_said = True
                log.warning("MIDI: %s went away: connections go unnoticed", self.path)
            return None
        return links(parse_clients(text), ours)

    def close(self) -> None:
        if self._follower is not None:
            self._follower.close()
