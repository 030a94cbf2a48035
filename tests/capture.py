"""Loopback traffic recorded by tcpdump (a real capture, no stand-in), read back as the byte
streams each TCP connection carried and the payload of each UDP datagram.

Only what tests need of pcap (the classic format tcpdump writes, microsecond or nanosecond
magic, either byte order) and of Ethernet/IPv4/TCP/UDP. A TCP stream is rebuilt from its
segments in sequence order, each byte once, so a run of bytes split across segments is
still found.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .waiting import wait_until_sync

ETHERNET, LINUX_SLL = 1, 113
# Where the end-of-capture marker goes: tcpdump has written everything before it once the
# marker is in the file (it writes each packet as it comes, ``-U``).
MARKER = ("127.0.0.8", 9)


@contextlib.contextmanager
def recording(path: Path, bpf: str, timeout: float = 10.0) -> Iterator[Path]:
    """tcpdump on ``lo`` writing ``path`` while the block runs (filter ``bpf``)."""
    tcpdump = shutil.which("tcpdump")
    assert tcpdump, "tcpdump is missing: run tests/setup.sh"
    log = path.with_suffix(".log")
    with open(log, "wb") as err:
        marked = f"({bpf}) or (udp and dst host {MARKER[0]} and dst port {MARKER[1]})"
        proc = subprocess.Popen([tcpdump, "-i", "lo", "-n", "-U", "-s", "0", "-B", "65536",
                                 "-w", str(path), marked], stdout=subprocess.DEVNULL,
                                stderr=err)
    try:
        wait_until_sync(lambda: b"listening on" in log.read_bytes() or proc.poll() is not None,
                        timeout, "tcpdump to start")
        assert proc.poll() is None, log.read_text()
        yield path
        token, written = os.urandom(16), path.stat().st_size
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:
            marker.sendto(token, MARKER)
        wait_until_sync(lambda: token in _since(path, written), 6 * timeout,
                        "tcpdump to write all it saw")
    finally:
        proc.terminate()
        proc.wait(timeout=timeout)
    dropped = [line for line in log.read_text().splitlines() if "dropped by kernel" in line]
    assert dropped and dropped[0].split()[0] == "0", f"tcpdump lost packets: {dropped}"


def _since(path: Path, offset: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read()


def flows(path: Path) -> tuple[dict[tuple[str, int, str, int], bytes], list[bytes]]:
    """TCP streams by (source, source port, destination, destination port), and UDP
    payloads, of a pcap file."""
    data = path.read_bytes()
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(order + "I", data[20:24])[0]
    segments: dict[tuple[str, int, str, int], dict[int, bytes]] = {}
    datagrams: list[bytes] = []
    at = 24
    while at + 16 <= len(data):
        _sec, _frac, caplen, _length = struct.unpack(order + "IIII", data[at:at + 16])
        frame = data[at + 16:at + 16 + caplen]
        at += 16 + caplen
        if linktype == ETHERNET:
            ethertype, ip = struct.unpack("!H", frame[12:14])[0], frame[14:]
        elif linktype == LINUX_SLL:
            ethertype, ip = struct.unpack("!H", frame[14:16])[0], frame[16:]
        else:
            raise AssertionError(f"unexpected link type {linktype}")
        if ethertype != 0x0800 or len(ip) < 20:
            continue
        header = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        proto, source, target = ip[9], ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
        body = ip[header:total]
        if proto == 6 and len(body) >= 20:
            sport, dport, seq = struct.unpack("!HHI", body[:8])
            payload = body[(body[12] >> 4) * 4:]
            if payload:
                segments.setdefault((source, sport, target, dport), {})[seq] = payload
        elif proto == 17 and len(body) >= 8:
            datagrams.append(body[8:])
    streams = {}
    for key, parts in segments.items():
        base = next(iter(parts))  # sequence numbers wrap at 2**32: count from the first
        ordered = sorted(((seq - base) % 2**32, payload) for seq, payload in parts.items())
        out, end = bytearray(), None
        for seq, payload in ordered:
            if end is not None and seq < end:  # a retransmission overlapping what we have
                payload = payload[end - seq:]
                seq = end
            out += payload
            end = seq + len(payload)
        streams[key] = bytes(out)
    return streams, datagrams
