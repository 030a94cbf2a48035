"""Backups of the user's own folders (issue 20): a folder published as a private site and
held by volunteer (or friend) nodes, each copy counted only while its holder proves it.

The owner's side (``Backups``): ``back_up`` publishes the folder through the private
publish path and asks holders through the help protocol (``POST /peerweb/v1/help``, the
volunteer's quotas apply, and a refusal is final for ``policy.backups.REFUSAL_COOLDOWN``).
``check`` is one round for one backup: every holder known, and every volunteer whose load
report claims the version, is challenged for the bytes of random pieces; the answer is held
to the torrent's SHA-1s here. Then, if fewer copies are proved than wanted, others are
asked. ``loop`` runs the rounds in the node's task group, soon while copies are missing,
rarely once all are proved (``policy.backups.next_check``). Every decision is the policy's.

The holder's side (``answer``): the bytes of the pieces asked, as they are on disk, read
by libtorrent without a check (a lying or damaged copy fails at the challenger), and never
fetched from the swarm to answer: a piece not held is not answered.

Records are ``<data-dir>/backups.json``: folder, replicas, friends, and what each holder
last proved; no key or content.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotFound, PeerwebError, UsageError
from ..fileio import write_atomic
from ..http.peer_client import PeerClient, ProofOutcome
from ..policy import admission
from ..policy import backups as rule
from ..policy.backups import Copy, Endpoint
from ..private import capability
from ..private.keyring import Keyring
from ..swarm.engine import Swarm
from .publisher import PublishResult
from .snapshots import SnapshotStore

log = logging.getLogger(__name__)

BACKUPS_FILE = "backups.json"
PIECE_READ_TIMEOUT = 10.0
# Challenges a holder answers per requester address: a few per backup and check.
PROOF_RATE = 1.0
PROOF_BURST = 20.0


@dataclass
class Backup:
    """One backed-up folder, as its owner's node remembers it."""

    site_id: str
    folder: str
    replicas: int
    friends: list[Endpoint] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"folder": self.folder, "replicas": self.replicas,
                "friends": [list(f) for f in self.friends],
                "copies": [{"holder": list(c.holder), "version": c.version,
                            "proved_at": c.proved_at, "failed_at": c.failed_at,
                            "reason": c.reason, "asked_at": c.asked_at}
                           for c in self.copies]}

    @classmethod
    def from_json(cls, site_id: str, raw: dict[str, Any]) -> Backup:
        copies = [Copy((str(c["holder"][0]), int(c["holder"][1])), int(c["version"]),
                       c.get("proved_at"), c.get("failed_at"), str(c.get("reason", "")),
                       c.get("asked_at"))
                  for c in raw.get("copies", [])]
        friends = [(str(f[0]), int(f[1])) for f in raw.get("friends", [])]
        return cls(site_id, str(raw["folder"]), int(raw["replicas"]), friends, copies)

    def put(self, copy: Copy) -> None:
        self.copies = [c for c in self.copies if c.holder != copy.holder] + [copy]

    def copy_of(self, holder: Endpoint) -> Copy:
        for copy in self.copies:
            if copy.holder == holder:
                return copy
        return Copy(holder, 0, None)


Publish = Callable[[Path], Awaitable[PublishResult]]
"""Publishes a folder as the next private version of its site (the private publish path)."""
FindVolunteers = Callable[[int], Awaitable[list[Endpoint]]]


