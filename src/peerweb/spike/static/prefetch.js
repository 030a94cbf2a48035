/* peerweb prefetch: the verifying worker's small files, kept once checked, and a small site
 * fetched whole as soon as its version is known (in one request where a mirror offers a
 * bundle, else a few files at a time), so the page that follows finds its files waiting.
 *
 * No fetch, no timers, no clock of its own: the worker (sw.js) hands ``Prefetch`` what it
 * needs to reach mirrors and to wait. The cutting and checking of a bundle and the order of
 * the warm-up are plain functions, for the tests too.
 */
(function (root) {
  'use strict';

  const WARM_BYTES = 4 << 20;  // a site whose small files fit in this is fetched whole...
  const WARM_FILES = 400;      // ...if they are at most this many...
  const WARM_PARALLEL = 2;     // ...this many at a time, leaving connections to the page
  const BUNDLE_TRIES = 2;      // mirrors asked for a bundle of the small files before that

  const isPage = (path) => /\.html?$/.test(path);

  /* Verified small files by merkle root (hex), at most ``limit`` bytes of them, the oldest
   * dropped first; and the fetches under way (``fetching``, root -> promise), which the page,
   * the warm-up and a bundle share. */
  class FileStore {
    constructor(limit) {
      this.limit = limit;
      this.files = new Map();
      this.bytes = 0;
      this.fetching = new Map();
    }

    get(key) { return this.files.get(key); }

    /* Whether ``key`` is kept or on its way. */
    known(key) { return this.files.has(key) || this.fetching.has(key); }

    keep(key, data) {
      this.files.set(key, data);
      this.bytes += data.length;
      for (const [old, bytes] of this.files) {
        if (this.bytes <= this.limit) break;
        this.files.delete(old);
        this.bytes -= bytes.length;
      }
      return data;
    }
  }

  /* The small files of ``files`` (a torrent's, path -> file) that a warm-up fetches, in
   * file tree order, with their total: null when there are none or they are too many bytes. */
  function warmPlan(files) {
    const small = [...files].filter(([, f]) => !f.layer && f.length);
    const total = small.reduce((n, [, f]) => n + f.length, 0);
    return small.length && total <= WARM_BYTES ? { small, total } : null;
  }

  /* ``small`` in the order a warm-up takes them one by one: index.html before all, then
   * pages, then what pages load first (style sheets and scripts), then the rest. */
  function warmOrder(small) {
    const rank = ([path]) => (path === 'index.html' ? 0 : isPage(path) ? 1
      : /\.(css|m?js)$/.test(path) ? 2 : 3);
    return [...small].sort((a, b) => rank(a) - rank(b));
  }

  /* A bundle ``body`` cut into the files of ``small`` (file tree order, back to back), each
   * checked against its own merkle root: {found: root hex -> bytes, bad: the first path
   * whose bytes fail, or null}. ``body`` must be exactly their total length. */
  async function splitBundle(V, body, small) {
    const found = new Map();
    let offset = 0;
    const checks = small.map(([path, file]) => {
      const data = body.slice(offset, offset + file.length);
      offset += file.length;
      found.set(V.hex(file.root), data);
      return V.checkFile(file, data).then((good) => good || path);
    });
    const bad = (await Promise.all(checks)).find((result) => result !== true);
    return { found, bad: bad || null };
  }

  /* The small files of the current snapshot, from mirrors through the worker's ``deps``:
   *   V            verify.js
   *   store        a FileStore
   *   mirrors      decide.js's MirrorTable
   *   bases()      the mirrors the origin names now
   *   current()    the snapshot being served (a newer one stops a warm-up)
   *   timing()     the worker's timings in ms (bundle_wait)
   *   fromMirrors(snap, path, start, end, check)  bytes that pass ``check``, hedged
   *   fetchBundle(base, what)                     {response, body} of a mirror's bundle
   *   distrust(base, reason)                      never ask ``base`` again
   *   delay(ms)                                   a promise that resolves after ``ms``
   */
  class Prefetch {
    constructor(deps) {
      this.deps = deps;
      this.asked = null; // {base, ih, fetched}: a bundle asked for before it is needed
    }

    /* The bundle of small files is asked for before the torrent to check it against is in:
     * by site id from the lead (its current snapshot's, which it names in a header), or by
     * info-hash once the signed record names one. ``warmUp`` checks it. */
    ask(base, what) {
      const fetched = this.deps.fetchBundle(base, what);
      fetched.catch(() => {});
      this.asked = { base, ih: what.length === 40 ? what : null, fetched };
    }

    /* Whether the bundle already asked for is likely the one of ``best`` (a signed record):
     * named by its info-hash, or by site id from a mirror that showed that version. */
    coming(best) {
      const early = this.asked;
      if (!early) return false;
      return early.ih ? early.ih === best.ih
        : this.deps.mirrors.get(early.base).version === best.version;
    }

    /* The checked bytes of a small file; the page, the warm-up and a bundle share one fetch. */
    smallFile(snap, path, file) {
      const { V, store } = this.deps;
      const key = file.root ? V.hex(file.root) : '';
      if (!key) return Promise.resolve(new Uint8Array(0));
      const kept = store.get(key);
      if (kept) return Promise.resolve(kept);
      let pending = store.fetching.get(key);
      if (!pending) {
        pending = this.deps.fromMirrors(snap, path, 0, file.length, (d) => V.checkFile(file, d))
          .then((data) => store.keep(key, data))
          .finally(() => store.fetching.delete(key));
        store.fetching.set(key, pending);
      }
      return pending;
    }

    /* A small site is fetched whole as soon as its version is known: from a bundle where a
     * mirror offers one, else 2 files at a time, pages first (the page's own requests do not
     * wait for this queue). */
    async warmUp(snap) {
      const asked = this.asked;
      this.asked = null;
      const plan = warmPlan(snap.files);
      if (!plan) return;
      if (await this.fromBundle(snap, plan.small, plan.total, asked)
          || plan.small.length > WARM_FILES) return;
      const queue = warmOrder(plan.small);
      const worker = async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          if (this.deps.current() !== snap) return; // a newer version came
          await this.smallFile(snap, next[0], next[1]).catch(() => {});
        }
      };
      await Promise.all(Array.from({ length: WARM_PARALLEL }, worker));
    }

    /* Every small file of ``snap`` (``small``, in file tree order) from one mirror's bundle.
     * ``asked`` is the bundle already on its way (``ask``), tried first. While it is on its
     * way the page's requests for those files (pages aside) wait on it; if no mirror delivers
     * a good one, they fetch their files one by one. True if a bundle came. */
    async fromBundle(snap, small, total, asked) {
      const { V, store, mirrors } = this.deps;
      const waiting = [];
      for (const [path, file] of small) {
        const key = V.hex(file.root);
        // A page is wanted before anything else, and alone: it does not wait for the bundle.
        if (store.known(key) || isPage(path)) continue;
        let settle;
        const promise = new Promise((resolve, reject) => { settle = { resolve, reject }; });
        promise.catch(() => {});
        store.fetching.set(key, promise);
        waiting.push({ path, file, key, promise, settle });
      }
      const bases = mirrors.next(this.deps.bases(), snap.version)
        .filter((base) => !asked || base !== asked.base);
      if (asked && !mirrors.get(asked.base).bad) bases.unshift(asked.base);
      const tries = (async () => {
        for (const base of bases.slice(0, BUNDLE_TRIES)) {
          const early = asked && base === asked.base ? asked : null;
          const found = await this.bundleFrom(base, snap, small, total, early)
            .catch(() => null);
          if (!found) continue;
          for (const [key, data] of found) {
            if (!store.known(key)) store.keep(key, data);
          }
          return found;
        }
        return null;
      })();
      // A slow bundle does not hold the page: past bundle_wait its requests go on alone.
      const late = this.deps.delay(this.deps.timing().bundle_wait).then(() => null);
      const found = await Promise.race([tries, late]);
      for (const entry of waiting) {
        if (store.fetching.get(entry.key) === entry.promise) store.fetching.delete(entry.key);
        const data = found && found.get(entry.key);
        if (data) {
          entry.settle.resolve(store.keep(entry.key, data));
        } else {
          this.smallFile(snap, entry.path, entry.file)
            .then(entry.settle.resolve, entry.settle.reject);
        }
      }
      return (found || await tries) !== null;
    }

    /* ``base``'s bundle of ``snap``'s small files, checked: root hex -> bytes, or null. */
    async bundleFrom(base, snap, small, total, early) {
      const { response, body } = await (early ? early.fetched
        : this.deps.fetchBundle(base, snap.ih));
      // Not offered (an older or busier mirror), or of another snapshot: no fault.
      if (!response.ok) return null;
      const ih = response.headers.get('X-Peerweb-Snapshot') || (early ? early.ih : snap.ih);
      if (ih !== snap.ih) return null;
      if (body.length !== total) {
        this.deps.distrust(base, `served a bundle of ${body.length} bytes, not ${total}`);
        return null;
      }
      const { found, bad } = await splitBundle(this.deps.V, body, small);
      if (bad) {
        this.deps.distrust(base, `served altered bytes of ${bad} in a bundle`);
        return null;
      }
      this.deps.mirrors.served(base);
      return found;
    }
  }

  root.peerwebPrefetch = { FileStore, Prefetch, warmPlan, warmOrder, splitBundle, isPage };
})(self);
