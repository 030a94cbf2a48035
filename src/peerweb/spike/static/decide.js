/* peerweb decisions: which mirror the verifying worker asks next, when it asks another one,
 * and when it steps aside.
 *
 * Pure, like verify.js: no fetch, no timers, no clock. The worker (sw.js) passes the time in
 * (``now``, in ms), does what the answers say and reports back what happened; the browser
 * tests drive the same code with plain values. Shared by the Service Worker (served ahead of
 * sw.js) and the tests (a <script> of its own).
 */
(function (root) {
  'use strict';

  // --- timings: what the origin's /.peerweb/worker.json says, in ms -----------------------

  /* Today's values; the origin may send others (``timings``, in seconds: loader.py's
   * WorkerTimings, which keeps the same defaults), as the tests do to wait less. */
  const DEFAULT_TIMINGS = Object.freeze({
    config_refresh: 5000, // between asks for the origin's mode and mirrors
    config_wait: 1000,    // for that answer before going on with the last one
    record_ttl: 15000,    // a verified version record is trusted this long before asking again
    record_wait: 3000,    // for mirrors' records
    hedge_after: 1500,    // before a slow mirror gets company
    fetch_timeout: 15000, // before a mirror request is given up
    bundle_wait: 1500,    // the page's requests wait on a bundle this long before going alone
    handoff_mark: 60000,  // the time of the last hand-off seen is stored at most this often
    release_after: 600000, // of normal mode after the last hand-off before the worker leaves
    takeover_wait: 5000,  // the loader page's, for the worker to take over (unused here)
  });

  /* The timings of an origin's ``config`` in ms: each one it names (seconds, >= 0), else the
   * default. */
  function timings(config) {
    const given = (config && config.timings) || {};
    const out = {};
    for (const [name, fallback] of Object.entries(DEFAULT_TIMINGS)) {
      const seconds = given[name];
      out[name] = typeof seconds === 'number' && seconds >= 0 && Number.isFinite(seconds)
        ? seconds * 1000 : fallback;
    }
    return Object.freeze(out);
  }

  /* Whether the config the loader page handed over (dated ``at`` by the browser's clock) is
   * recent enough to use without asking the origin again. */
  const bootUsable = (config, now) =>
    typeof config.at === 'number' && Math.abs(now - config.at) < timings(config).config_refresh;

  /* What the origin's ``mode`` means for the worker's memory of the last hand-off
   * (``lastHandoff``, ms, 0 for none): {lastHandoff, changed (store it), leave (unregister:
   * the calm has outlasted release_after)}. */
  function noteMode(lastHandoff, mode, now, t) {
    if (mode === 'handoff') {
      const mark = now - lastHandoff > t.handoff_mark;
      return { lastHandoff: mark ? now : lastHandoff, changed: mark, leave: false };
    }
    const leave = lastHandoff !== 0 && now - lastHandoff > t.release_after;
    return { lastHandoff: leave ? 0 : lastHandoff, changed: leave, leave };
  }

  // --- mirrors -------------------------------------------------------------------------

  /* What the worker knows of each mirror, by gateway base URL: ``bad`` (why it is never asked
   * again, or null), the ``version`` its record showed, files ``served``, ``failures`` and a
   * moving average of its answer time (``ms``). */
  class MirrorTable {
    constructor() {
      this.byBase = new Map();
      this.turn = 0; // rotates the choice among equally good mirrors
    }

    get(base) {
      let m = this.byBase.get(base);
      if (!m) {
        m = { bad: null, version: 0, served: 0, failures: 0, ms: 0 };
        this.byBase.set(base, m);
      }
      return m;
    }

    /* Never ask ``base`` again; true if this is news (to be stored and told). */
    distrust(base, reason) {
      const m = this.get(base);
      if (m.bad) return false;
      m.bad = reason;
      return true;
    }

    /* ``base``'s record was good and named ``version``. */
    showed(base, version) { this.get(base).version = version; }

    failed(base) { this.get(base).failures++; }
    served(base) { this.get(base).served++; }

    timed(base, ms) {
      const m = this.get(base);
      m.ms = m.ms ? 0.8 * m.ms + 0.2 * ms : ms;
    }

    /* Of ``bases``, those that may be asked for records at all (none distrusted). */
    askable(bases) { return bases.filter((base) => !this.get(base).bad); }

    /* Of ``bases``, those whose record showed ``version`` or newer. */
    holders(bases, version) {
      return bases.filter((base) => this.get(base).version >= version);
    }

    /* Mirrors worth asking for a file of ``version``, best first: never a distrusted one nor
     * one that showed an older version; fewer failures first, the equals rotated by ``turn``
     * to spread the load. */
    candidates(bases, version, turn) {
      const usable = bases.filter((base) => {
        const m = this.get(base);
        return !m.bad && !(m.version && m.version < version);
      });
      usable.sort((a, b) => this.get(a).failures - this.get(b).failures);
      const best = usable.filter((b) => this.get(b).failures === this.get(usable[0]).failures);
      const start = best.length ? turn % best.length : 0;
      return [...best.slice(start), ...best.slice(0, start), ...usable.slice(best.length)];
    }

    /* ``candidates`` with the next turn: each request starts on another of the best. */
    next(bases, version) { return this.candidates(bases, version, this.turn++); }

    /* {base: reason} of the distrusted ones, to store; ``restore`` takes it back. */
    distrusted() {
      const bad = {};
      for (const [base, m] of this.byBase) if (m.bad) bad[base] = m.bad;
      return bad;
    }

    restore(bad) {
      for (const [base, reason] of Object.entries(bad || {})) this.get(base).bad = reason;
    }

    statistics() {
      const out = {};
      for (const [base, m] of this.byBase) out[base] = { ...m };
      return out;
    }
  }

  /* One request raced over mirrors (``queue``, best first): the first is asked at once,
   * another joins each time ``hedgeAfter`` ms pass without an answer, and the next at once
   * when one fails. The first good answer wins; the request has failed once every mirror
   * asked has failed and none is left (``error`` says why). Each step returns the mirrors
   * to ask now; ``timer()`` is when ``handleTimer`` wants calling (null: no need). */
  class Hedge {
    constructor(queue, hedgeAfter) {
      this.queue = [...queue];
      this.hedgeAfter = hedgeAfter;
      this.running = 0;
      this.deadline = null;
      this.winner = null;
      this.error = null;
      this.errors = [];
    }

    get done() { return this.winner !== null || this.error !== null; }

    start(now) { return this._next(now); }

    timer() { return this.done ? null : this.deadline; }

    handleTimer(now) {
      if (this.deadline === null || now < this.deadline) return [];
      return this._next(now);
    }

    /* ``base`` delivered good bytes: true if they are the answer (the first). */
    answered(base) {
      this.running--;
      if (this.done) return false;
      this.winner = base;
      this.deadline = null;
      return true;
    }

    failed(base, reason, now) {
      this.running--;
      this.errors.push(`${base}: ${reason}`);
      return this._next(now);
    }

    _next(now) {
      if (this.done) return [];
      const base = this.queue.shift();
      if (base === undefined) {
        this.deadline = null;
        if (this.running === 0) this.error = this.errors.join('; ') || 'none left';
        return [];
      }
      this.running++;
      this.deadline = now + this.hedgeAfter;
      return [base];
    }
  }

  root.peerwebDecide = { DEFAULT_TIMINGS, timings, bootUsable, noteMode, MirrorTable, Hedge };
})(self);
