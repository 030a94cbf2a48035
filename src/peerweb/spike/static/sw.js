/* peerweb verifying loader: a Service Worker that takes a site's files from volunteer mirrors
 * while its origin hands visitors off, and shows nothing it could not verify.
 *
 * The origin (first party) tells it the site key, the mirrors and its timings
 * (/.peerweb/worker.json). From the mirrors it takes the highest signed version record
 * (checked against that key), the torrent the record names (checked against the signed
 * info-hash) and then each file, checked against its BEP 52 merkle root; big files are
 * checked piece by piece as they stream, so media starts at once and a seek fetches only what
 * it needs. A mirror caught serving anything that fails a check is not asked again. When no
 * mirror can serve a file, the worker asks the origin itself; when that fails too, the
 * visitor gets an error page.
 *
 * This file is the worker's events and I/O. The checks are verify.js, the choice of mirrors
 * and every decision that depends on the time decide.js, the small files and the bundle
 * prefetch.js.
 */
'use strict';
// The origin serves the parts ahead of this file (one request, not four, before the worker
// can start); on its own, this file fetches them.
if (!self.peerwebVerify) importScripts('/.peerweb/verify.js');
if (!self.peerwebDecide) importScripts('/.peerweb/decide.js');
if (!self.peerwebPrefetch) importScripts('/.peerweb/prefetch.js');
const V = self.peerwebVerify;
const D = self.peerwebDecide;
const P = self.peerwebPrefetch;

const CONFIG_URL = '/.peerweb/worker.json';
const STATUS_URL = '/.peerweb/worker-status';
const WORKER_HEADER = 'X-Peerweb-Worker'; // tells the origin: answer this one yourself
const STATE_KEY = '/.peerweb/worker-state';
const SEGMENT = 1 << 20;     // bytes per request for big files (whole pieces)
const AHEAD = 4;             // segments in flight while streaming
const CACHE_LIMIT = 32 << 20; // bytes of verified small files kept in memory
const DEFAULT_TIMING = D.timings(null);

// The worker's one clock: decisions are handed the time, they never read it.
const now = () => Date.now();
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const BOOT = bootConfig();
const mirrors = new D.MirrorTable();
const store = new P.FileStore(CACHE_LIMIT);
const state = {
  config: null, configAt: 0, configLoading: null, // the origin's word, as of configAt
  snap: null, snapAt: 0, snapLoading: null,       // the version served, as of snapAt
  torrents: new Map(),   // ih -> parsed torrent
  highest: 0,            // highest version ever verified: never go back
  lastHandoff: 0,        // ms timestamp the origin was last seen handing off
  originFallbacks: 0,
  offered: null,         // {base, ih, torrent}: a torrent that came with a record
  took: null,            // ms the last version took: records, then torrent
  restored: null,
};
const prefetch = new P.Prefetch({
  V, store, mirrors, fromMirrors, fetchBundle, distrust, delay,
  bases: () => state.config.mirrors,
  current: () => state.snap,
  timing,
});

/* The origin's timings (decide.js), in ms. */
function timing() {
  return state.config ? state.config.timing : DEFAULT_TIMING;
}

// Ask for the signed version and its file list while the worker activates, so the page's
// request that follows finds them ready.
self.addEventListener('install', (event) => {
  event.waitUntil(self.skipWaiting());
  loadConfig().then((config) => config.mode === 'handoff' && snapshot(config)).catch(() => {});
});
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === STATUS_URL) { event.respondWith(statusResponse()); return; }
  if (url.pathname.startsWith('/.peerweb/')) return;
  if (event.request.method !== 'GET' && event.request.method !== 'HEAD') return;
  event.respondWith(handle(event.request, url));
});

