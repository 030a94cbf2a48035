"""The read keys a node holds: ``<data-dir>/keyring.json``, mode 0600.

``{"<site-id>": "<read key, base64url>"}``. The publisher adds the key of each private site
it makes, ``peerweb open CAP`` the key a capability carries. Whoever can read this file can
read those sites; it sits beside the site keys, under the same permissions. Read again
whenever a key is missing, so a key the CLI added is found by the running node.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

from ..errors import StorageError
from .chunks import KEY_SIZE

KEYRING_FILE = "keyring.json"


class Keyring:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / KEYRING_FILE
        self._keys: dict[str, bytes] = {}
        self._loaded: tuple[int, int] | None = None

    def get(self, site_id: str) -> bytes | None:
        key = self._keys.get(site_id)
        if key is None:
            self._reload()
            key = self._keys.get(site_id)
        return key

    def sites(self) -> list[str]:
        self._reload()
        return sorted(self._keys)

    def put(self, site_id: str, key: bytes) -> bool:
        """Keep ``key`` for ``site_id``; whether it changed anything."""
        if len(key) != KEY_SIZE:
            raise ValueError("a read key is 32 bytes")
        self._reload()
        if self._keys.get(site_id) == key:
            return False
        self._keys[site_id] = key
        self._write()
        return True

    def _reload(self) -> None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp == self._loaded:
            return
        try:
            raw = json.loads(self.path.read_text())
            keys = {str(s): base64.urlsafe_b64decode(str(k)) for s, k in raw.items()}
        except (OSError, ValueError, AttributeError, binascii.Error) as exc:
            raise StorageError(f"cannot read the keyring {self.path}: {exc}") from exc
        self._keys = {s: k for s, k in keys.items() if len(k) == KEY_SIZE}
        self._loaded = stamp

    def _write(self) -> None:
        data = json.dumps({s: base64.urlsafe_b64encode(k).decode()
                           for s, k in sorted(self._keys.items())}, indent=1).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        info = self.path.stat()
        self._loaded = (info.st_mtime_ns, info.st_size)
