"""A private version's header and manifest: what a reader needs besides the chunks.

The **header** (file ``header``, 96 bytes) is ``MAGIC || version id (16) || nonce (24) ||
content key sealed under the site's read key (32 + 16)``, the seal's associated data being
``MAGIC || b"key" || version id``. The content key is fresh and random for each version;
the read key, the one a capability carries, stays with the site, so a capability opens
the versions published after it too, and a later version can change it (issue 20's reader
removal) without any change to this format.

The **manifest** (file ``manifest``) is the tree: for each file its path, its random file
id (also the name of its ciphertext file) and its size, bencoded (BEP 3) behind an 8-byte
length and sealed in chunks like any file, under file id ``MANIFEST_ID``, padded to a bucket.

The version is bound by its random id, not the pointer's version number: the number is
chosen after the folder is hashed (the network is asked meanwhile), and the hash covers
these files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

from ..content import bencode
from ..errors import TamperedChunk, WrongKey
from . import chunks
from .chunks import ID_SIZE, KEY_SIZE, MAGIC, NONCE_SIZE, TAG_SIZE

HEADER_SIZE = len(MAGIC) + ID_SIZE + NONCE_SIZE + KEY_SIZE + TAG_SIZE
MANIFEST_ID = bytes(ID_SIZE)
"""The manifest's file id (file ids are random: this one is never drawn in practice)."""
LENGTH_SIZE = 8
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class Header:
    version_id: bytes
    """Random, one per version: bound into every chunk's associated data."""
    sealed_key: bytes
    """``nonce || ciphertext || tag`` of the content key under the read key."""

    def encode(self) -> bytes:
        return MAGIC + self.version_id + self.sealed_key

    def content_key(self, read_key: bytes) -> bytes:
        """The version's content key, or WrongKey."""
        nonce, sealed = self.sealed_key[:NONCE_SIZE], self.sealed_key[NONCE_SIZE:]
        try:
            return crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed, MAGIC + b"key" + self.version_id, nonce, read_key)
        except CryptoError:
            raise WrongKey("the read key this node holds for this site does not open this "
                           "version (a wrong capability, or one the publisher no longer "
                           "gives out)") from None


def make_header(read_key: bytes, content_key: bytes, version_id: bytes) -> Header:
    nonce = os.urandom(NONCE_SIZE)
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
        content_key, MAGIC + b"key" + version_id, nonce, read_key)
    return Header(version_id, nonce + sealed)


def parse_header(data: bytes) -> Header:
    if len(data) != HEADER_SIZE or not data.startswith(MAGIC):
        raise TamperedChunk("not a peerweb private site header (format PWPRIV01)")
    body = data[len(MAGIC):]
    return Header(body[:ID_SIZE], body[ID_SIZE:])


@dataclass(frozen=True)
class Entry:
    """One file of a private version."""

    path: str
    """Path inside the site, '/'-separated (as ``content.folder.SourceFile.relative``)."""
    file_id: bytes
    """Random; in each chunk's associated data, and (hex) its ciphertext file's name."""
    size: int
    """Bytes of plaintext (the ciphertext holds ``chunks.stored_size(size)``)."""


@dataclass(frozen=True)
class Manifest:
    entries: tuple[Entry, ...]

    def encode(self) -> bytes:
        """The plaintext to seal: length, then the bencoded tree."""
        tree = bencode.encode({
            b"v": MANIFEST_FORMAT,
            b"files": [[e.path.encode(), e.file_id, e.size] for e in self.entries],
        })
        return len(tree).to_bytes(LENGTH_SIZE, "big") + tree

    def by_path(self) -> dict[str, Entry]:
        return {e.path: e for e in self.entries}


def seal_manifest(manifest: Manifest, content_key: bytes, version_id: bytes) -> bytes:
    return chunks.seal_stream(content_key, version_id, MANIFEST_ID, manifest.encode())


def open_manifest(ciphertext: bytes, content_key: bytes, version_id: bytes) -> Manifest:
    """The manifest, or TamperedChunk for anything altered, moved or malformed."""
    plain = chunks.open_stream(content_key, version_id, MANIFEST_ID, ciphertext)
    length = int.from_bytes(plain[:LENGTH_SIZE], "big")
    if length > len(plain) - LENGTH_SIZE:
        raise TamperedChunk("the private manifest is cut short")
    try:
        tree = bencode.decode(plain[LENGTH_SIZE:LENGTH_SIZE + length])
        if not isinstance(tree, dict) or tree.get(b"v") != MANIFEST_FORMAT:
            raise ValueError("not a manifest of format 1")
        files = tree[b"files"]
        if not isinstance(files, list):
            raise ValueError("files is not a list")
        entries = []
        for item in files:
            if not isinstance(item, list) or len(item) != 3:
                raise ValueError("a file is not [path, id, size]")
            path, file_id, size = item
            if (not isinstance(path, bytes) or not isinstance(file_id, bytes)
                    or len(file_id) != ID_SIZE or not isinstance(size, int) or size < 0):
                raise ValueError("a file has a bad path, id or size")
            text = path.decode()
            if not _is_site_path(text):
                raise ValueError(f"a path that is not a site path: {text[:80]!r}")
            entries.append(Entry(text, file_id, size))
    except (ValueError, KeyError, bencode.BencodeError) as exc:
        # Authenticated but malformed: a publisher's bug, told as such.
        raise TamperedChunk(f"the private manifest is malformed: {exc}") from None
    if len({e.path for e in entries}) != len(entries) or len(
            {e.file_id for e in entries}) != len(entries):
        raise TamperedChunk("the private manifest names a path or a file id twice")
    return Manifest(tuple(entries))


def _is_site_path(path: str) -> bool:
    """A relative '/'-separated path with no empty, '.' or '..' segment (as a scan makes)."""
    return all(part not in ("", ".", "..") and "\\" not in part and "\0" not in part
               for part in path.split("/"))
