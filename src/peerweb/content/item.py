"""Signed BEP 44 mutable items in general: a key, a salt, a sequence number, a value.

Version pointers (``pointer``) are items without a salt; names under a key
(``peerweb.names.records``) are items with one. Both are checked here first: the signature
over ``[4:salt<salt>]3:seqi<seq>e1:v<value>`` (BEP 44), before anything parses the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ForgedPointer
from .identity import verify_signature
from .pointer import MAX_VALUE_SIZE, signed_message

# BEP 44: "the salt ... must not be longer than 64 bytes".
MAX_SALT_SIZE = 64


@dataclass(frozen=True)
class SignedItem:
    """A BEP 44 mutable item as a DHT node handed it over (checked by ``verify_item``)."""

    public_key: bytes
    """The ed25519 key the item is stored under (32 bytes)."""
    salt: bytes
    """BEP 44 salt: with the key, it names the item (at most 64 bytes)."""
    seq: int
    """BEP 44 sequence number, chosen by libtorrent; signed, but not ordered by peerweb."""
    value: bytes
    """The exact bencoded ``v`` the signature covers."""
    signature: bytes
    """ed25519 signature over the BEP 44 message."""


def verify_item(item: SignedItem) -> SignedItem:
    """The item itself if its key signed it; ForgedPointer otherwise."""
    if len(item.value) > MAX_VALUE_SIZE:
        raise ForgedPointer(f"value of {len(item.value)} bytes exceeds BEP 44's "
                            f"{MAX_VALUE_SIZE}")
    if len(item.salt) > MAX_SALT_SIZE:
        raise ForgedPointer(f"salt of {len(item.salt)} bytes exceeds BEP 44's {MAX_SALT_SIZE}")
    if not verify_signature(item.public_key, item.signature,
                            signed_message(item.seq, item.value, item.salt)):
        raise ForgedPointer("bad signature: this item was not signed by the key it is "
                            "stored under")
    return item
