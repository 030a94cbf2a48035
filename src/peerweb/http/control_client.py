"""The CLI's side of the control API: find the node through its data dir and call it."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..datadir import NODE_FILE, TOKEN_FILE
from ..errors import NodeNotRunning, error_from


class NodeClient:
    def __init__(self, data_dir: Path, timeout: float = 30.0) -> None:
        self.data_dir = data_dir
        self.timeout = timeout
        try:
            info = json.loads((data_dir / NODE_FILE).read_text())
            self.api = str(info["api"])
            self.gateway = str(info["gateway"])
            self.pid = int(info.get("pid", 0))
            self.token = (data_dir / TOKEN_FILE).read_text().strip()
        except (OSError, ValueError, KeyError):
            raise NodeNotRunning(
                f"no node is running for {data_dir}; start one with "
                f"`peerweb node --data-dir {data_dir}`"
            ) from None

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.api + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    answer = json.loads(exc.read())
                    message, kind = str(answer["error"]), answer.get("kind")
                except (ValueError, KeyError, TypeError):
                    message, kind = f"HTTP {exc.code}", None
            raise error_from(kind, message, exc.code) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise NodeNotRunning(
                f"the node for {self.data_dir} does not answer ({exc}); is it still running? "
                f"Start it with `peerweb node --data-dir {self.data_dir}`"
            ) from None

    def status(self) -> dict[str, Any]:
        with self._request("GET", "/v1/status") as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def log(self, site_id: str) -> list[dict[str, Any]]:
        with self._request("GET", f"/v1/sites/{site_id}/log") as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def export(self, site_id: str, output: Path, v1: bool) -> dict[str, Any]:
        body = {"site_id": site_id, "output": str(output.resolve()), "v1": v1}
        with self._request("POST", "/v1/export", body) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def add_snapshot(self, infohash: str, trackers: tuple[str, ...]) -> dict[str, Any]:
        body = {"infohash": infohash, "trackers": list(trackers)}
        with self._request("POST", "/v1/snapshots", body) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def ask_for_help(self, site_id: str) -> list[dict[str, Any]]:
        with self._request("POST", f"/v1/sites/{site_id}/help", {}) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def files(self, site_id: str | None = None, infohash: str | None = None) -> dict[str, Any]:
        """``{"infohash": ..., "files": [{"path", "size"}, ...]}`` of a site's current
        snapshot (fetching its metadata if need be), or of a snapshot by info-hash."""
        path = (f"/v1/sites/{site_id}/files" if site_id is not None
                else f"/v1/snapshots/{infohash}/files")
        with self._request("GET", path) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def resolve_name(self, name: str) -> dict[str, Any]:
        """``{"name", "target": "site"|"snapshot", "ident", "chain"}``; UnknownName if none."""
        with self._request("GET", f"/v1/names/{urllib.parse.quote(name, safe='')}") as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def publish_name(self, key: str, label: str, target: str | None,
                     ttl: int) -> dict[str, Any]:
        """Sign and put a record in the zone of ``key``; ``target`` None revokes it."""
        body = {"key": key, "label": label, "target": target, "ttl": ttl}
        with self._request("POST", "/v1/names", body) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def extension_pair(self) -> dict[str, Any]:
        """``{"code", "expires_in"}``: a one-time code pairing the browser extension."""
        with self._request("POST", "/v1/extension/pair", {}) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def backup(self, path: Path, replicas: int,
               friends: tuple[tuple[str, int], ...] = ()) -> dict[str, Any]:
        """Back a folder up (``Backups.back_up``): its site, version and read capability."""
        body = {"path": str(path.resolve()), "replicas": replicas,
                "friends": [list(f) for f in friends]}
        with self._request("POST", "/v1/backups", body) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def backups(self) -> list[dict[str, Any]]:
        """Each backup's proved copies (``Backups.status``)."""
        with self._request("GET", "/v1/backups") as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def restore(self, site_id: str, path: Path, version: int | None) -> dict[str, Any]:
        body = {"site_id": site_id, "path": str(path.resolve()), "version": version}
        with self._request("POST", "/v1/restore", body) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def stop(self) -> dict[str, Any]:
        """Ask the node to shut down; ``{"stopping": true, "pid": ...}`` once it has begun."""
        with self._request("POST", "/v1/stop", {}) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def pin(self, site_id: str, pinned: bool) -> None:
        with self._request("POST", "/v1/pin", {"site_id": site_id, "pinned": pinned}):
            pass

    def publish(self, path: Path, key: str | None, no_index: bool,
                trackers: tuple[str, ...] = (),
                web_seeds: tuple[str, ...] = (),
                private: bool = False,
                domains: tuple[str, ...] | None = None) -> Iterator[dict[str, Any]]:
        """Progress events, then ``{"result": ...}``; raises on an error line."""
        body: dict[str, Any] = {"path": str(path.resolve()), "key": key, "no_index": no_index,
                                "trackers": list(trackers), "web_seeds": list(web_seeds),
                                "private": private}
        if domains is not None:
            body["domains"] = list(domains)
        with self._request("POST", "/v1/publish", body) as response:
            for line in response:
                event = json.loads(line)
                if "error" in event:
                    raise error_from(event.get("kind"), str(event["error"]), event.get("status"))
                yield event
