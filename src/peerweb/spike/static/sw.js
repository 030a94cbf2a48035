/* peerweb verifying loader: a Service Worker that takes a site's files from volunteer mirrors
 * while its origin hands visitors off, and shows nothing it could not verify.
 *
 * The origin (first party) tells it the site key and the mirrors (/.peerweb/worker.json).
 * From the mirrors it takes the highest signed version record (checked against that key),
 * the torrent the record names (checked against the signed info-hash) and then each file,
 * checked against its BEP 52 merkle root; big files are checked piece by piece as they
 * stream, so media starts at once and a seek fetches only what it needs. A mirror caught
 * serving anything that fails a check is not asked again. When no mirror can serve a file,
 * the worker asks the origin itself; when that fails too, the visitor gets an error page.
 */
'use strict';
// The origin serves verify.js ahead of this file (one request, not two, before the worker
// can start); on its own, this file fetches it.
if (!self.peerwebVerify) importScripts('/.peerweb/verify.js');
const V = self.peerwebVerify;

const CONFIG_URL = '/.peerweb/worker.json';
const STATUS_URL = '/.peerweb/worker-status';
const WORKER_HEADER = 'X-Peerweb-Worker'; // tells the origin: answer this one yourself
const STATE_KEY = '/.peerweb/worker-state';
const CONFIG_TTL = 5000;     // ms between asks for the origin's mode and mirrors
const CONFIG_WAIT = 1000;    // ms to wait for that answer before going on with the last one
const RECORD_TTL = 15000;    // ms a verified version record is trusted before asking again
const RECORD_WAIT = 3000;    // ms to wait for mirrors' records
const HEDGE_AFTER = 1500;    // ms before a slow mirror gets company
const FETCH_TIMEOUT = 15000; // ms before a mirror request is given up
const SEGMENT = 1 << 20;     // bytes per request for big files (whole pieces)
const AHEAD = 4;             // segments in flight while streaming
const CACHE_LIMIT = 32 << 20; // bytes of verified small files kept in memory
const WARM_BYTES = 4 << 20;  // a site whose small files fit in this is fetched whole...
const WARM_FILES = 400;      // ...if they are at most this many...
const WARM_PARALLEL = 2;     // ...this many at a time, leaving connections to the page
const BUNDLE_TRIES = 2;      // mirrors asked for a bundle of the small files before that
const BUNDLE_WAIT = HEDGE_AFTER; // ms the page's requests wait on a bundle before going alone
const RELEASE_AFTER = 600;   // s of normal mode after a hand-off before the worker leaves
const BOOT = bootConfig();

const state = {
  config: null, configAt: 0, configLoading: null,
  snap: null, snapAt: 0, snapLoading: null,
  torrents: new Map(),   // ih -> parsed torrent
  mirrors: new Map(),    // base URL -> {bad, version, served, failures, ms}
  highest: 0,            // highest version ever verified: never go back
  lastHandoff: 0,        // ms timestamp the origin was last seen handing off
  originFallbacks: 0,
  files: new Map(), filesBytes: 0, // root hex -> verified bytes, oldest dropped first
  fetching: new Map(),   // root hex -> the fetch under way
  bundleAsked: null,     // {base, ih, fetched}: a bundle asked for before it is needed
  offered: null,         // {base, ih, torrent}: a torrent that came with a record
  restored: null,
};

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
    return Math.abs(Date.now() - config.at) < CONFIG_TTL ? config : null;
  } catch {
    return null;
  }
}

function adopt(config, at) {
  config.key = V.fromHex(config.public_key);
  config.mirrors = (config.mirrors || []).map((m) => String(m).replace(/\/+$/, ''));
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
  const fresh = Date.now() - state.configAt < CONFIG_TTL;
  if (state.config && fresh) return state.config;
  if (!state.configLoading) {
    state.configLoading = (async () => {
      const response = await fetch(CONFIG_URL, { cache: 'no-store' });
      if (!response.ok) throw new Error(`origin said ${response.status}`);
      return adopt(await response.json(), Date.now());
    })().finally(() => { state.configLoading = null; });
  }
  if (state.config) { // a slow or unreachable origin leaves the mirrors it named in use
    const kept = state.config;
    const wait = new Promise((resolve) => setTimeout(() => resolve(kept), CONFIG_WAIT));
    return Promise.race([state.configLoading, wait]).catch(() => kept);
  }
  return state.configLoading;
}

/* Long after the last hand-off, the worker steps aside for good: the origin serves this
 * visitor as if it had never been busy (its next hand-off installs the worker again). */