async function handle(request, url) {
  let config;
  try {
    config = await loadConfig();
  } catch {
    return fetch(request); // no word from the origin and none kept: behave as if absent
  }
  if (config.mode !== 'handoff' || !config.mirrors.length) return fromOrigin(request, null);
  let snap;
  try {
    snap = await snapshot(config);
  } catch (err) {
    return fromOrigin(request, err);
  }
  const found = V.lookup(snap.index, url.pathname);
  if (found.kind === 'bad_path') return errorPage(400, 'That path is not valid inside a site.');
  if (found.kind === 'redirect') return Response.redirect(new URL(found.location, url), 301);
  // Not a published file: a dynamic page or a miss, which only the origin can answer.
  if (found.kind === 'not_found') return fromOrigin(request, null);
  try {
    return await serveFile(request, snap, found.path);
  } catch (err) {
    return fromOrigin(request, err);
  }
}

// --- what the origin says --------------------------------------------------------------

/* The loader page hands over the origin's config in this script's URL, dated by the
 * browser's clock: a first visit need not ask the busy origin for it again. A worker
 * restarted later finds it stale and asks, as always. */
function bootConfig() {
  try {
    const config = JSON.parse(new URL(self.location.href).searchParams.get('boot'));
    V.fromHex(config.public_key);
    return D.bootUsable(config, now()) ? config : null;
  } catch {
    return null;
  }
}

function adopt(config, at) {
  config.key = V.fromHex(config.public_key);
  config.mirrors = (config.mirrors || []).map((m) => String(m).replace(/\/+$/, ''));
  config.timing = D.timings(config);
  if (state.config && String(state.config.mirrors) !== String(config.mirrors)) {
    state.snapAt = 0; // other mirrors: ask them for the newest version now
  }
  state.config = config;
  state.configAt = at;
  noteMode(config);
  return config;
}

async function loadConfig() {
  await restore();
  if (!state.config && BOOT) adopt(BOOT, BOOT.at);
  const fresh = now() - state.configAt < timing().config_refresh;
  if (state.config && fresh) return state.config;
  if (!state.configLoading) {
    state.configLoading = (async () => {
      const response = await fetch(CONFIG_URL, { cache: 'no-store' });
      if (!response.ok) throw new Error(`origin said ${response.status}`);
      return adopt(await response.json(), now());
    })().finally(() => { state.configLoading = null; });
  }
  if (state.config) { // a slow or unreachable origin leaves the mirrors it named in use
    const kept = state.config;
    const wait = delay(timing().config_wait).then(() => kept);
    return Promise.race([state.configLoading, wait]).catch(() => kept);
  }
  return state.configLoading;
}

/* Long after the last hand-off, the worker steps aside for good: the origin serves this
 * visitor as if it had never been busy (its next hand-off installs the worker again). */
function noteMode(config) {
  const step = D.noteMode(state.lastHandoff, config.mode, now(), config.timing);
  state.lastHandoff = step.lastHandoff;
  if (step.changed) persist();
  if (step.leave) self.registration.unregister();
}

// --- mirrors ---------------------------------------------------------------------------

function distrust(base, reason) {
  if (mirrors.distrust(base, reason)) {
    console.warn(`peerweb: mirror ${base} ${reason}; it will not be asked again`);
    persist();
  }
}

async function fetchFrom(base, path, init) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timing().fetch_timeout);
  const started = now();
  try {
    const response = await fetch(base + path, {
      ...init, mode: 'cors', credentials: 'omit', signal: controller.signal,
    });
    const body = new Uint8Array(await response.arrayBuffer());
    mirrors.timed(base, now() - started);
    return { response, body };
  } finally {
    clearTimeout(timer);
  }
}

/* Bytes [start, end) of ``path`` in ``snap`` that pass ``check``, from the first mirror that
 * delivers them; decide.js's Hedge says which mirrors to ask and when. */
function fromMirrors(snap, path, start, end, check) {
  const hedge = new D.Hedge(mirrors.next(state.config.mirrors, snap.version),
    timing().hedge_after);
  return new Promise((resolve, reject) => {
    let timer = null;
    const ask = (bases) => {
      for (const base of bases) {
        attempt(base, snap, path, start, end, check).then((data) => {
          if (hedge.answered(base)) {
            mirrors.served(base);
            resolve(data);
          }
          ask([]);
        }, (err) => ask(hedge.failed(base, err.message, now())));
      }
      if (hedge.error !== null) reject(new Error(`no mirror delivered ${path}: ${hedge.error}`));
      clearTimeout(timer);
      const at = hedge.timer();
      if (at !== null) timer = setTimeout(() => ask(hedge.handleTimer(now())), at - now());
    };
    ask(hedge.start(now()));
  });
}

