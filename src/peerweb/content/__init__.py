"""What a site is, as bytes and names: pure code, no I/O beyond reading a folder.

Owns bencoding (BEP 3), site keys and ids (ed25519), signed version pointers (BEP 44/46),
the map from URL paths to a snapshot's files, HTTP Range parsing, addresses (host names,
paths, magnets), and which files a folder publishes.

May import: ``peerweb.errors``, ``peerweb.fileio`` (atomic writes of the key store) and the
standard library (plus cryptography/PyNaCl for keys).
Never libtorrent, aiohttp or asyncio: everything here is tested with plain values.
"""
