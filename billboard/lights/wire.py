"""The two DMX-over-IP protocols as packet makers, and the UDP socket they leave by.

The packets come from kept libraries: sACN's from `sacn` (its `DataPacket`: the
E1.31 root, framing and DMP layers, CID, sequence, options), Art-Net's ArtDmx header
from `stupidArtnet`. Their senders are not used, and each for a reason a venue
would feel: `sacn.sACNsender` always sends to port 5568 and its thread dies on the
first send that fails (a cable pulled, a host gone); `stupidArtnet`'s `show` prints a
failed send to stdout and carries on, forty times a second. `pyartnet` (the
best-typed of the three) is asyncio only: a node lives in an event loop's tasks, with
its own clock, refresh and error retry, which would take a second event loop or the
relay's. Our thread (`sender.py`) keeps the pace, the retries and the logging for
both protocols alike; these classes only make bytes and say where they go.
"""

from __future__ import annotations

import socket
import uuid
from typing import Protocol

from sacn import DataPacket
from sacn.messages.data_packet import calculate_multicast_addr
from stupidArtnet import StupidArtnet

from .settings import UNIVERSE_SIZE, LightsConfig

SACN_MULTICAST_TTL = 8  # hops a multicast frame may cross, as the `sacn` library's default


class Wire(Protocol):
    """One protocol's packets: the bytes of one universe's frame, and its address."""

    name: str

    def packet(self, universe: int, data: bytes, *, last: bool = False) -> bytes: ...
    def host(self, universe: int) -> str: ...


class ArtNet:
    """ArtDmx (Art-Net 4, OpCode 0x5000) to one node, or a broadcast address."""

    name = "Art-Net"

    def __init__(self, target: str) -> None:
        self.target = target
        self._headers: dict[int, bytes] = {}

    def packet(self, universe: int, data: bytes, *, last: bool = False) -> bytes:
        header = self._headers.get(universe)
        if header is None:
            # Only its header is wanted: the socket it opens is closed at once. Its
            # Sequence stays 0, which Art-Net 4 defines as "sequencing disabled".
            maker = StupidArtnet("0.0.0.0", universe, UNIVERSE_SIZE, even_packet_size=True)
            maker.close()
            header = self._headers[universe] = bytes(maker.packet_header)
        return header + data

    def host(self, universe: int) -> str:
        return self.target


class Sacn:
    """E1.31 data packets, unicast to `target` or, without one, multicast to each
    universe's group 239.255.hi.lo (E1.31 §9.3.1)."""

    name = "sACN"

    def __init__(self, target: str, source: str, cid: bytes | None = None) -> None:
        self.target = target
        self.source = source
        self.cid = tuple(cid if cid is not None else uuid.uuid4().bytes)
        self._packets: dict[int, DataPacket] = {}

    def packet(self, universe: int, data: bytes, *, last: bool = False) -> bytes:
        packet = self._packets.get(universe)
        if packet is None:
            packet = DataPacket(cid=self.cid, sourceName=self.source, universe=universe)
            self._packets[universe] = packet
        packet.dmxData = tuple(data)
        # E1.31 §6.2.6: a source that stops says so in its last three packets, so a
        # receiver lets go at once instead of holding the look for its 2.5 s timeout.
        packet.option_StreamTerminated = last
        out = bytes(packet.getBytes())
        packet.sequence_increase()  # E1.31 §6.7.2: receivers drop old or repeated ones
        return out

    def host(self, universe: int) -> str:
        return self.target or str(calculate_multicast_addr(universe))


def wire_for(config: LightsConfig) -> Wire:
    if config.protocol == "artnet":
        return ArtNet(config.target)
    return Sacn(config.target, config.source)


class Link:
    """The UDP socket frames leave by, with its destinations resolved once (a host name
    is looked up when first used, and again after a failed send). Every failure is an
    `OSError` (`socket.gaierror` included), for the sender to log and retry."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._sock: socket.socket | None = None
        self._addresses: dict[str, str] = {}

    def send(self, host: str, payload: bytes) -> None:
        sock = self._sock
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            # A broadcast target (2.255.255.255, as Art-Net nodes often sit on) needs
            # this, and it changes nothing for a unicast one.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, SACN_MULTICAST_TTL)
            self._sock = sock
        address = self._addresses.get(host)
        if address is None:
            infos = socket.getaddrinfo(host, self.port, socket.AF_INET, socket.SOCK_DGRAM)
            address = self._addresses[host] = str(infos[0][4][0])
        sock.sendto(payload, (address, self.port))

    def reset(self) -> None:
        """After a failure: the next send opens a new socket and looks names up again."""
        self.close()
        self._addresses.clear()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
