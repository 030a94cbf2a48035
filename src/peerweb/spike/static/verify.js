/* peerweb verification: the pure part of the verifying loader.
 *
 * Shared by the Service Worker (importScripts) and the browser tests. Nothing here touches
 * the network: it decodes bencoding, checks a site's signed version record (BEP 44 over a
 * BEP 46 value) with WebCrypto's Ed25519, checks a .torrent against the signed info-hash,
 * and checks file bytes against BEP 52 merkle roots and piece layers. It mirrors the Python
 * modules pointer.py, sitemap.py and httpranges.py; the tests hold the two to the same
 * answers.
 */
(function (root) {
  'use strict';

  const BLOCK = 16384;           // BEP 52 leaf size
  const MAX_RECORD_VALUE = 1000; // BEP 44 value limit
  const ZERO = new Uint8Array(32);

  class Invalid extends Error {}

  // --- bytes ---------------------------------------------------------------------------

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

  function fromHex(text) {
    if (typeof text !== 'string' || !/^([0-9a-f]{2})*$/.test(text)) {
      throw new Invalid('not lowercase hex');
    }
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
    return out;
  }

  const latin1 = (bytes) => String.fromCharCode(...bytes);
  const ascii = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));
  const utf8 = new TextDecoder('utf-8', { fatal: true });

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  const digest = async (name, data) => new Uint8Array(await crypto.subtle.digest(name, data));
  const sha256 = (data) => digest('SHA-256', data);

  // --- bencode -------------------------------------------------------------------------

  /* Decode one bencoded value that fills ``bytes``. Dicts become Maps keyed by the latin1
   * form of their (binary) keys; strings stay Uint8Arrays. ``infoSpan`` is where the
   * top-level dict's "info" value lies, so its exact bytes can be hashed. */
  function bdecode(bytes) {
    let pos = 0;
    let infoSpan = null;
    const fail = (why) => { throw new Invalid(`bad bencoding at byte ${pos}: ${why}`); };
    const digits = (end, pattern) => {
      if (end < 0) fail('unterminated');
      const text = latin1(bytes.subarray(pos, end));
      if (!pattern.test(text)) fail(`bad number ${JSON.stringify(text.slice(0, 20))}`);
      const n = Number(text);
      if (!Number.isSafeInteger(n)) fail('number too large');
      return n;
    };
    const string = () => {
      const colon = bytes.indexOf(0x3a, pos);
      const n = digits(colon, /^(0|[1-9][0-9]*)$/);
      if (colon + 1 + n > bytes.length) fail('string runs past the end');
      const out = bytes.subarray(colon + 1, colon + 1 + n);
      pos = colon + 1 + n;
      return out;
    };
    const value = (depth) => {
      if (depth > 64) fail('nested too deep');
      if (pos >= bytes.length) fail('truncated');
      const c = bytes[pos];
      if (c === 0x69) { // i<n>e
        pos++;
        const end = bytes.indexOf(0x65, pos);
        const n = digits(end, /^(0|-?[1-9][0-9]*)$/);
        pos = end + 1;
        return n;
      }
      if (c === 0x6c) { // l...e
        pos++;
        const list = [];
        while (bytes[pos] !== 0x65) list.push(value(depth + 1));
        pos++;
        return list;
      }
      if (c === 0x64) { // d...e, keys sorted and unique (canonical)
        pos++;
        const dict = new Map();
        let last = null;
        while (bytes[pos] !== 0x65) {
          if (pos >= bytes.length) fail('truncated dict');
          const key = latin1(string());
          if (last !== null && key <= last) fail('dict keys out of order');
          last = key;
          const start = pos;
          dict.set(key, value(depth + 1));
          if (depth === 0 && key === 'info') infoSpan = [start, pos];
        }
        pos++;
        return dict;
      }
      if (c >= 0x30 && c <= 0x39) return string();
      return fail('unexpected byte');
    };
    const decoded = value(0);
    if (pos !== bytes.length) fail('trailing bytes');
    return { value: decoded, infoSpan };
  }

  // --- signed version record (BEP 44 mutable item, BEP 46 value) ---------------------------

  /* The record a mirror hands over: {public_key, seq, signature, value, salt} in hex.
   * Returns {version, ih} once the signature is the site key's; throws Invalid otherwise. */
  async function verifyRecord(siteKey, record) {
    if (!record || typeof record !== 'object') throw new Invalid('record is not an object');
    const key = fromHex(String(record.public_key));
    if (!equal(key, siteKey)) throw new Invalid('record is for another key');
    const seq = record.seq;
    if (!Number.isSafeInteger(seq)) throw new Invalid('record has no integer seq');
    const value = fromHex(String(record.value));
    const salt = fromHex(String(record.salt || ''));
    const signature = fromHex(String(record.signature));
    if (value.length > MAX_RECORD_VALUE) throw new Invalid('record value too large');
    const message = concat(
      salt.length ? ascii(`4:salt${salt.length}:`) : new Uint8Array(0), salt,
      ascii(`3:seqi${seq}e1:v`), value);
    const publicKey = await crypto.subtle.importKey('raw', key, { name: 'Ed25519' }, false,
      ['verify']);
    if (!await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, signature, message)) {
      throw new Invalid('bad signature: not signed by the site key');
    }
    let decoded = bdecode(value).value;
    if (decoded instanceof Uint8Array) decoded = bdecode(decoded).value; // libtorrent's wrapping
    if (!(decoded instanceof Map)) throw new Invalid('signed value is not a dict');
    const ih = decoded.get('ih');
    const version = decoded.get('v');
    if (!(ih instanceof Uint8Array) || ih.length !== 20) throw new Invalid('no 20-byte ih');
    if (!Number.isSafeInteger(version) || version < 1) throw new Invalid('no positive version');
    return { version, ih: hex(ih) };
  }

  // --- BEP 52 merkle trees ---------------------------------------------------------------

  /* Each level's hashes are asked for together: WebCrypto works them out in parallel, and
   * a 40 MB file's piece layer (1,000 hashes) takes a few ms instead of a thousand awaits.
   * Past the real nodes every pair is (pad, pad), which is the next level's pad. */
  async function merkle(nodes, width, pad) {
    let level = nodes;
    while (width > 1) {
      const pairs = [];
      for (let i = 0; i < level.length; i += 2) {
        pairs.push(sha256(concat(level[i], level[i + 1] || pad)));
      }
      [level, pad] = await Promise.all([Promise.all(pairs), sha256(concat(pad, pad))]);
      width /= 2;
    }
    return level[0] || pad;
  }

  const nextPow2 = (n) => { let w = 1; while (w < n) w *= 2; return w; };

  function leaves(data) {
    const out = [];
    for (let at = 0; at < data.length; at += BLOCK) {
      out.push(sha256(data.subarray(at, at + BLOCK)));
    }
    return Promise.all(out);
  }

  /* The "pieces root" of a whole file (files of at most one piece have no piece layer). */
  async function fileRoot(data) {
    const hashes = await leaves(data);
    return merkle(hashes, nextPow2(hashes.length), ZERO);
  }

  /* The piece-layer hash of one piece's bytes (the last piece is short: zero leaves pad it). */
  async function pieceHash(data, pieceLength) {
    return merkle(await leaves(data), pieceLength / BLOCK, ZERO);
  }

  /* The root a piece layer hashes up to; its padding is the hash of an all-zero piece. */
  async function layerRoot(layer, pieceLength) {
    let pad = ZERO;
    for (let w = pieceLength / BLOCK; w > 1; w /= 2) pad = await sha256(concat(pad, pad));
    return merkle(layer, nextPow2(layer.length), pad);
  }

  // --- torrents ------------------------------------------------------------------------

  /* Parse a .torrent whose info dict must hash (SHA-1, the v1 info-hash) to ``ih`` (hex).
   * Returns {ih, pieceLength, files: Map(path -> {length, root, layer})}. A file longer than
   * one piece carries its piece layer, not yet checked against its root: ``checkLayer``. */
  async function parseTorrent(bytes, ih) {
    const { value, infoSpan } = bdecode(bytes);
    if (!(value instanceof Map) || !infoSpan) throw new Invalid('no info dict');
    const infoHash = hex(await digest('SHA-1', bytes.subarray(infoSpan[0], infoSpan[1])));
    if (infoHash !== ih) throw new Invalid('torrent does not match the signed info-hash');
    const info = value.get('info');
    const pieceLength = info.get('piece length');
    const tree = info.get('file tree');
    if (info.get('meta version') !== 2 || !(tree instanceof Map)) {
      throw new Invalid('not a v2 torrent');
    }
    if (!Number.isSafeInteger(pieceLength) || pieceLength < BLOCK ||
        (pieceLength & (pieceLength - 1)) !== 0) {
      throw new Invalid('bad piece length');
    }
    const layers = value.get('piece layers') || new Map();
    const files = new Map();
    const walk = (node, prefix) => {
      for (const [rawName, child] of node) {
        if (!(child instanceof Map)) throw new Invalid('bad file tree');
        const name = utf8.decode(ascii(rawName));
        if (name === '') continue;
        if (name.includes('/') || name === '.' || name === '..') throw new Invalid('bad name');
        const path = prefix ? `${prefix}/${name}` : name;
        const leaf = child.get('');
        if (!(leaf instanceof Map)) { walk(child, path); continue; }
        const length = leaf.get('length');
        if (!Number.isSafeInteger(length) || length < 0) throw new Invalid('bad length');
        const rootHash = length ? leaf.get('pieces root') : null;
        let layer = null;
        if (length > pieceLength) {
          const packed = layers.get(latin1(rootHash));
          const count = Math.ceil(length / pieceLength);
          if (!(packed instanceof Uint8Array) || packed.length !== count * 32) {
            throw new Invalid(`no piece layer for ${path}`);
          }
          layer = [];
          for (let i = 0; i < count; i++) layer.push(packed.subarray(i * 32, i * 32 + 32));
        }
        files.set(path, { length, root: rootHash, layer, layerChecked: null });
      }
    };
    walk(tree, '');
    return { ih, pieceLength, files };
  }

  /* Whether ``data`` is the whole file ``file`` of a parsed torrent. */
  async function checkFile(file, data) {
    if (data.length !== file.length) return false;
    if (file.length === 0) return true;
    return equal(await fileRoot(data), file.root);
  }

  /* Piece layers lie outside the info dict, so only their roots are signed (through the
   * info-hash). A layer is hashed up to its root once, when first needed, rather than while
   * the torrent is parsed: a page does not wait for a big file's thousand hashes. Rejects
   * with Invalid when the layer does not match. */
  function checkLayer(file, pieceLength) {
    if (!file.layerChecked) {
      file.layerChecked = layerRoot(file.layer, pieceLength).then((root) => {
        if (!equal(root, file.root)) throw new Invalid('piece layer does not match its root');
      });
    }
    return file.layerChecked;
  }

  /* Whether ``data`` holds the pieces ``first``, ``first + 1``, ... of ``file``, whole.
   * Rejects with Invalid when the file's piece layer itself is bad. */
  async function checkPieces(file, pieceLength, first, data) {
    await checkLayer(file, pieceLength);
    for (let at = 0, i = first; at < data.length; at += pieceLength, i++) {
      const piece = data.subarray(at, at + pieceLength);
      if (i >= file.layer.length) return false;
      const expected = Math.min(pieceLength, file.length - i * pieceLength);
      if (piece.length !== expected) return false;
      if (!equal(await pieceHash(piece, pieceLength), file.layer[i])) return false;
    }
    return true;
  }

  // --- URL paths (sitemap.py) ----------------------------------------------------------

  function normalise(rawPath) {
    const segments = [];
    for (const encoded of rawPath.split('/')) {
      let segment = encoded;
      if (encoded.includes('%')) {
        try { segment = decodeURIComponent(encoded); } catch { return null; }
      }
      if (/[/\\\0]/.test(segment)) return null;
      if (segment === '' || segment === '.') continue;
      if (segment === '..') return null;
      segments.push(segment);
    }
    return segments;
  }

  /* The files and folders of a snapshot, for ``lookup``. */
  function siteIndex(paths) {
    const files = new Set(paths);
    const folders = new Set(['']);
    for (const path of files) {
      const parts = path.split('/');
      for (let depth = 1; depth < parts.length; depth++) {
        folders.add(parts.slice(0, depth).join('/'));
      }
    }
    return { files, folders };
  }

  /* What a raw URL path names in a ``siteIndex``: a file, a folder redirect, nothing (with
   * the site's 404.html if it has one) or a bad path. */
  function lookup(site, rawPath) {
    const paths = site.files;
    const segments = normalise(rawPath);
    if (segments === null) return { kind: 'bad_path' };
    const path = segments.join('/');
    if (paths.has(path) && !rawPath.endsWith('/')) return { kind: 'file', path };
    if (site.folders.has(path)) {
      if (rawPath && !rawPath.endsWith('/')) {
        return { kind: 'redirect', location: rawPath.split('/').pop() + '/' };
      }
      const index = path ? `${path}/index.html` : 'index.html';
      if (paths.has(index)) return { kind: 'file', path: index };
    }
    return { kind: 'not_found', path: paths.has('404.html') ? '404.html' : null };
  }

  const TYPES = {
    html: 'text/html', htm: 'text/html', css: 'text/css', js: 'text/javascript',
    mjs: 'text/javascript', json: 'application/json', txt: 'text/plain', md: 'text/markdown',
    xml: 'application/xml', svg: 'image/svg+xml', png: 'image/png', jpg: 'image/jpeg',
    jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', avif: 'image/avif',
    ico: 'image/vnd.microsoft.icon', woff: 'font/woff', woff2: 'font/woff2',
    wasm: 'application/wasm', mp4: 'video/mp4', webm: 'video/webm', ogg: 'audio/ogg',
    mp3: 'audio/mpeg', pdf: 'application/pdf',
  };
  const TEXT = new Set(['application/json', 'image/svg+xml', 'application/xml']);

  /* The type a file is served with, from its name only: a mirror cannot choose it. */
  function contentType(path) {
    const dot = path.lastIndexOf('.');
    const type = (dot >= 0 && TYPES[path.slice(dot + 1).toLowerCase()]) ||
      'application/octet-stream';
    return type.startsWith('text/') || TEXT.has(type) ? `${type}; charset=utf-8` : type;
  }

  // --- Range (httpranges.py) -----------------------------------------------------------

  /* The one range [start, end) to serve, null for the whole body; throws RangeError when
   * no range is satisfiable (416). Multi-range and malformed headers get the whole body. */
  function parseRange(header, total) {
    if (header == null) return null;
    header = header.trim();
    if (header.length > 1024 || !header.toLowerCase().startsWith('bytes=')) return null;
    const specs = header.slice(6).split(',').map((s) => s.trim());
    const parsed = [];
    const isDigits = (s) => /^[0-9]+$/.test(s);
    for (const spec of specs) {
      const dash = spec.indexOf('-');
      if (dash < 0) return null;
      const first = spec.slice(0, dash).trim();
      const last = spec.slice(dash + 1).trim();
      if (first === '') {
        if (!isDigits(last)) return null;
        const suffix = Number(last);
        parsed.push(suffix > 0 && total > 0 ? { start: Math.max(0, total - suffix), end: total }
          : null);
        continue;
      }
      if (!isDigits(first) || (last && !isDigits(last))) return null;
      const start = Number(first);
      const end = last ? Number(last) + 1 : total;
      if (last && end <= start) return null;
      parsed.push(start < total ? { start, end: Math.min(end, total) } : null);
    }
    const satisfiable = parsed.filter((r) => r !== null);
    if (!satisfiable.length) throw new RangeError(`unsatisfiable range ${header}`);
    return specs.length > 1 ? null : satisfiable[0];
  }

  root.peerwebVerify = {
    BLOCK, Invalid, hex, fromHex, bdecode, verifyRecord, fileRoot, pieceHash, layerRoot,
    parseTorrent, checkLayer, checkFile, checkPieces, siteIndex, lookup, contentType, parseRange,
  };
})(self);