function noteMode(config) {
  const now = Date.now();
  if (config.mode === 'handoff') {
    if (now - state.lastHandoff > 60000) { state.lastHandoff = now; persist(); }
    return;
  }
  const release = 1000 * (config.release_after || RELEASE_AFTER);
  if (state.lastHandoff && now - state.lastHandoff > release) {
    state.lastHandoff = 0;
    persist();
    self.registration.unregister();
  }
}

// --- mirrors ---------------------------------------------------------------------------

function mirror(base) {
  let m = state.mirrors.get(base);
  if (!m) {
    m = { bad: null, version: 0, served: 0, failures: 0, ms: 0 };
    state.mirrors.set(base, m);
  }
  return m;
}

function distrust(base, reason) {
  const m = mirror(base);
  if (!m.bad) {
    m.bad = reason;
    console.warn(`peerweb: mirror ${base} ${reason}; it will not be asked again`);
    persist();
  }
}

/* Mirrors worth asking for a file of ``version``: never a distrusted one nor one that
 * showed an older version; fewer failures first, rotated among equals to spread the load. */
function candidates(config, version, turn) {
  const usable = config.mirrors.filter((base) => {
    const m = mirror(base);
    return !m.bad && !(m.version && m.version < version);
  });
  usable.sort((a, b) => mirror(a).failures - mirror(b).failures);
  const best = usable.filter((b) => mirror(b).failures === mirror(usable[0]).failures);
  const start = best.length ? turn % best.length : 0;
  return [...best.slice(start), ...best.slice(0, start), ...usable.slice(best.length)];
}

async function fetchFrom(base, path, init) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT);
  const started = Date.now();
  try {
    const response = await fetch(base + path, {
      ...init, mode: 'cors', credentials: 'omit', signal: controller.signal,
    });
    const body = new Uint8Array(await response.arrayBuffer());
    const m = mirror(base);
    m.ms = m.ms ? 0.8 * m.ms + 0.2 * (Date.now() - started) : Date.now() - started;
    return { response, body };
  } finally {
    clearTimeout(timer);
  }
}

let turn = 0;

/* Bytes [start, end) of ``path`` in ``snap`` that pass ``check``, from the first mirror that
 * delivers them; a second mirror starts when the first is slow, the next when one fails. */
function fromMirrors(snap, path, start, end, check) {
  const queue = candidates(state.config, snap.version, turn++);
  return new Promise((resolve, reject) => {
    let running = 0;
    let done = false;
    let timer = null;
    const errors = [];
    const launch = () => {
      if (done) return;
      const base = queue.shift();
      if (base === undefined) {
        if (running === 0) {
          done = true;
          reject(new Error(`no mirror delivered ${path}: ${errors.join('; ') || 'none left'}`));
        }
        return;
      }
      running++;
      clearTimeout(timer);
      timer = setTimeout(launch, HEDGE_AFTER);
      attempt(base, snap, path, start, end, check).then((data) => {
        running--;
        if (done) return;
        done = true;
        clearTimeout(timer);
        mirror(base).served++;
        resolve(data);
      }, (err) => {
        running--;
        errors.push(`${base}: ${err.message}`);
        launch();
      });
    };
    launch();
  });
}