async function attempt(base, snap, path, start, end, check) {
  const whole = start === 0 && end === snap.files.get(path).length;
  const headers = whole ? {} : { Range: `bytes=${start}-${end - 1}` };
  let fetched;
  try {
    fetched = await fetchFrom(base, `/ih/${snap.ih}/${encodePath(path)}`, { headers });
  } catch (err) {
    mirrors.failed(base);
    throw err;
  }
  const { response, body } = fetched;
  if (!response.ok) {
    mirrors.failed(base);
    throw new Error(`HTTP ${response.status}`);
  }
  // A server may ignore Range and send the whole file; take our part of it.
  const data = response.status === 200 && !whole ? body.subarray(start, end) : body;
  if (!await check(data)) {
    distrust(base, `served altered bytes of ${path}`);
    throw new Error('failed verification');
  }
  return data;
}

const encodePath = (path) => path.split('/').map(encodeURIComponent).join('/');

/* A mirror's bundle of small files, by snapshot info-hash or by site id. */
function fetchBundle(base, what) {
  return fetchFrom(base, `/peerweb/v1/bundle/${what}`, {});
}

// --- the signed version and its file list ------------------------------------------------

async function snapshot(config) {
  if (state.snap && now() - state.snapAt < config.timing.record_ttl) return state.snap;
  if (!state.snapLoading) {
    state.snapLoading = loadSnapshot(config).then((snap) => {
      const fresh = !state.snap || state.snap.ih !== snap.ih;
      state.snap = snap;
      state.snapAt = now();
      if (fresh) prefetch.warmUp(snap);
      return snap;
    }).finally(() => { state.snapLoading = null; });
  }
  return state.snapLoading;
}

async function loadSnapshot(config) {
  const started = now();
  const asked = mirrors.askable(config.mirrors);
  // A first load asks one mirror, the lead, for everything at once: its record with the
  // torrent it names, and the bundle of that snapshot, beside the other mirrors' records.
  // One round trip instead of three before the first page; refreshes ask for records only.
  const lead = state.snap ? null : mirrors.next(config.mirrors, 0)[0];
  if (lead) prefetch.ask(lead, config.site_id);
  const answers = await Promise.all(asked.map((base) => record(config, base, base === lead)));
  let best = null;
  for (const found of answers) {
    if (found && (!best || found.version > best.version)) best = found;
  }
  const floor = Math.max(state.highest, config.version || 0);
  if (!best || best.version < floor) {
    throw new Error(`no mirror has a signed version ${floor ? `>= ${floor}` : ''}`);
  }
  if (best.version > state.highest) {
    state.highest = best.version;
    persist();
  }
  const recordsAt = now();
  // The lead's bundle, if its record is the one chosen, is on its way already.
  if (!state.torrents.has(best.ih) && !prefetch.coming(best)) { // a snapshot new here
    const [base] = mirrors.next(config.mirrors, best.version);
    if (base !== undefined) prefetch.ask(base, best.ih);
  }
  const torrent = await torrentFor(config, best, mirrors.holders(asked, best.version));
  state.took = { records_ms: recordsAt - started, torrent_ms: now() - recordsAt };
  return { ...torrent, version: best.version, index: V.siteIndex([...torrent.files.keys()]) };
}

/* The signed record ``base`` holds, checked; null if none. From the ``lead`` it comes with
 * the torrent it names (``/current``: a bencoded dict), kept in ``state.offered``. */
