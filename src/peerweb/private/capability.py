"""Read capabilities: a link that carries a site id and the site's read key.

    peerweb://<site-id>#k=<48 base64url characters>

The 48 characters are the 32-byte read key and a 4-byte check (BLAKE2b of the site id and
the key), so a link cut short or mistyped is refused before anything is fetched, and a key
pasted beside another site's id too. The key sits in the fragment, as Peergos and the
issue ipfs/notes#270 asks for: a browser never sends a fragment to a server (RFC 3986
section 3.5), so a gateway URL with it (``http://<site-id>.localhost:PORT/#k=...``) is a
capability as well, and is accepted here.

The site key (the ed25519 key that signs pointers) is the write capability; the torrent's
info-hash is the verify capability (anyone can check and seed the ciphertext).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from ..content.identity import normalise_site_id, public_key_from_site_id
from ..errors import BadAddress, BadCapability
from .chunks import KEY_SIZE

SCHEME = "peerweb://"
CHECK_SIZE = 4
ENCODED_SIZE = (KEY_SIZE + CHECK_SIZE) * 4 // 3  # 48 characters, no padding
_FRAGMENT = re.compile(r"(?:^|&)k=([^&]*)")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class ReadCapability:
    site_id: str
    read_key: bytes

    def link(self) -> str:
        return f"{SCHEME}{self.site_id}#k={encode_key(self.site_id, self.read_key)}"

    def gateway_link(self, port: int) -> str:
        """The same capability as the site's URL on a local gateway (key in the fragment)."""
        return (f"http://{self.site_id}.localhost:{port}/"
                f"#k={encode_key(self.site_id, self.read_key)}")


def _check(site_id: str, key: bytes) -> bytes:
    return hashlib.blake2b(b"peerweb-read-cap" + site_id.encode() + key,
                           digest_size=CHECK_SIZE).digest()


def encode_key(site_id: str, key: bytes) -> str:
    return base64.urlsafe_b64encode(key + _check(site_id, key)).decode()


def parse(text: str) -> ReadCapability:
    """A capability from its link (either form), or BadCapability saying what is wrong."""
    text = text.strip()
    where, hash_mark, fragment = text.partition("#")
    if not hash_mark:
        raise BadCapability("a read capability ends in #k=<key>; this has no '#' (cut short?)")
    if where.startswith(SCHEME):
        host = where[len(SCHEME):].rstrip("/")
    elif where.startswith(("http://", "https://")):
        host = where.split("//", 1)[1].split("/", 1)[0].split(":", 1)[0]
        host = host.split(".", 1)[0]
    else:
        raise BadCapability("a read capability starts with peerweb:// (or is a gateway URL)")
    try:
        site_id = normalise_site_id(host)
        public_key_from_site_id(site_id)
    except BadAddress as exc:
        raise BadCapability(f"the capability's site id is not valid: {exc}") from None
    found = _FRAGMENT.search(fragment)
    if found is None:
        raise BadCapability("the capability has no k=<key> after its '#'")
    encoded = found.group(1)
    if len(encoded) != ENCODED_SIZE:
        raise BadCapability(f"the capability's key is {len(encoded)} characters, not "
                            f"{ENCODED_SIZE}: it was cut short or altered")
    if not _BASE64URL.fullmatch(encoded):
        raise BadCapability("the capability's key is not base64url")
    try:
        raw = base64.urlsafe_b64decode(encoded)
    except (binascii.Error, ValueError):
        raise BadCapability("the capability's key is not base64url") from None
    key, check = raw[:KEY_SIZE], raw[KEY_SIZE:]
    if not hmac.compare_digest(check, _check(site_id, key)):
        raise BadCapability("the capability's key does not match its site id (mistyped, or "
                            "pieced together from two links)")
    return ReadCapability(site_id, key)