async function attempt(base, snap, path, start, end, check) {
  const whole = start === 0 && end === snap.files.get(path).length;
  const headers = whole ? {} : { Range: `bytes=${start}-${end - 1}` };
  let fetched;
  try {
    fetched = await fetchFrom(base, `/ih/${snap.ih}/${encodePath(path)}`, { headers });
  } catch (err) {
    mirror(base).failures++;
    throw err;
  }
  const { response, body } = fetched;
  if (!response.ok) {
    mirror(base).failures++;
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

// --- the signed version and its file list ------------------------------------------------

async function snapshot(config) {
  if (state.snap && Date.now() - state.snapAt < RECORD_TTL) return state.snap;
  if (!state.snapLoading) {
    state.snapLoading = loadSnapshot(config).then((snap) => {
      const fresh = !state.snap || state.snap.ih !== snap.ih;
      state.snap = snap;
      state.snapAt = Date.now();
      if (fresh) warmUp(snap);
      return snap;
    }).finally(() => { state.snapLoading = null; });
  }
  return state.snapLoading;
}

async function loadSnapshot(config) {
  const started = Date.now();
  const asked = config.mirrors.filter((base) => !mirror(base).bad);
  // A first load asks one mirror, the lead, for everything at once: its record with the
  // torrent it names, and the bundle of that snapshot, beside the other mirrors' records.
  // One round trip instead of three before the first page; refreshes ask for records only.
  const lead = state.snap ? null : candidates(config, 0, turn++)[0];
  if (lead) askBundle(lead, config.site_id);
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
  const recordsAt = Date.now();
  const early = state.bundleAsked; // the lead's, if its record is the one chosen
  const coming = early && (early.ih ? early.ih === best.ih
    : mirror(early.base).version === best.version);
  if (!state.torrents.has(best.ih) && !coming) { // a snapshot new to this worker
    const [base] = candidates(config, best.version, turn++);
    if (base !== undefined) askBundle(base, best.ih);
  }
  const torrent = await torrentFor(config, best, asked.filter((b) => mirror(b).version >=
    best.version));
  state.timings = { records_ms: recordsAt - started, torrent_ms: Date.now() - recordsAt };
  return { ...torrent, version: best.version, index: V.siteIndex([...torrent.files.keys()]) };
}

/* The signed record ``base`` holds, checked; null if none. From the ``lead`` it comes with
 * the torrent it names (``/current``: a bencoded dict), kept in ``state.offered``. */
async function record(config, base, lead) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), RECORD_WAIT);
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
    const m = mirror(base);
    m.version = found.version;
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

/* The bundle of small files is asked for before the torrent to check it against is in:
 * by site id from the lead (its current snapshot's, which it names in a header), or by
 * info-hash once the signed record names one. ``fromBundle`` checks it. */
function askBundle(base, what) {
  const fetched = fetchBundle(base, what);
  fetched.catch(() => {});
  state.bundleAsked = { base, ih: what.length === 40 ? what : null, fetched };
}

/* A mirror's bundle of small files, by snapshot info-hash or by site id. */
const fetchBundle = (base, what) => fetchFrom(base, `/peerweb/v1/bundle/${what}`, {});

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
    const data = await smallFile(snap, path, file);
    return new Response(data.slice(start, end), { status: code, headers });
  }
  return new Response(pieceStream(snap, path, file, start, end), { status: code, headers });
}

function smallFile(snap, path, file) {
  const key = file.root ? V.hex(file.root) : '';
  if (!key) return Promise.resolve(new Uint8Array(0));
  const kept = state.files.get(key);
  if (kept) return Promise.resolve(kept);
  let pending = state.fetching.get(key); // the page, the warm-up and a bundle share one fetch
  if (!pending) {
    pending = fromMirrors(snap, path, 0, file.length, (d) => V.checkFile(file, d))
      .then((data) => keep(key, data))
      .finally(() => state.fetching.delete(key));
    state.fetching.set(key, pending);
  }
  return pending;
}

function keep(key, data) {
  state.files.set(key, data);
  state.filesBytes += data.length;
  for (const [old, bytes] of state.files) {
    if (state.filesBytes <= CACHE_LIMIT) break;
    state.files.delete(old);
    state.filesBytes -= bytes.length;
  }
  return data;
}

/* A small site is fetched whole as soon as its version is known, in one request where a
 * mirror offers its small files as a bundle, else a few files at a time: the page that
 * follows (and the next ones) then finds its files checked and waiting. */
async function warmUp(snap) {
  const asked = state.bundleAsked;
  state.bundleAsked = null;
  const small = [...snap.files].filter(([, f]) => !f.layer && f.length);
  const total = small.reduce((n, [, f]) => n + f.length, 0);
  if (!small.length || total > WARM_BYTES) return;
  if (await fromBundle(snap, small, total, asked) || small.length > WARM_FILES) return;
  // Pages first (index.html before all), then what pages load first; the page's own
  // requests do not wait for this queue.
  const rank = ([path]) => (path === 'index.html' ? 0 : isPage(path) ? 1
    : /\.(css|m?js)$/.test(path) ? 2 : 3);
  const queue = small.sort((a, b) => rank(a) - rank(b));
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      if (state.snap !== snap) return; // a newer version came
      await smallFile(snap, next[0], next[1]).catch(() => {});
    }
  };
  await Promise.all(Array.from({ length: WARM_PARALLEL }, worker));
}

const isPage = (path) => /\.html?$/.test(path);

/* Every small file of ``snap`` (``small``, in file tree order) from one mirror's bundle:
 * their bytes back to back, each checked against its own merkle root. ``asked`` is the
 * bundle already on its way (``askBundle``), tried first. While it is on its way the page's
 * requests for those files (pages aside) wait on it; if no mirror delivers a good one, they
 * fetch their files one by one. */