async function record(config, base, lead) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), config.timing.record_wait);
  try {
    const response = await fetch(`${base}/peerweb/v1/${lead ? 'current' : 'record'}/` +
      config.site_id, { mode: 'cors', credentials: 'omit', cache: 'no-store',
      signal: controller.signal });
    if (!response.ok) return null;
    let json = null;
    let torrent = null;
    if (lead) {
      const parts = V.bdecode(new Uint8Array(await response.arrayBuffer())).value;
      json = JSON.parse(new TextDecoder().decode(parts.get('record')));
      torrent = parts.get('torrent');
    } else {
      json = await response.json();
    }
    const found = await V.verifyRecord(config.key, json);
    if (torrent instanceof Uint8Array) state.offered = { base, ih: found.ih, torrent };
    mirrors.showed(base, found.version);
    if (found.version < Math.max(state.highest, config.version || 0)) {
      console.warn(`peerweb: mirror ${base} offers old version ${found.version}`);
    }
    return found;
  } catch (err) {
    if (err instanceof V.Invalid || err instanceof SyntaxError) {
      distrust(base, `served a forged record (${err.message})`);
    }
    return null;
  } finally {
    clearTimeout(timer);
  }
}

async function torrentFor(config, best, holders) {
  const known = state.torrents.get(best.ih);
  if (known) return known;
  const offered = state.offered;
  state.offered = null;
  if (offered && offered.ih === best.ih) {
    const torrent = await parsed(offered.base, offered.torrent, best.ih);
    if (torrent) return torrent;
  }
  for (const base of holders) {
    try {
      const { response, body } = await fetchFrom(base, `/peerweb/v1/torrent/${best.ih}`, {});
      const torrent = response.ok && await parsed(base, body, best.ih);
      if (torrent) return torrent;
    } catch {
      // the next holder
    }
  }
  throw new Error(`no mirror gave a torrent matching version ${best.version}`);
}

/* The torrent ``body`` from ``base`` if it is the one the signed ``ih`` names; else null,
 * and the mirror is not trusted again. */
async function parsed(base, body, ih) {
  try {
    const torrent = await V.parseTorrent(body, ih);
    state.torrents.clear(); // only the current version is served
    state.torrents.set(ih, torrent);
    checkLayers(base, torrent);
    return torrent;
  } catch (err) {
    if (err instanceof V.Invalid) distrust(base, `served a bad torrent (${err.message})`);
    return null;
  }
}

/* Piece layers are checked in the background, so a page never waits for them (pieces do).
 * A bad one is this mirror's forgery outside the signed info dict: the torrent is dropped
 * and taken again from another mirror. */
function checkLayers(base, torrent) {
  for (const [path, file] of torrent.files) {
    if (!file.layer) continue;
    V.checkLayer(file, torrent.pieceLength).catch(() => {
      distrust(base, `served a bad piece layer for ${path}`);
      if (state.torrents.get(torrent.ih) === torrent) state.torrents.delete(torrent.ih);
      if (state.snap && state.snap.ih === torrent.ih) state.snap = null;
    });
  }
}

// --- responses -------------------------------------------------------------------------

