"""XChaCha20-Poly1305 (libsodium's ``crypto_aead_xchacha20poly1305_ietf``) over runs of
equal-sized chunks, each with its own nonce and associated data, without a copy per chunk.

PyNaCl's public binding takes and returns ``bytes``: every 16 KiB chunk costs a slice in,
a fresh output buffer and a copy out, which held decryption to ~650 MB/s, about half of
what libsodium does. Here the same libsodium functions, from the cffi module PyNaCl builds
(``nacl._sodium``, what its own bindings call), read a run straight from the caller's buffer
and write into one output buffer. cffi lets go of the GIL for each call, so a run decrypted
in a worker thread leaves the event loop running.

Should that module ever be missing, the public binding does the same work chunk by chunk
(``fast`` says which path is in use); both give the same bytes (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

NONCE_SIZE = 24
TAG_SIZE = 16

_ffi: Any = None
_lib: Any = None
try:
    from nacl import _sodium

    _ffi, _lib = _sodium.ffi, _sodium.lib
except ImportError:  # pragma: no cover - PyNaCl without its cffi module: the slow path
    pass

fast = _lib is not None
"""Whether runs go straight to libsodium (else through PyNaCl's public binding)."""

Buffer = bytes | bytearray | memoryview
AssociatedData = Callable[[int], bytes]
"""The associated data of the chunk at a position in the run (0 for the first)."""


class Failed(Exception):
    """A chunk of a run failed its tag check; ``position`` is its place in the run."""

    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


def open_run(key: bytes, ciphertext: Buffer, chunk_size: int, ad: AssociatedData,
             use_fast: bool = fast, out: bytearray | None = None, offset: int = 0) -> bytearray:
    """The plaintexts of consecutive chunks ``nonce || ciphertext || tag``, each
    ``chunk_size`` bytes (``len(ciphertext)`` a multiple of it), one after another, in a
    new buffer or written into ``out`` from ``offset``. Raises Failed for the first chunk
    that does not open; nothing after it is decrypted."""
    count, rest = divmod(len(ciphertext), chunk_size)
    if rest:
        raise ValueError(f"{len(ciphertext)} bytes are not whole chunks of {chunk_size}")
    plain_size = chunk_size - NONCE_SIZE - TAG_SIZE
    if out is None:
        out = bytearray(count * plain_size)
    elif len(out) < offset + count * plain_size:
        raise ValueError("the output buffer is too small for the run")
    if not count:
        return out
    if not use_fast:
        view = memoryview(ciphertext)
        for i in range(count):
            chunk = view[i * chunk_size:(i + 1) * chunk_size]
            try:
                out[offset + i * plain_size:offset + (i + 1) * plain_size] = (
                    crypto_aead_xchacha20poly1305_ietf_decrypt(
                        bytes(chunk[NONCE_SIZE:]), ad(i), bytes(chunk[:NONCE_SIZE]), key))
            except CryptoError:
                raise Failed(i) from None
        return out
    failed = _open_straight(key, ciphertext, count, chunk_size, ad, out, offset)
    if failed is not None:
        raise Failed(failed)
    return out


def _open_straight(key: bytes, ciphertext: Buffer, count: int, chunk_size: int,
                   ad: AssociatedData, out: bytearray, offset: int) -> int | None:
    """``open_run`` through libsodium: the position of the chunk that failed, or None.

    The buffers cffi holds are released before returning, never left to a frame that a
    traceback keeps: the garbage collector may clear a memoryview in a cycle while cffi
    still holds a buffer of it, and CPython then crashes when cffi lets go of it."""
    source = _ffi.from_buffer(ciphertext)
    whole = _ffi.from_buffer(out)
    try:
        target = whole + offset
        sealed_size = chunk_size - NONCE_SIZE
        plain_size = sealed_size - TAG_SIZE
        decrypt = _lib.crypto_aead_xchacha20poly1305_ietf_decrypt
        for i in range(count):
            nonce = source + i * chunk_size
            data = ad(i)
            if decrypt(target + i * plain_size, _ffi.NULL, _ffi.NULL, nonce + NONCE_SIZE,
                       sealed_size, data, len(data), nonce, key) != 0:
                return i
        return None
    finally:
        _ffi.release(source)
        _ffi.release(whole)


def seal_run(key: bytes, plaintext: Buffer, count: int, chunk_size: int, nonces: bytes,
             ad: AssociatedData, use_fast: bool = fast) -> bytearray:
    """``count`` chunks sealing ``plaintext`` (at most ``count`` plaintext sizes; zeros
    after its end), ``nonces`` holding one nonce per chunk."""
    plain_size = chunk_size - NONCE_SIZE - TAG_SIZE
    if len(plaintext) > count * plain_size or len(nonces) != count * NONCE_SIZE:
        raise ValueError("plaintext or nonces do not fit the chunks")
    whole = len(plaintext) // plain_size
    view = memoryview(plaintext)
    out = bytearray(count * chunk_size)
    if use_fast:
        _seal_straight(key, view, count, chunk_size, nonces, ad, out)
        return out
    for i in range(count):
        begin = i * chunk_size
        nonce = nonces[i * NONCE_SIZE:(i + 1) * NONCE_SIZE]
        out[begin:begin + NONCE_SIZE] = nonce
        # A whole chunk is read in place; the one the plaintext ends in, and those after
        # it, are padded with zeros first.
        part: Buffer = (view[i * plain_size:(i + 1) * plain_size] if i < whole
                        else bytes(view[i * plain_size:(i + 1) * plain_size]).ljust(
                            plain_size, b"\0"))
        out[begin + NONCE_SIZE:begin + chunk_size] = (
            crypto_aead_xchacha20poly1305_ietf_encrypt(bytes(part), ad(i), nonce, key))
    return out


def _seal_straight(key: bytes, view: memoryview, count: int, chunk_size: int, nonces: bytes,
                   ad: AssociatedData, out: bytearray) -> None:
    """``seal_run`` through libsodium, releasing cffi's buffers as ``_open_straight``."""
    plain_size = chunk_size - NONCE_SIZE - TAG_SIZE
    whole = len(view) // plain_size
    tail = bytes(view[whole * plain_size:]).ljust(plain_size, b"\0")
    zeros = bytes(plain_size)
    source = _ffi.from_buffer(view)
    target = _ffi.from_buffer(out)
    try:
        encrypt = _lib.crypto_aead_xchacha20poly1305_ietf_encrypt
        for i in range(count):
            begin = i * chunk_size
            nonce = nonces[i * NONCE_SIZE:(i + 1) * NONCE_SIZE]
            out[begin:begin + NONCE_SIZE] = nonce
            # Whole chunks are read in place; the one the plaintext ends in, and any after
            # it, are zeros past its end.
            part = source + i * plain_size if i < whole else tail if i == whole else zeros
            data = ad(i)
            encrypt(target + begin + NONCE_SIZE, _ffi.NULL, part, plain_size, data, len(data),
                    _ffi.NULL, nonce, key)
    finally:
        _ffi.release(source)
        _ffi.release(target)
