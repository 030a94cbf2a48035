"""Site identities: ed25519 key pairs, site ids, and the key store on disk.

A site's address is its ed25519 public key (BEP 44 mutable items are keyed by it). Written as
52 lowercase base32 characters without padding it fits one DNS label (at most 63), so each
site gets its own browser origin: ``http://<site-id>.localhost:PORT/``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

# libsodium (PyNaCl) signs and verifies; `cryptography` is imported only to export and import
# keys as encrypted PKCS#8, which keeps it (about 8 MB resident) out of a running node.
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

from ..errors import BadAddress, NotFound, StorageError, UsageError
from ..fileio import write_atomic

SITE_ID_LENGTH = 52
_SITE_ID_RE = re.compile(r"[a-z2-7]{52}")
_ASCII_SPACE = " \t\r\n"
MIN_PASSPHRASE = 8
_KEY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The data dir holds the keys and what the user browsed: readable by its owner alone.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def site_id_from_public_key(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise ValueError("an ed25519 public key is 32 bytes")
    return base64.b32encode(public_key).decode().rstrip("=").lower()


def normalise_site_id(site_id: str) -> str:
    """The canonical spelling (lowercase) of a site id given in any case; BadAddress if it is
    not one. Every place that takes a site id from outside (Host header, URL path, peer port,
    CLI) goes through here, so ``ABC...`` and ``abc...`` name the same site everywhere."""
    public_key_from_site_id(site_id)  # raises unless ASCII: lower() maps some other letters
    return site_id.strip(_ASCII_SPACE).lower()  # onto ASCII ones (KELVIN SIGN -> "k")


@functools.lru_cache(maxsize=4096)  # every gateway request decodes its Host: keep it cheap
def public_key_from_site_id(site_id: str) -> bytes:
    text = site_id.strip(_ASCII_SPACE)
    if not text.isascii() or not _SITE_ID_RE.fullmatch(text.lower()):
        raise BadAddress(f"not a site id (52 base32 characters): {site_id[:80]!r}")
    text = text.lower()
    raw = base64.b32decode(text.upper() + "====")
    if site_id_from_public_key(raw) != text:  # the last character carries 4 unused bits
        raise BadAddress(f"not a canonical site id: {site_id[:80]!r}")
    return raw


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """RFC 8032 ed25519 verification; False for any malformed input."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SiteKey:
    """A publisher's key pair. ``seed`` is the 32-byte RFC 8032 private key."""

    name: str
    seed: bytes

    @functools.cached_property
    def public_key(self) -> bytes:
        return bytes(SigningKey(self.seed).verify_key)

    @property
    def site_id(self) -> str:
        return site_id_from_public_key(self.public_key)

    @property
    def expanded_secret(self) -> bytes:
        """The 64-byte secret libtorrent's ed25519 code signs with: clamp(sha512(seed)[:32]) +
        sha512(seed)[32:] (RFC 8032 section 5.1.5)."""
        h = bytearray(hashlib.sha512(self.seed).digest())
        h[0] &= 248
        h[31] &= 127
        h[31] |= 64
        return bytes(h)

    def sign(self, message: bytes) -> bytes:
        return bytes(SigningKey(self.seed).sign(message).signature)

    @classmethod
    def generate(cls, name: str) -> SiteKey:
        return cls(name=name, seed=os.urandom(32))


