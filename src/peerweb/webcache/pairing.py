"""Pairing the browser extension with its node: one-time codes the user carries from the CLI
to the extension, and the bearer tokens they are exchanged for.

A code is short enough to type, lives ``CODE_TTL`` seconds and works once. A token is 32
random bytes in hex; the node keeps only sha256 hashes of its tokens, in
``<data-dir>/extension-tokens.json`` (mode 0600), so a copy of that file pairs nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from pathlib import Path

from ..fileio import write_atomic

CODE_TTL = 600.0
# Codes not yet used are forgotten oldest first past this many (a code is asked for by the
# user at the CLI: a handful at most).
MAX_CODES = 16
# Letters and digits that cannot be mistaken for one another when typed from a terminal.
CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
CODE_LENGTH = 10
TOKENS_FILE = "extension-tokens.json"
# Failed redemptions after which every code issued so far is void (guessing is pointless:
# 31**10 codes, but a page that could reach /_ext/pair must not get many tries).
MAX_FAILURES = 20


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class PairingCodes:
    """One-time pairing codes; ``now`` is passed in."""

    def __init__(self, ttl: float = CODE_TTL, make_code: Callable[[], str] = _new_code) -> None:
        self.ttl = ttl
        self.make_code = make_code
        self._codes: dict[str, float] = {}
        self._failures = 0

    def issue(self, now: float) -> str:
        code = self.make_code()
        self._codes[code] = now + self.ttl
        while len(self._codes) > MAX_CODES:
            del self._codes[next(iter(self._codes))]
        self._failures = 0
        return code

    def redeem(self, code: str, now: float) -> bool:
        """Whether ``code`` is a live code; it cannot be used again either way it was."""
        typed = code.strip().lower().replace("-", "").replace(" ", "")
        expires = self._codes.pop(typed, None)
        if expires is not None and expires > now:
            return True
        self._failures += 1
        if self._failures >= MAX_FAILURES:
            self._codes.clear()
        return False


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """The extension's bearer tokens, kept as hashes in the data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / TOKENS_FILE
        self._hashes: set[str] = set()
        try:
            raw = json.loads(self.path.read_text())
            self._hashes = {h for h in raw.get("sha256", []) if isinstance(h, str)}
        except (OSError, ValueError, AttributeError):
            pass  # none yet (or damaged: pair again)

    def issue(self) -> str:
        token = secrets.token_hex(32)
        self._hashes.add(_hash(token))
        body = json.dumps({"sha256": sorted(self._hashes)}).encode()
        write_atomic(self.path, body, mode=0o600)
        return token

    def valid(self, token: str) -> bool:
        given = _hash(token)
        return any(hmac.compare_digest(given, h) for h in self._hashes)

    def __len__(self) -> int:
        return len(self._hashes)
