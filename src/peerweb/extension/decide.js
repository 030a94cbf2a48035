// The extension's decisions, as plain functions and one class of plain state: is this answer a
// failing origin, is this navigation stalled, does a copy from peers replace the page at once
// or behind a button, may this visit be reported, when does browsing go back to the origin.
// No chrome.*, no fetch, no timers: the caller passes the time (`now`, ms) and does the I/O
// (background.js). Loaded as a classic script by the service worker (importScripts), by the
// extension's pages (<script>) and by the tests (tests/browser/test_extension_decide_js.py).
'use strict';

(function (root) {
  const DEFAULTS = Object.freeze({
    node: 'http://127.0.0.1:8080',  // the gateway of the local node (peerweb node --gateway)
    stallSeconds: 4,                // no answer this long: ask the peers
    automatic: false,               // false: offer a button; true: show the copy at once
    report: false,                  // opt-in: tell the node which public pages were visited
    neverCache: [],                 // host names (each covers its subdomains) never reported
    retryOriginSeconds: 30,         // in a rescued page, links stay with the peers this long
  });
  const LIMITS = {stallSeconds: [1, 120], retryOriginSeconds: [0, 3600]};

  // Statuses of an origin that is overloaded or failing, not of a page that is missing:
  // 429 Too Many Requests, 502 Bad Gateway, 503 Service Unavailable, 504 Gateway Timeout,
  // 509 Bandwidth Limit Exceeded, 520-529 (CDN front ends: the origin behind them failed).
  const STATUS_TEXT = {429: 'Too Many Requests', 502: 'Bad Gateway',
                       503: 'Service Unavailable', 504: 'Gateway Timeout',
                       509: 'Bandwidth Limit Exceeded'};

  function failingStatus(status) {
    if (!Number.isInteger(status)) return null;
    if (STATUS_TEXT[status]) return `answered ${status} ${STATUS_TEXT[status]}`;
    if (status >= 520 && status <= 529) return `answered ${status} (the site behind its CDN failed)`;
    return null;
  }

  // Network errors that say the origin could not be reached, as Chromium (net::ERR_*) and
  // Firefox (NS_ERROR_*) name them. Not ERR_ABORTED (the user or the extension moved on), not
  // certificate errors (a copy must not become a way around a failed TLS check), not
  // ERR_INTERNET_DISCONNECTED (this machine is offline: its peers are too).
  const NETWORK_ERRORS = {
    'net::ERR_CONNECTION_REFUSED': 'refused the connection',
    'net::ERR_CONNECTION_RESET': 'reset the connection',
    'net::ERR_CONNECTION_CLOSED': 'closed the connection',
    'net::ERR_EMPTY_RESPONSE': 'closed the connection without answering',
    'net::ERR_CONNECTION_TIMED_OUT': 'did not answer (timed out)',
    'net::ERR_TIMED_OUT': 'did not answer (timed out)',
    'net::ERR_CONNECTION_FAILED': 'could not be reached',
    'net::ERR_ADDRESS_UNREACHABLE': 'could not be reached',
    'net::ERR_NAME_NOT_RESOLVED': 'has no address (DNS failure)',
    'net::ERR_NAME_RESOLUTION_FAILED': 'has no address (DNS failure)',
    'NS_ERROR_CONNECTION_REFUSED': 'refused the connection',
    'NS_ERROR_NET_RESET': 'reset the connection',
    'NS_ERROR_NET_INTERRUPT': 'closed the connection',
    'NS_ERROR_NET_TIMEOUT': 'did not answer (timed out)',
    'NS_ERROR_UNKNOWN_HOST': 'has no address (DNS failure)',
  };

  function failingError(error) {
    return Object.prototype.hasOwnProperty.call(NETWORK_ERRORS, error)
      ? NETWORK_ERRORS[error] : null;
  }

  function number(value, [low, high], fallback) {
    return typeof value === 'number' && Number.isFinite(value) && value >= low && value <= high
      ? value : fallback;
  }

  function nodeAddress(text) {
    try {
      const url = new URL(String(text).trim());
      if ((url.protocol === 'http:' || url.protocol === 'https:') && !url.username
          && !url.password) return url.origin;
    } catch (_e) { /* not a URL */ }
    return null;
  }

  function hostList(value) {
    const items = Array.isArray(value) ? value : String(value || '').split(/[\s,]+/);
    return [...new Set(items.map((h) => String(h).trim().toLowerCase().replace(/^\*?\./, ''))
      .filter((h) => /^[a-z0-9.-]+$/.test(h) && h.includes('.') || /^[a-z0-9-]+$/.test(h)))];
  }

  // The settings stored, checked: anything missing or nonsensical takes its default.
  function settings(stored) {
    const s = stored && typeof stored === 'object' ? stored : {};
    return {
      node: nodeAddress(s.node) || DEFAULTS.node,
      stallSeconds: number(s.stallSeconds, LIMITS.stallSeconds, DEFAULTS.stallSeconds),
      automatic: s.automatic === true,
      report: s.report === true,
      neverCache: hostList(s.neverCache),
      retryOriginSeconds: number(s.retryOriginSeconds, LIMITS.retryOriginSeconds,
                                 DEFAULTS.retryOriginSeconds),
    };
  }

  function parse(url) {
    try { return new URL(url); } catch (_e) { return null; }
  }

  function isLocalHost(host) {
    const h = host.replace(/^\[|\]$/g, '').toLowerCase();
    if (h === 'localhost' || h.endsWith('.localhost')) return true;
    if (/^(127|10|0)\./.test(h) || /^192\.168\./.test(h) || /^169\.254\./.test(h)) return true;
    if (/^172\.(1[6-9]|2\d|3[01])\./.test(h) || /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./.test(h)) {
      return true;
    }
    return h === '::1' || h === '::' || /^f[cd][0-9a-f]{2}:/.test(h) || /^fe80:/.test(h);
  }

  // A page the node can be asked about: http(s), not the node itself nor one of its views.
  function watched(url, s) {
    const u = parse(url);
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) return false;
    if (u.origin === s.node || isView(url, s)) return false;
    return true;
  }

  // The node's pages: a rescued copy (<label>.web.localhost) or a signed site
  // (<site-id>.localhost), on the node's port.
  function isView(url, s) {
    const u = parse(url);
    const node = parse(s.node);
    if (!u || !node || u.protocol !== 'http:') return false;
    const port = (p, proto) => p || (proto === 'https:' ? '443' : '80');
    return u.hostname.endsWith('.localhost') && port(u.port, u.protocol) === port(node.port, node.protocol);
  }

  const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

  function base32Decode(text) {
    let bits = 0;
    let value = 0;
    let out = '';
    for (const c of text) {
      const i = BASE32.indexOf(c);
      if (i < 0) return null;
      value = (value << 5) | i;
      bits += 5;
      if (bits >= 8) {
        bits -= 8;
        out += String.fromCharCode((value >> bits) & 0xff);
      }
    }
    return out;
  }

  // The original URL of a page in a rescued view: the view's host is the base32 of the origin
  // (scheme://host:port) split in DNS labels, then .web.localhost; the path is the original's.
  function originalOf(viewUrl, s) {
    const u = parse(viewUrl);
    if (!u || !isView(viewUrl, s) || !u.hostname.endsWith('.web.localhost')) return null;
    const label = u.hostname.slice(0, -'.web.localhost'.length).split('.').join('');
    const origin = parse(base32Decode(label) || '');
    if (!origin || (origin.protocol !== 'http:' && origin.protocol !== 'https:')) return null;
    return origin.origin + u.pathname + u.search + u.hash;
  }

  function originOf(url) {
    const u = parse(url);
    return u ? u.origin : null;
  }

  // May this visit be told to the node (which then fetches the page itself, without the
  // browser's cookies, and keeps it only if a shared cache may)? Only when the user opted in,
  // never from a private window, only a public http(s) page that answered 200 to a GET, with
  // no credentials in its URL and no query (a query often carries a session or a one-time
  // token, and fetching it again could act on it), and not on the never-cache list.
  function reportable(visit, s) {
    if (!s.report || visit.incognito !== false) return false;
    if (visit.status !== 200 || (visit.method || 'GET') !== 'GET') return false;
    const u = parse(visit.url);
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) return false;
    if (u.username || u.password || u.search || !watched(visit.url, s)) return false;
    const host = u.hostname.toLowerCase();
    if (isLocalHost(host) || !host.includes('.')) return false;
    return !s.neverCache.some((h) => host === h || host.endsWith('.' + h));
  }

  function withoutFragment(url) {
    const u = parse(url);
    if (!u) return url;
    u.hash = '';
    return u.href;
  }

  // What to do with an answer from the node's lookup, for a navigation that failed.
  //   {act: 'view', url}: show the copy now (automatic mode);
  //   {act: 'offer', url, ...}: put the rescue page with its button in the tab;
  //   {act: 'none', why}: leave the tab as it is.
  function onLookup(answer, failure, s) {
    if (!answer || answer.found !== true) {
      return {act: 'none', why: (answer && answer.reason) || 'no peer holds a copy'};
    }
    if (typeof answer.view !== 'string' || !isView(answer.view, s)) {
      return {act: 'none', why: 'the node answered a view that is not its own'};
    }
    if (s.automatic) return {act: 'view', url: answer.view};
    return {act: 'offer', url: answer.view, holders: answer.holders | 0,
            agreeing: answer.agreeing | 0, fetchedAt: answer.fetched_at,
            signed: answer.signed === true, failure};
  }

  // The navigations of each tab's top frame, from first request to answer. Each event method
  // returns what the caller must do: null (nothing) or {act: 'lookup', tab, url, failure,
  // kind}. Stall timers are one deadline per tab; `timer()` says when to call `handleTimer`.
  class Navigations {
    constructor(s) {
      this.s = s;
      this.tabs = new Map();     // tab -> {url, deadline, state: waiting|answered|asking}
      this.patient = new Set();  // URLs the user chose to wait for: no stall timer, once
    }

    // A top-frame request starts (GET only: a copy of a page is no answer to a form sent).
    begin(tab, url, method, now) {
      if ((method || 'GET') !== 'GET' || !watched(url, this.s)) {
        this.tabs.delete(tab);
        return null;
      }
      const waits = !this.patient.delete(withoutFragment(url));
      this.tabs.set(tab, {url, state: 'waiting',
                          deadline: waits ? now + this.s.stallSeconds * 1000 : null});
      return null;
    }

    // The origin redirected: the stall clock starts again for the new address.
    redirected(tab, url, now) {
      const nav = this.tabs.get(tab);
      if (!nav || nav.state !== 'waiting') return null;
      if (!watched(url, this.s)) {
        this.tabs.delete(tab);
        return null;
      }
      nav.url = url;
      if (nav.deadline !== null) nav.deadline = now + this.s.stallSeconds * 1000;
      return null;
    }

    // Response headers of a top-frame request: an overloaded origin, or an answer.
    headers(tab, url, status, _now) {
      const nav = this.tabs.get(tab);
      if (!nav || nav.state !== 'waiting') return null;
      if (status >= 300 && status < 400) return null;  // a redirect follows (redirected)
      const failure = failingStatus(status);
      if (failure) return this._ask(tab, nav, failure, 'status');
      nav.state = 'answered';
      nav.status = status;
      nav.deadline = null;
      return null;
    }

    // The request failed without an answer. `held`: the extension itself held it back (a
    // session rule from `holdRule`: the origin failed moments ago and peers hold its pages).
    error(tab, url, error, _now, held = false) {
      const nav = this.tabs.get(tab);
      if (!nav || nav.state !== 'waiting') return null;
      if (held && error === HELD_ERROR) {
        return this._ask(tab, nav, 'failed moments ago (not asked again yet)', 'held');
      }
      const failure = failingError(error);
      if (!failure) {
        this.tabs.delete(tab);
        return null;
      }
      return this._ask(tab, nav, failure, 'network');
    }

    // The tab showed a document (from the network, or restored from the back-forward cache,
    // which makes no request): whatever it waited for has come.
    committed(tab, url) {
      const nav = this.tabs.get(tab);
      if (nav && nav.state === 'waiting' && withoutFragment(nav.url) !== withoutFragment(url)) {
        this.tabs.delete(tab);
      } else if (nav && nav.state === 'waiting') {
        nav.deadline = null;
      }
    }

    closed(tab) {
      this.tabs.delete(tab);
    }

    timer() {
      let first = null;
      for (const nav of this.tabs.values()) {
        if (nav.deadline !== null && (first === null || nav.deadline < first)) first = nav.deadline;
      }
      return first;
    }

    handleTimer(now) {
      const due = [];
      for (const [tab, nav] of this.tabs) {
        if (nav.deadline !== null && nav.deadline <= now) {
          due.push(this._ask(tab, nav, `did not answer within ${this.s.stallSeconds} s`, 'stall'));
        }
      }
      return due;
    }

    // The node answered a lookup: still wanted only if the tab still waits for that page.
    answered(tab, url, answer) {
      const nav = this.tabs.get(tab);
      if (!nav || nav.state !== 'asking' || nav.url !== url) {
        return {act: 'none', why: 'the tab moved on'};
      }
      this.tabs.delete(tab);
      return onLookup(answer, nav.failure, this.s);
    }

    // The user chose to wait for (or try again) the original: no stall timer next time.
    wait(url) {
      this.patient.add(withoutFragment(url));
    }

    _ask(tab, nav, failure, kind) {
      nav.state = 'asking';
      nav.deadline = null;
      nav.failure = {kind, text: failure};
      return {act: 'lookup', tab, url: nav.url, failure: nav.failure};
    }
  }

  // Origins seen failing, and since when: so that a link followed inside a rescued page goes
  // back to the origin once it may have recovered. Plain data ({origin: lastFailureMs}) so the
  // caller can keep it across service-worker restarts.
  function noteFailure(outages, url, now) {
    const origin = originOf(url);
    return origin ? {...outages, [origin]: now} : outages;
  }

  function noteAnswer(outages, url) {
    const origin = originOf(url);
    if (!origin || !(origin in outages)) return outages;
    const rest = {...outages};
    delete rest[origin];
    return rest;
  }

  // A navigation inside a rescued view that the extension did not start (a link, a reload):
  // {act: 'origin', url} sends it to the original site, which failed long enough ago to be
  // tried again (or never failed, as far as this browser knows, or has no copy of that page:
  // `status` 404); {act: 'stay'} keeps it with the peers.
  function inView(viewUrl, outages, now, s, status) {
    const original = originalOf(viewUrl, s);
    if (!original) return {act: 'stay'};
    if (status === 404) return {act: 'origin', url: original};
    const failed = outages[originOf(original)];
    if (failed === undefined || now - failed >= s.retryOriginSeconds * 1000) {
      return {act: 'origin', url: original};
    }
    return {act: 'stay'};
  }

  // While an origin that failed has a copy at the peers, the extension holds back new
  // navigations to it for `retryOriginSeconds` (a declarativeNetRequest session rule that
  // blocks them; the blocked navigation then fails with HELD_ERROR and goes to the peers).
  // Without it every visitor's every navigation knocks on the failing origin once more, and
  // a crowd keeps it down. Navigations started from a rescued view (its "try the original"
  // link, a link to another site) are not held: their initiator is a *.localhost view.
  const HELD_ERROR = 'net::ERR_BLOCKED_BY_CLIENT';

  // The session rule holding back navigations to `url`'s origin (null: none to make).
  function holdRule(url, id, s) {
    const u = parse(url);
    if (!u || !watched(url, s) || s.retryOriginSeconds <= 0 || !Number.isInteger(id)
        || id < 1) return null;
    return {id, priority: 1, action: {type: 'block'},
            condition: {urlFilter: `|${u.origin}/`, resourceTypes: ['main_frame'],
                        requestMethods: ['get'], excludedInitiatorDomains: ['localhost']}};
  }

  // Holds (plain data, {origin: {id, until}}) after a rescue of `url` at `now`: the origin's
  // rule id (reused if it has one) and when it ends; and which rules to drop because they
  // ended. Returns {holds, add (a rule or null), remove (ids)}.
  function hold(holds, url, now, s) {
    const origin = originOf(url);
    const {live, remove} = expireHolds(holds, now);
    if (!origin || s.retryOriginSeconds <= 0) return {holds: live, add: null, remove};
    const used = new Set(Object.values(live).map((h) => h.id));
    let id = live[origin] ? live[origin].id : 1;
    while (!live[origin] && used.has(id)) id += 1;
    const rule = holdRule(url, id, s);
    if (!rule) return {holds: live, add: null, remove};
    const until = now + s.retryOriginSeconds * 1000;
    return {holds: {...live, [origin]: {id, until}}, add: rule,
            remove: [...remove, ...(live[origin] ? [id] : [])]};
  }

  // Holds that ended by `now`, and the rest.
  function expireHolds(holds, now) {
    const live = {};
    const remove = [];
    for (const [origin, h] of Object.entries(holds || {})) {
      if (h && Number.isInteger(h.id) && h.until > now) live[origin] = h;
      else if (h && Number.isInteger(h.id)) remove.push(h.id);
    }
    return {live, remove};
  }

  // Whether a rule holds back navigations to `url` (until expireHolds removes it).
  function isHeld(holds, url) {
    return Boolean((holds || {})[originOf(url)]);
  }

  // The user asked for the original (or it answered): its hold ends. {holds, remove}.
  function release(holds, url) {
    const origin = originOf(url);
    if (!origin || !(holds || {})[origin]) return {holds: holds || {}, remove: []};
    const rest = {...holds};
    delete rest[origin];
    return {holds: rest, remove: [holds[origin].id]};
  }

  // What the toolbar badge says about the node: nothing when all is well.
  function badge(status) {
    if (status.state === 'down') return {text: 'off', title: `peerweb: no node answers at ${status.node}`};
    if (status.state === 'unpaired') return {text: 'pair', title: 'peerweb: not paired with the node'};
    if (status.state === 'ok') return {text: '', title: 'peerweb: the node answers'};
    return {text: '?', title: `peerweb: the node answered oddly (${status.detail || 'unknown'})`};
  }

  // The node's answer to /_ext/status, or how asking failed, as one state.
  function nodeState(node, result) {
    if (result.error) return {state: 'down', node, detail: result.error};
    if (result.status === 401 || result.status === 403) return {state: 'unpaired', node};
    if (result.status === 200 && result.body && result.body.ok === true) {
      return {state: 'ok', node, webCache: result.body.web_cache || null};
    }
    return {state: 'odd', node, detail: `HTTP ${result.status}`};
  }

  root.peerwebExtension = {
    DEFAULTS, settings, failingStatus, failingError, watched, isView, originalOf, reportable,
    onLookup, Navigations, noteFailure, noteAnswer, inView, badge, nodeState, base32Decode,
    HELD_ERROR, holdRule, hold, expireHolds, isHeld, release,
  };
})(typeof self !== 'undefined' ? self : globalThis);