def ensure_private_dir(path: Path) -> None:
    """Create the folder ``path`` with mode 0700, or tighten it to the owner alone if it
    exists, belongs to this user and lets others in. Its parents are created with the
    usual modes. A folder of another user is left as it is (we could not change it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise StorageError(f"{path} exists and is not a folder") from None
        tighten(path)
    else:
        os.chmod(path, PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask


def tighten(path: Path) -> None:
    """Drop the group and other permission bits of ``path`` if this user owns it."""
    info = path.stat()
    owned = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    mode = stat.S_IMODE(info.st_mode)
    if owned and mode & 0o077:
        os.chmod(path, mode & ~0o077)


class KeyStore:
    """Publisher keys in ``<data-dir>/keys/NAME.key``, one hex seed per file, mode 0600.

    The keys folder and the data dir around it are mode 0700: created so, and tightened when
    found looser (and owned by this user) whenever a key is written or read.
    Losing a key ends the site's updates: nobody else can sign a newer version. Beside each
    key that signed, ``NAME.signed`` holds the highest version it signed (JSON: ``site_id``,
    ``version``), so a node that lost its state does not sign a version holders have seen.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        """``<data-dir>/keys``; its parent is the data dir."""

    def _path(self, name: str) -> Path:
        if not _KEY_NAME_RE.match(name):
            raise UsageError(
                f"bad key name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
            )
        return self.directory / f"{name}.key"

    def create(self, name: str) -> SiteKey:
        path = self._path(name)
        if path.exists():
            raise UsageError(f"a key named {name!r} already exists; pick another name")
        key = SiteKey.generate(name)
        self._write(path, key)
        return key

    def get(self, name: str) -> SiteKey:
        path = self._path(name)
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            raise NotFound(
                f"no key named {name!r}; create it with `peerweb key new {name}`"
            ) from None
        try:
            seed = bytes.fromhex(text)
        except ValueError:
            seed = b""
        if len(seed) != 32:
            raise UsageError(f"key file {path} is damaged (expected 64 hex characters)")
        for existing in (self.directory.parent, self.directory, path):
            tighten(existing)
        return SiteKey(name=name, seed=seed)

    def get_or_create(self, name: str) -> SiteKey:
        try:
            return self.get(name)
        except NotFound:
            return self.create(name)

    def remove(self, name: str) -> None:
        """Delete key ``name``. Its site can never be updated again unless an export of the
        key survives: callers ask the user first."""
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            raise NotFound(f"no key named {name!r}; `peerweb key list` shows them") from None
        self._signed_path(name).unlink(missing_ok=True)  # a new key of that name starts afresh

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.key"))

    def find_by_site_id(self, site_id: str) -> SiteKey | None:
        for name in self.names():
            key = self.get(name)
            if key.site_id == site_id:
                return key
        return None

    def signed_version(self, name: str) -> int:
        """The highest version the key signed, as noted beside it (0: none noted)."""
        try:
            noted = json.loads(self._signed_path(name).read_text())
            version = int(noted["version"])
            mine = noted["site_id"] == self.get(name).site_id  # not a removed key's namesake
        except (OSError, ValueError, KeyError, TypeError):
            return 0
        return version if mine and version > 0 else 0

    def note_signed(self, name: str, version: int) -> None:
        """Note that the key signed ``version``, durably, before the signature is handed out
        (a version noted but never published is harmless: the next one skips it)."""
        if version <= self.signed_version(name):
            return
        path = self._signed_path(name)
        data = json.dumps({"site_id": self.get(name).site_id, "version": version})
        write_atomic(path, (data + "\n").encode())

    def _signed_path(self, name: str) -> Path:
        return self._path(name).with_suffix(".signed")

    def export(self, name: str, passphrase: str) -> bytes:
        """The key as an encrypted PKCS#8 PEM (scrypt-derived key, AES-256), for a backup."""
        if len(passphrase) < MIN_PASSPHRASE:
            raise UsageError(f"use a passphrase of at least {MIN_PASSPHRASE} characters")
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.from_private_bytes(self.get(name).seed)
        return private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )

    def import_(self, name: str, pem: bytes, passphrase: str) -> SiteKey:
        """Store a key exported by ``export`` under ``name``; the passphrase must match."""
        path = self._path(name)
        if path.exists():
            raise UsageError(f"a key named {name!r} already exists; pick another name")
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            private = serialization.load_pem_private_key(pem, passphrase.encode())
        except (ValueError, TypeError):
            raise UsageError("could not decrypt the key: wrong passphrase or not a "
                             "peerweb key export") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise UsageError("that file holds a key of another kind; peerweb keys are ed25519")
        seed = private.private_bytes(serialization.Encoding.Raw,
                                     serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
        key = SiteKey(name=name, seed=seed)
        existing = self.find_by_site_id(key.site_id)
        if existing is not None:
            raise UsageError(f"this key is already here, named {existing.name!r}")
        self._write(path, key)
        return key

    def _write(self, path: Path, key: SiteKey) -> None:
        ensure_private_dir(self.directory.parent)
        ensure_private_dir(self.directory)
        # O_EXCL + mode 0600 at creation: the seed is never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(key.seed.hex() + "\n")
