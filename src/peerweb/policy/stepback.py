"""When a publisher steps back from a crowd: the swarm already holds every piece twice.

A publisher is the one source of a new site, and in a flash crowd it uploads at full speed
until the last visitor is done, though by then the visitors hold every piece between them
and trade at many times its uplink. Once each piece is held by at least ``HOLDERS`` of the
peers it is connected to, the publisher lowers its upload for that site to ``SHARE`` of its
rate, and takes it back when the crowd thins out or some piece has no holder among its
peers again. This is protocol logic only; node.py applies it to libtorrent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

HOLDERS = 2
SHARE = 0.25
# Fewer peers than this is no crowd: each of them gets the publisher's whole uplink.
MIN_PEERS = 4
# The lowest upload (bytes/s) a publisher steps back to, however slow it was uploading.
MIN_RATE = 100_000


def availability(bitfields: Iterable[Sequence[bool]], num_pieces: int) -> list[int]:
    """How many of the peers hold each piece, from the pieces each peer announced."""
    counts = [0] * num_pieces
    for pieces in bitfields:
        for index, held in enumerate(pieces[:num_pieces]):
            if held:
                counts[index] += 1
    return counts


def should_step_back(counts: Sequence[int], peers: int) -> bool:
    """A crowd holds every piece at least HOLDERS times."""
    return peers >= MIN_PEERS and bool(counts) and min(counts) >= HOLDERS


def should_return(counts: Sequence[int], peers: int) -> bool:
    """Stepped back, but the crowd is gone or some piece has no holder among the peers.

    Between the two thresholds the publisher stays as it is, so it does not flap each time
    a peer that finished disconnects (libtorrent drops seed-to-seed connections)."""
    return peers < MIN_PEERS or not counts or min(counts) == 0


def stepped_back_rate(upload_rate: int) -> int:
    """The upload limit (bytes/s) while stepped back from a crowd."""
    return max(MIN_RATE, int(upload_rate * SHARE))