async function fromBundle(snap, small, total, asked) {
  const waiting = [];
  for (const [path, file] of small) {
    const key = V.hex(file.root);
    // A page is wanted before anything else, and alone: it does not wait for the bundle.
    if (state.files.has(key) || state.fetching.has(key) || isPage(path)) continue;
    let settle;
    const promise = new Promise((resolve, reject) => { settle = { resolve, reject }; });
    promise.catch(() => {});
    state.fetching.set(key, promise);
    waiting.push({ path, file, key, promise, settle });
  }
  const bases = candidates(state.config, snap.version, turn++)
    .filter((base) => !asked || base !== asked.base);
  if (asked && !mirror(asked.base).bad) bases.unshift(asked.base);
  const tries = (async () => {
    for (const base of bases.slice(0, BUNDLE_TRIES)) {
      const early = asked && base === asked.base ? asked : null;
      const found = await bundleFrom(base, snap, small, total, early).catch(() => null);
      if (!found) continue;
      for (const [key, data] of found) {
        if (!state.files.has(key) && !state.fetching.has(key)) keep(key, data);
      }
      return found;
    }
    return null;
  })();
  // A slow bundle does not hold the page: past BUNDLE_WAIT its requests go on alone.
  const late = new Promise((resolve) => setTimeout(() => resolve(null), BUNDLE_WAIT));
  const found = await Promise.race([tries, late]);
  for (const entry of waiting) {
    if (state.fetching.get(entry.key) === entry.promise) state.fetching.delete(entry.key);
    const data = found && found.get(entry.key);
    if (data) {
      entry.settle.resolve(keep(entry.key, data));
    } else {
      smallFile(snap, entry.path, entry.file).then(entry.settle.resolve, entry.settle.reject);
    }
  }
  return (found || await tries) !== null;
}

async function bundleFrom(base, snap, small, total, early) {
  const { response, body } = await (early ? early.fetched : fetchBundle(base, snap.ih));
  // Not offered (an older or busier mirror), or of another snapshot: no fault.
  if (!response.ok) return null;
  const ih = response.headers.get('X-Peerweb-Snapshot') || (early ? early.ih : snap.ih);
  if (ih !== snap.ih) return null;
  if (body.length !== total) {
    distrust(base, `served a bundle of ${body.length} bytes, not ${total}`);
    return null;
  }
  const found = new Map();
  let offset = 0;
  const checks = small.map(([path, file]) => {
    const data = body.slice(offset, offset + file.length);
    offset += file.length;
    found.set(V.hex(file.root), data);
    return V.checkFile(file, data).then((good) => good || path);
  });
  const bad = (await Promise.all(checks)).find((result) => result !== true);
  if (bad) {
    distrust(base, `served altered bytes of ${bad} in a bundle`);
    return null;
  }
  mirror(base).served++;
  return found;
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

function errorPage(status, message) {
  const body = '<!doctype html><meta charset=utf-8><title>Not available</title>' +
    '<body style="font:16px system-ui;max-width:40em;margin:3em auto">' +
    `<h1>Not available</h1><p>${message}</p><p><small>peerweb verifying loader · HTTP ` +
    `${status}</small></p>`;
  return new Response(body, {
    status, headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' },
  });
}

async function statusResponse() {
  await restore();
  const mirrors = {};
  for (const [base, m] of state.mirrors) mirrors[base] = { ...m };
  const snap = state.snap;
  const body = {
    site_id: state.config && state.config.site_id,
    mode: state.config && state.config.mode,
    version: snap ? snap.version : null,
    infohash: snap ? snap.ih : null,
    highest_version: state.highest,
    origin_fallbacks: state.originFallbacks,
    timings: state.timings || null,
    mirrors,
  };
  return new Response(JSON.stringify(body), {
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
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
        for (const [base, reason] of Object.entries(data.bad || {})) mirror(base).bad = reason;
      } catch {
        // Storage may be off (private mode): memory alone still protects this session.
      }
    })();
  }
  return state.restored;
}

async function persist() {
  const bad = {};
  for (const [base, m] of state.mirrors) if (m.bad) bad[base] = m.bad;
  try {
    const cache = await caches.open('peerweb');
    const saved = { highest: state.highest, lastHandoff: state.lastHandoff, bad };
    await cache.put(STATE_KEY, new Response(JSON.stringify(saved)));
  } catch {
    // as above
  }
}
