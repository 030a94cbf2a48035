"""Private sites (issue 20): a folder published so that the nodes storing it cannot read it.

  chunks        the ciphertext format: one 16 KiB chunk per BitTorrent block, XChaCha20-
                Poly1305 with the version, file and chunk index bound in; size buckets
  manifest      the encrypted tree (names, sizes, file ids) and the header that carries the
                version's content key, wrapped under the site's read key
  capability    read capabilities: ``peerweb://<site-id>#k=<read key>``
  layout        a folder encrypted into the files of a torrent, and a snapshot's files
                recognised as such a layout
  keyring       the read keys a node holds, one 0600 file in its data dir

The torrent is built over the ciphertext with opaque names, so its info-hash is a verify
capability: any node checks and seeds every piece without a key. See docs/private.md.

May import: ``peerweb.content``, ``peerweb.errors``, PyNaCl and the standard library.
Never libtorrent, aiohttp or asyncio: everything here is tested with plain values.
"""