async function serveFile(request, snap, path) {
  const file = snap.files.get(path);
  const headers = new Headers({
    'Content-Type': V.contentType(path),
    'Cache-Control': 'no-cache',
    'Accept-Ranges': 'bytes',
    'X-Content-Type-Options': 'nosniff',
    'X-Peerweb-Verified': `v${snap.version} ${snap.ih}`,
  });
  if (file.root) headers.set('ETag', `"${V.hex(file.root)}"`);
  let range;
  try {
    range = V.parseRange(request.headers.get('Range'), file.length);
  } catch {
    headers.set('Content-Range', `bytes */${file.length}`);
    return new Response(null, { status: 416, headers });
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : file.length;
  if (range) headers.set('Content-Range', `bytes ${start}-${end - 1}/${file.length}`);
  headers.set('Content-Length', String(end - start));
  const code = range ? 206 : 200;
  if (request.method === 'HEAD') return new Response(null, { status: code, headers });
  if (!file.layer) {
    const data = await prefetch.smallFile(snap, path, file);
    return new Response(data.slice(start, end), { status: code, headers });
  }
  return new Response(pieceStream(snap, path, file, start, end), { status: code, headers });
}

/* Bytes [start, end) of a big file, fetched in whole-piece segments (several in flight,
 * spread over the mirrors), each piece checked before a byte of it is passed on. */
function pieceStream(snap, path, file, start, end) {
  const piece = snap.pieceLength;
  const span = Math.max(piece, Math.floor(SEGMENT / piece) * piece);
  const first = Math.floor(start / span);
  const last = Math.floor((end - 1) / span);
  const pending = new Map();
  let next = first;
  let launched = first;
  const segment = (i) => {
    const from = i * span;
    const to = Math.min(file.length, from + span);
    return fromMirrors(snap, path, from, to,
      (data) => V.checkPieces(file, piece, from / piece, data));
  };
  return new ReadableStream({
    async pull(controller) {
      while (launched <= last && pending.size < AHEAD) {
        const p = segment(launched);
        p.catch(() => {});
        pending.set(launched++, p);
      }
      try {
        const data = await pending.get(next);
        pending.delete(next);
        const from = next * span;
        controller.enqueue(data.slice(Math.max(0, start - from), Math.min(data.length,
          end - from)));
        next++;
        if (next > last) controller.close();
      } catch (err) {
        // Headers are gone: cutting the body short is the honest signal left.
        controller.error(err);
      }
    },
    cancel() { pending.clear(); },
  }, { highWaterMark: 0 });
}

async function fromOrigin(request, why) {
  if (why) {
    state.originFallbacks++;
    console.warn(`peerweb: asking the origin for ${request.url}: ${why.message}`);
  }
  // The header keeps the origin from handing this request off again: it answers itself.
  const headers = new Headers(request.headers);
  headers.set(WORKER_HEADER, '1');
  try {
    const response = await fetch(request.url, {
      method: request.method, headers, credentials: 'same-origin',
      redirect: request.mode === 'navigate' ? 'manual' : 'follow',
    });
    if (response.status < 500) return response;
  } catch {
    // fall through to the error page
  }
  return errorPage(503, 'No mirror could deliver a verified copy of this page and the ' +
    "site's server is busy. Try again in a minute.");
}

/* The worker's one error page (``message`` is the worker's own text, not a mirror's). */
function errorPage(status, message) {
  const body = '<!doctype html><meta charset=utf-8><title>Not available</title>' +
    '<body style="font:16px system-ui;max-width:40em;margin:3em auto">' +
    `<h1>Not available</h1><p>${message}</p><p><small>peerweb verifying loader · HTTP ` +
    `${status}</small></p>`;
  return new Response(body, {
    status, headers: { 'Content-Type': V.contentType('error.html'), 'Cache-Control': 'no-store' },
  });
}

async function statusResponse() {
  await restore();
  const snap = state.snap;
  const body = {
    site_id: state.config && state.config.site_id,
    mode: state.config && state.config.mode,
    version: snap ? snap.version : null,
    infohash: snap ? snap.ih : null,
    highest_version: state.highest,
    origin_fallbacks: state.originFallbacks,
    timings: state.took,
    mirrors: mirrors.statistics(),
  };
  return new Response(JSON.stringify(body), {
    headers: { 'Content-Type': V.contentType('status.json'), 'Cache-Control': 'no-store' },
  });
}

// --- memory across worker restarts: distrusted mirrors and the highest version -----------

async function restore() {
  if (!state.restored) {
    state.restored = (async () => {
      try {
        const cache = await caches.open('peerweb');
        const saved = await cache.match(STATE_KEY);
        if (!saved) return;
        const data = await saved.json();
        state.highest = Math.max(state.highest, data.highest || 0);
        state.lastHandoff = Math.max(state.lastHandoff, data.lastHandoff || 0);
        mirrors.restore(data.bad);
      } catch {
        // Storage may be off (private mode): memory alone still protects this session.
      }
    })();
  }
  return state.restored;
}

async function persist() {
  try {
    const cache = await caches.open('peerweb');
    const saved = { highest: state.highest, lastHandoff: state.lastHandoff,
      bad: mirrors.distrusted() };
    await cache.put(STATE_KEY, new Response(JSON.stringify(saved)));
  } catch {
    // as above
  }
}
