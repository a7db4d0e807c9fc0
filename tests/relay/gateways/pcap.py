"""A tiny reader of classic libpcap files, for tests: UDP datagrams out of a capture.

Classic format only (not pcapng): both byte orders, microsecond (0xA1B2C3D4) and
nanosecond (0xA1B23C4D) magic; link types Ethernet (1, with 802.1Q/802.1ad tags),
BSD loopback (0), raw IP (101, 228 IPv4, 229 IPv6), Linux cooked SLL (113) and SLL2
(276); IPv4 (whole datagrams: fragments are skipped) and IPv6
(skipping hop-by-hop, routing and destination-options headers) carrying UDP.
Anything else in the file is skipped; a truncated file ends the iteration.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC_MICROSECONDS = 0xA1B2C3D4
MAGIC_NANOSECONDS = 0xA1B23C4D

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8)
_UDP = 17
_IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options


@dataclass(frozen=True)
class UdpDatagram:
    """One UDP datagram of a capture, with its capture time in seconds."""

    time: float
    src: str
    src_port: int
    dst: str
    dst_port: int
    payload: bytes


def read_udp(path: Path | str) -> list[UdpDatagram]:
    """Every UDP datagram of a classic pcap file, in capture order."""
    return list(iter_udp(Path(path).read_bytes()))


def iter_udp(data: bytes) -> Iterator[UdpDatagram]:
    """The UDP datagrams of a classic pcap file's bytes."""
    if len(data) < 24:
        return
    for order in ("<", ">"):
        (magic,) = struct.unpack_from(order + "I", data)
        if magic in (MAGIC_MICROSECONDS, MAGIC_NANOSECONDS):
            break
    else:
        return
    scale = 1e-6 if magic == MAGIC_MICROSECONDS else 1e-9
    # The pcap draft (draft-ietf-opsawg-pcap) lets the upper bits of the link-type word
    # carry FCS information; the link type is the low 28 bits.
    (network,) = struct.unpack_from(order + "I", data, 20)
    linktype = network & 0x0FFFFFFF
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, captured, _original = struct.unpack_from(order + "IIII", data, offset)
        offset += 16
        if offset + captured > len(data):
            return
        frame = data[offset : offset + captured]
        offset += captured
        datagram = _udp_in_frame(frame, linktype, order, seconds + fraction * scale)
        if datagram is not None:
            yield datagram


def _udp_in_frame(frame: bytes, linktype: int, order: str, time: float) -> UdpDatagram | None:
    packet = _network_packet(frame, linktype, order)
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4:
        return _udp_in_ipv4(packet, time)
    if version == 6:
        return _udp_in_ipv6(packet, time)
    return None


def _network_packet(frame: bytes, linktype: int, order: str) -> bytes | None:
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return frame
    if linktype == LINKTYPE_NULL:
        # A 4-byte address family in the capturing host's byte order.
        return frame[4:] if len(frame) >= 4 else None
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        offset = 12
        (ethertype,) = struct.unpack_from("!H", frame, offset)
        while ethertype in _VLAN_TAGS and len(frame) >= offset + 6:
            offset += 4
            (ethertype,) = struct.unpack_from("!H", frame, offset)
        return frame[offset + 2 :] if ethertype in (_ETHERTYPE_IPV4, _ETHERTYPE_IPV6) else None
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return None
        (protocol,) = struct.unpack_from("!H", frame, 14)
        return frame[16:] if protocol in (_ETHERTYPE_IPV4, _ETHERTYPE_IPV6) else None
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return None
        (protocol,) = struct.unpack_from("!H", frame, 0)
        return frame[20:] if protocol in (_ETHERTYPE_IPV4, _ETHERTYPE_IPV6) else None
    return None


def _udp_in_ipv4(packet: bytes, time: float) -> UdpDatagram | None:
    if len(packet) < 20:
        return None
    header_length = (packet[0] & 0x0F) * 4
    (total_length,) = struct.unpack_from("!H", packet, 2)
    (fragment,) = struct.unpack_from("!H", packet, 6)
    if packet[9] != _UDP or fragment & 0x3FFF:  # MF set or a non-zero offset: a fragment
        return None
    src = str(ipaddress.IPv4Address(packet[12:16]))
    dst = str(ipaddress.IPv4Address(packet[16:20]))
    return _udp(packet[header_length : max(header_length, total_length)], src, dst, time)


def _udp_in_ipv6(packet: bytes, time: float) -> UdpDatagram | None:
    if len(packet) < 40:
        return None
    (payload_length,) = struct.unpack_from("!H", packet, 4)
    next_header = packet[6]
    src = str(ipaddress.IPv6Address(packet[8:24]))
    dst = str(ipaddress.IPv6Address(packet[24:40]))
    body = packet[40 : 40 + payload_length]
    while next_header in _IPV6_EXTENSIONS and len(body) >= 8:
        next_header, length = body[0], (body[1] + 1) * 8
        body = body[length:]
    return _udp(body, src, dst, time) if next_header == _UDP else None


def _udp(segment: bytes, src: str, dst: str, time: float) -> UdpDatagram | None:
    if len(segment) < 8:
        return None
    src_port, dst_port, length = struct.unpack_from("!HHH", segment)
    if length < 8 or length > len(segment):
        return None
    return UdpDatagram(time, src, src_port, dst, dst_port, segment[8:length])
