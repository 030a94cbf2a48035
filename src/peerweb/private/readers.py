"""Readers by node key: a version's content key sealed to each reader's node, in the torrent.

A node's key is an ed25519 key pair (``NodeKey``, ``<data-dir>/node-key``, mode 0600), told
to others as 52 base32 characters (``peerweb node-key``), the form of a site id. A publisher
that lists a reader (``peerweb share SITE --to <node-key>``) seals each new version's content
key to it: ``crypto_box_seal`` (an ephemeral X25519 key and XSalsa20-Poly1305, libsodium)
to the X25519 form of the reader's ed25519 key (``crypto_sign_ed25519_pk_to_curve25519``).

The sealed keys go in the version's ``readers`` file (``layout.READERS_FILE``): slots of
``SLOT_SIZE`` bytes, each the sealed ``content key || version id``, padded with random
slots to a multiple of ``SLOT_BUCKET`` so storing peers learn only the bucket of the count.
The file is in the torrent, so the signed pointer's info-hash covers it as it covers every
chunk, and each version carries its own list: a reader removed before a version is simply
not in it, and its content key is fresh (never derived), so the removed reader cannot read
that version or any later one. Why not in the pointer's BEP 44 value: at 1000 bytes it
holds about nine such slots; the info-hash in it covers these just as well.

A reader tries each slot with its own key (a failed open costs microseconds), so nothing
in a slot names its reader either.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nacl.bindings import (
    crypto_box_seal,
    crypto_box_seal_open,
    crypto_box_SEALBYTES,
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
    crypto_sign_seed_keypair,
)
from nacl.exceptions import CryptoError

from ..errors import BadAddress, StorageError, UsageError
from ..fileio import write_atomic
from .chunks import ID_SIZE, KEY_SIZE

NODE_KEY_FILE = "node-key"
READERS_LIST = "readers.json"
SLOT_SIZE = KEY_SIZE + ID_SIZE + crypto_box_SEALBYTES  # 96
SLOT_BUCKET = 8
MAX_READERS = 256
NODE_KEY_CHARS = 52


def encode_node_key(public_key: bytes) -> str:
    return base64.b32encode(public_key).decode().rstrip("=").lower()


def parse_node_key(text: str) -> bytes:
    """The 32-byte ed25519 public key a node key's text names, or BadAddress."""
    text = text.strip().lower()
    if len(text) != NODE_KEY_CHARS:
        raise BadAddress(f"a node key is {NODE_KEY_CHARS} base32 characters (as "
                         f"`peerweb node-key` prints it); this is {len(text)}")
    try:
        raw = base64.b32decode(text.upper() + "====")
    except (binascii.Error, ValueError):
        raise BadAddress("a node key is base32 (a-z, 2-7)") from None
    try:
        crypto_sign_ed25519_pk_to_curve25519(raw)
    except (CryptoError, ValueError):
        raise BadAddress("that node key is not a valid ed25519 public key") from None
    return raw


@dataclass(frozen=True)
class NodeKey:
    """This node's own key pair, as the X25519 keys that open slots."""

    public_key: bytes
    """ed25519 public key (what others list)."""
    box_public: bytes
    box_secret: bytes

    @property
    def text(self) -> str:
        return encode_node_key(self.public_key)

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKey:
        public, secret = crypto_sign_seed_keypair(seed)
        return cls(public, crypto_sign_ed25519_pk_to_curve25519(public),
                   crypto_sign_ed25519_sk_to_curve25519(secret))

    @classmethod
    def load_or_create(cls, data_dir: Path) -> NodeKey:
        """``<data-dir>/node-key`` (a 32-byte seed, 0600), made on first use."""
        path = data_dir / NODE_KEY_FILE
        try:
            seed = path.read_bytes()
        except FileNotFoundError:
            seed = os.urandom(32)
            data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # made meanwhile by another process
                seed = path.read_bytes()
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(seed)
        except OSError as exc:
            raise StorageError(f"cannot read this node's key {path}: {exc}") from exc
        if len(seed) != 32:
            raise StorageError(f"{path} is not a node key (32 bytes); move it aside")
        return cls.from_seed(seed)


def seal_slots(content_key: bytes, version_id: bytes, readers: list[bytes]) -> bytes:
    """The ``readers`` file of a version: one slot per reader's ed25519 key, in random
    order, and random slots up to a multiple of ``SLOT_BUCKET``."""
    if len(readers) > MAX_READERS:
        raise UsageError(f"a private site lists at most {MAX_READERS} readers by node key")
    slots = [crypto_box_seal(content_key + version_id, crypto_sign_ed25519_pk_to_curve25519(r))
             for r in readers]
    total = max(SLOT_BUCKET, -(-len(slots) // SLOT_BUCKET) * SLOT_BUCKET)
    slots += [os.urandom(SLOT_SIZE) for _ in range(total - len(slots))]
    order = sorted(range(len(slots)), key=lambda _i: os.urandom(8))
    return b"".join(slots[i] for i in order)


def open_slots(data: bytes, me: NodeKey, version_id: bytes) -> bytes | None:
    """The content key a ``readers`` file seals to this node for ``version_id``, or None."""
    for at in range(0, len(data) - SLOT_SIZE + 1, SLOT_SIZE):
        try:
            plain = crypto_box_seal_open(data[at:at + SLOT_SIZE], me.box_public, me.box_secret)
        except CryptoError:
            continue
        if len(plain) == KEY_SIZE + ID_SIZE and plain[KEY_SIZE:] == version_id:
            return plain[:KEY_SIZE]
    return None


class ReaderList:
    """The readers a publisher lists per site: ``<data-dir>/readers.json``,
    ``{"<site-id>": ["<node key>", ...]}`` (public keys: nothing secret)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / READERS_LIST

    def _read(self) -> dict[str, list[str]]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {self.path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise StorageError(f"{self.path} is not a JSON object; move it aside")
        return {str(s): [str(k) for k in keys] for s, keys in raw.items()
                if isinstance(keys, list)}

    def of(self, site_id: str) -> list[bytes]:
        return [parse_node_key(k) for k in self._read().get(site_id, [])]

    def change(self, site_id: str, add: Sequence[str] = (),
               remove: Sequence[str] = ()) -> list[str]:
        """Add and remove node keys (checked) for a site; the list after."""
        everything = self._read()
        keys = list(everything.get(site_id, []))
        for text in add:
            key = encode_node_key(parse_node_key(text))
            if key not in keys:
                keys.append(key)
        for text in remove:
            key = encode_node_key(parse_node_key(text))
            if key not in keys:
                raise UsageError(f"{key} is not a reader of {site_id}")
            keys.remove(key)
        if len(keys) > MAX_READERS:
            raise UsageError(f"a private site lists at most {MAX_READERS} readers by node key")
        everything[site_id] = keys
        if not keys:
            del everything[site_id]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(everything, indent=1).encode())
        return keys
