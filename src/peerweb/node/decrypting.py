"""A private file's stream decrypted beside the event loop, in batches, while the next
ciphertext is read and the last plaintext is sent.

A stream through the gateway is three steps on each piece: read it (disk or swarm), decrypt
it, write it to the browser. Done one after another on the loop, decryption (~1 ms per MB
even straight through libsodium) added itself to everything the loop does per byte and held
a held file's stream to about half the public one. Here each step runs on its own:

- a reader task takes ciphertext from the source as it comes, up to ``READ_AHEAD`` bytes
  ahead of the decryptor (then waits for it);
- a decrypt task takes all the ciphertext waiting (up to ``MAX_BATCH``) as one batch and
  decrypts it in a worker thread (libsodium lets go of the GIL for each chunk); a small
  batch, the first of a cold stream or a slow swarm's, is decrypted on the loop, where a
  thread hop would cost more than it saves;
- the caller takes the plaintext, at most ``QUEUED`` batches behind.

So batches grow by themselves when decryption is the slow step and stay one piece when the
swarm is: the first bytes are never held back to fill a batch. An error of any step (a
chunk that fails its check, a swarm timeout) reaches the caller in order, after the bytes
before it; a caller that stops early stops both tasks and closes the source.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

Part = bytes | bytearray | memoryview
Feed = Callable[[Sequence[Part]], memoryview]
"""Decrypts a batch of parts, in order, into one plaintext (``RangeReader.feed_all``)."""

# Ciphertext below this size is decrypted on the loop (a 64 KiB piece: ~50 us, about what
# a thread hop costs); above it, in a thread.
INLINE_BYTES = 64 * 1024
# The largest batch one thread call decrypts (~2 ms): big enough that thread hops are rare,
# small enough that the first bytes of a batch go out soon after its ciphertext came.
MAX_BATCH = 2 * 1024 * 1024
# Ciphertext read ahead of the decryptor, and plaintext batches waiting for the caller:
# enough to keep each step busy while another stalls a moment, bounded per stream.
READ_AHEAD = 4 * 1024 * 1024
QUEUED = 2


@dataclass
class Waiting:
    """Ciphertext read and not yet decrypted, in arrival order."""

    parts: list[Part] = field(default_factory=list)
    size: int = 0

    def add(self, data: Part) -> None:
        self.parts.append(data)
        self.size += len(data)

    def take(self, limit: int) -> tuple[list[Part], int]:
        """The next batch and its size: whole parts from the front, as many as fit in
        ``limit`` bytes (always at least one)."""
        count, total = 0, 0
        while count < len(self.parts) and (count == 0 or total + len(self.parts[count]) <= limit):
            total += len(self.parts[count])
            count += 1
        taken, self.parts = self.parts[:count], self.parts[count:]
        self.size -= total
        return taken, total


async def decrypted(source: AsyncIterator[Part], feed: Feed,
                    done: Callable[[], bool]) -> AsyncIterator[memoryview]:
    """What ``feed`` makes of ``source``'s bytes, batch by batch, until ``done()``."""
    waiting = Waiting()
    changed = asyncio.Event()  # something was added to or taken from ``waiting``
    finished: list[BaseException | None] = []  # the reader's end: None, or its error
    out: asyncio.Queue[memoryview | BaseException | None] = asyncio.Queue(QUEUED)

    async def read() -> None:
        try:
            async for data in source:
                waiting.add(data)
                changed.set()
                while waiting.size >= READ_AHEAD:
                    changed.clear()
                    await changed.wait()
            finished.append(None)
        except Exception as exc:  # handed to the caller, after the bytes before it
            finished.append(exc)
        finally:
            changed.set()
            with contextlib.suppress(Exception):
                await _aclose(source)

    async def decrypt() -> None:
        try:
            while not done():
                while not waiting.parts and not finished:
                    changed.clear()
                    await changed.wait()
                if not waiting.parts:
                    await out.put(finished[0])
                    return
                batch, size = waiting.take(MAX_BATCH)
                changed.set()  # room for the reader
                plain = (feed(batch) if size < INLINE_BYTES
                         else await asyncio.to_thread(feed, batch))
                if len(plain):
                    await out.put(plain)
            await out.put(None)
        except Exception as exc:
            await out.put(exc)

    tasks = [asyncio.create_task(read()), asyncio.create_task(decrypt())]
    try:
        while True:
            item = await out.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _aclose(source: AsyncIterator[Part]) -> None:
    close = getattr(source, "aclose", None)
    if close is not None:
        await close()