class Backups:
    def __init__(self, data_dir: Path, swarm: Swarm, peers: PeerClient, store: SnapshotStore,
                 keyring: Keyring, publish: Publish, find_volunteers: FindVolunteers,
                 version_of: Callable[[str], tuple[int, str] | None],
                 me: Callable[[], Endpoint], soon: float, later: float) -> None:
        self._path = data_dir / BACKUPS_FILE
        self._swarm = swarm
        self._peers = peers
        self._store = store
        self._keyring = keyring
        self._publish = publish
        self._find_volunteers = find_volunteers
        self._version_of = version_of
        """A site published here: (its current version, that version's info-hash)."""
        self._me = me
        self._soon, self._later = soon, later
        self._proofs = admission.TokenBucket(PROOF_RATE, PROOF_BURST)
        self._due: dict[str, float] = {}
        self._wake = asyncio.Event()
        self.backups: dict[str, Backup] = self._load()

    # -- the owner's side ------------------------------------------------------------------

    async def back_up(self, folder: Path, replicas: int,
                      friends: tuple[Endpoint, ...] = ()) -> dict[str, Any]:
        """Publish ``folder`` as the next version of its private site, keep it as a backup
        wanting ``replicas`` proved copies, and ask holders at once (proofs follow as they
        fetch it: ``status``)."""
        if not 1 <= replicas <= 16:
            raise UsageError("--replicas must be from 1 to 16")
        result = await self._publish(folder)
        site_id = result.site_id
        backup = self.backups.get(site_id)
        if backup is None:
            backup = self.backups[site_id] = Backup(site_id, str(folder.resolve()), replicas)
        backup.replicas = replicas
        backup.friends = list(dict.fromkeys([*backup.friends, *friends]))
        self._save()
        asked = await self.check(site_id)
        self.wake()  # the loop learns when this one is due next
        key = self._keyring.get(site_id)
        assert key is not None, "a private publish keeps the site's read key"
        return {"site_id": site_id, "version": result.version, "infohash": result.infohash,
                "files": result.files, "size": result.size, "replicas": replicas,
                "capability": capability.ReadCapability(site_id, key).link(),
                "asked": [f"{h}:{p}" for h, p in asked]}

    async def check(self, site_id: str) -> list[Endpoint]:
        """One round for one backup: challenge holders, then ask others if copies are
        missing (and renew the leases of those that hold it). The holders asked."""
        backup = self.backups[site_id]
        current = self._version_of(site_id)
        snapshot = self._store.get(current[1]) if current else None
        if current is None or snapshot is None:
            log.warning("backup %s: its current version is not held here; cannot check it",
                        site_id[:12])
            return []
        version, tid = current
        me = self._me()
        if not me[1]:
            raise UsageError("this node's peer port is not served yet; try again")
        found = await self._find_volunteers(backup.replicas + 2)
        reports = await self._peers.loads(list(dict.fromkeys([*backup.friends, *found])))
        reports = [r for r in reports if tuple(r["endpoint"]) != me]
        loads = {tuple(r["endpoint"]): float(r["load"] or 0.0) for r in reports}
        claimed = [tuple(r["endpoint"]) for r in reports
                   if r["sites"].get(site_id) == version]
        hashes = self._swarm.piece_hashes(snapshot.handle)
        chosen = rule.to_challenge(backup.copies, claimed, version, time.time())
        outcomes = await asyncio.gather(*(self._challenge(h, tid, hashes) for h in chosen))
        for holder, (outcome, reason) in zip(chosen, outcomes, strict=True):
            now = time.time()
            copy = backup.copy_of(holder)
            had = rule.is_complete(copy, version, now)
            if outcome is ProofOutcome.ANSWERED and not reason:
                backup.put(rule.proved(copy, version, now))
            elif outcome is ProofOutcome.ANSWERED or (
                    outcome is ProofOutcome.NOT_HELD and (holder in claimed or had)):
                # Wrong bytes, or none where its report (or its last proof) said it held
                # them: a liar or a lost copy.
                log.warning("backup %s: %s:%d failed its proof: %s", site_id[:12], *holder,
                            reason)
                backup.put(rule.failed(copy, now, reason))
            elif outcome is ProofOutcome.UNREACHABLE and copy.proved_at is not None:
                backup.put(rule.failed(copy, now, f"unreachable: {reason}"))
            # Still fetching, busy, or not holding a version it was not yet asked for
            # (a new one): the copy stays as it was, not counted for this version.
        now = time.time()
        asked = rule.to_ask(list(loads), backup.copies, version, backup.replicas, now, loads)
        renew = rule.to_renew(backup.copies, version, now, list(loads))
        answers = await asyncio.gather(*(self._peers.ask_hold(h, site_id)
                                         for h in [*asked, *renew]))
        for holder, (held, reason) in zip([*asked, *renew], answers, strict=True):
            copy, now = backup.copy_of(holder), time.time()
            backup.put(rule.agreed(copy, now) if held is not None
                       else rule.failed(copy, now, f"refused: {reason}"))
        backup.copies = rule.remembered(backup.copies, time.time())
        self._due[site_id] = time.monotonic() + rule.next_check(
            backup.copies, version, backup.replicas, time.time(), self._soon, self._later)
        self._save()
        return asked

    async def _challenge(self, holder: Endpoint, tid: str,
                         hashes: list[tuple[int, bytes]]) -> tuple[ProofOutcome, str]:
        """Challenge one holder: (outcome, why it is no proof; empty for a proof)."""
        pieces = rule.challenge(len(hashes))
        expected = [hashes[p] for p in pieces]
        outcome, body = await self._peers.prove(holder, tid, pieces,
                                                sum(s for s, _h in expected))
        if outcome is not ProofOutcome.ANSWERED:
            return outcome, body.decode("utf-8", "replace")[:200]
        return outcome, rule.check_proof(expected, body) or ""

    async def loop(self) -> None:
        """Check each backup when it is due (``check``); ``back_up`` wakes it."""
        while True:
            now = time.monotonic()
            # Not before the peer port is served: this node would not know itself among
            # the volunteers, and might ask itself to hold its own backup.
            for site_id in list(self.backups) if self._me()[1] else []:
                if self._due.get(site_id, 0.0) <= now:
                    try:
                        await self.check(site_id)
                    except PeerwebError as exc:
                        log.info("backup %s: check failed: %s", site_id[:12], exc)
                        self._due[site_id] = now + self._soon
            wait = min((d - time.monotonic() for d in self._due.values()),
                       default=self._later if self._me()[1] else self._soon)
            self._wake.clear()
            try:
                async with asyncio.timeout(max(0.05, wait)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def status(self) -> list[dict[str, Any]]:
        """For each backup: its proved copies of the current version, on which nodes and
        how fresh, and how every other holder stands."""
        now = time.time()
        shown = []
        for site_id, backup in sorted(self.backups.items()):
            current = self._version_of(site_id)
            version = current[0] if current else 0
            complete = rule.complete(backup.copies, version, now)
            shown.append({
                "site_id": site_id, "folder": backup.folder, "version": version,
                "replicas": backup.replicas, "complete": len(complete),
                "holders": [f"{c.holder[0]}:{c.holder[1]}" for c in complete],
                "missing": rule.missing(backup.copies, version, backup.replicas, now),
                "copies": [rule.freshness(c, version, now) for c in backup.copies],
            })
        return shown

    def complete_holders(self, site_id: str) -> list[Endpoint]:
        """The holders of a backup's proved copies of its current version."""
        backup = self.backups.get(site_id)
        current = self._version_of(site_id)
        if backup is None or current is None:
            raise NotFound(f"{site_id} is not a backup made on this node")
        return [c.holder for c in rule.complete(backup.copies, current[0], time.time())]

    # -- the holder's side -----------------------------------------------------------------

    async def answer(self, tid: str, pieces: object, requester: str) -> bytes:
        """The bytes of the pieces asked of a snapshot held here, for a challenger; raises
        a PeerwebError (with the status the peer port sends) otherwise."""
        if not self._proofs.take(requester, time.monotonic()):
            raise _status("too many challenges from this address; try later", 429)
        snapshot = self._store.get(tid)
        if snapshot is None or snapshot.handle.torrent_file() is None:
            raise NotFound("this node does not hold that snapshot")
        count = int(snapshot.handle.torrent_file().num_pieces())
        asked = rule.valid_challenge(pieces, count)
        if asked is None:
            raise UsageError(f"'pieces' must be 1 to {rule.MAX_ASKED_PIECES} distinct piece "
                             f"indexes below {count}")
        if not snapshot.handle.status().is_seeding:
            raise _status("this node is still fetching that snapshot", 409)
        parts = []
        for piece in asked:
            data = await self._swarm.held_piece(snapshot.handle, piece, PIECE_READ_TIMEOUT)
            if data is None:
                raise _status(f"piece {piece} is not held here", 409)
            parts.append(data)
        return b"".join(parts)

    # -- records ---------------------------------------------------------------------------

    def _load(self) -> dict[str, Backup]:
        try:
            raw = json.loads(self._path.read_text())
            return {sid: Backup.from_json(sid, entry) for sid, entry in raw.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.error("cannot read %s (%s); starting with no backups known", self._path, exc)
            return {}

    def _save(self) -> None:
        data = {sid: b.to_json() for sid, b in sorted(self.backups.items())}
        write_atomic(self._path, json.dumps(data, indent=1).encode())

    def wake(self) -> None:
        self._wake.set()


def _status(message: str, status: int) -> PeerwebError:
    error = PeerwebError(message)
    error.http_status = status
    return error
