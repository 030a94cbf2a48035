// The service worker: watches top-frame navigations (webRequest, webNavigation), asks the
// local node (its /_ext/ API, with the token from pairing) when one fails, and puts the
// answer in the tab. What counts as a failure and what to do is decided in decide.js; this
// file only turns browser events into its calls and its answers into browser actions.
'use strict';

if (!self.peerwebExtension) importScripts('decide.js');  // Firefox lists it in the manifest
const X = self.peerwebExtension;

const API_TIMEOUT_MS = 3000;     // the node is on this machine: a slower answer is none
const LOOKUP_TIMEOUT_MS = 8000;  // a lookup asks the DHT and holders (the node: ~1.5 s)
const TRACE_LENGTH = 200;

let S = X.settings(null);
let token = '';
let nav = new X.Navigations(S);
let outages = {};                // origin -> when it last failed (ms), kept in storage.session
let holds = {};                  // origin -> {id, until}: its navigations held back (decide.js)
let holdTimer = null;
let status = {state: 'unknown', node: S.node};
const expectedViews = new Map(); // tab -> the view URL the extension itself opens there
let stallTimer = null;

// What the extension decided, newest last: for the popup's curious and for the tests, which
// wait on it instead of sleeping.
self.peerwebTrace = [];
function trace(what, details) {
  self.peerwebTrace.push({at: Date.now(), what, ...details});
  if (self.peerwebTrace.length > TRACE_LENGTH) self.peerwebTrace.shift();
}
// A bug shows in the trace too (and the tests fail on it), not only in a console nobody reads.
self.addEventListener('error', (e) => trace('error', {text: String(e.message || e.error)}));
self.addEventListener('unhandledrejection', (e) => {
  trace('error', {text: String((e.reason && e.reason.stack) || e.reason)});
});

async function load() {
  const stored = await chrome.storage.local.get(['settings', 'token']);
  S = X.settings(stored.settings);
  token = typeof stored.token === 'string' ? stored.token : '';
  nav.s = S;
  try {
    const session = await chrome.storage.session.get(['outages', 'holds']);
    outages = session.outages || {};
    holds = session.holds || {};
  } catch (_e) {
    outages = {};  // no session storage (older browsers): outages live as long as the worker
  }
  await expire();
}
const ready = load().then(refreshStatus);

async function saveOutages(next) {
  outages = next;
  try { await chrome.storage.session.set({outages}); } catch (_e) { /* see load() */ }
}

// Session rules that hold back navigations to an origin that failed (decide.js hold()).
async function applyHolds(next, add, remove) {
  holds = next;
  try { await chrome.storage.session.set({holds}); } catch (_e) { /* see load() */ }
  try {
    await chrome.declarativeNetRequest.updateSessionRules({
      removeRuleIds: remove, addRules: add ? [add] : []});
  } catch (e) {
    trace('error', {text: `holding back navigations: ${e.message}`});
  }
  armHoldTimer();
}

async function expire() {
  const {live, remove} = X.expireHolds(holds, Date.now());
  if (remove.length) await applyHolds(live, null, remove);
  else armHoldTimer();
}

function armHoldTimer() {
  if (holdTimer !== null) clearTimeout(holdTimer);
  holdTimer = null;
  const ends = Object.values(holds).map((h) => h.until);
  if (!ends.length) return;
  const first = Math.min(...ends);
  holdTimer = setTimeout(() => { holdTimer = null; expire(); }, Math.max(0, first - Date.now()));
  // A stopped service worker loses its timers: an alarm wakes it (and load() expires too).
  chrome.alarms.create('holds', {when: first + 100});
}

async function releaseHold(url) {
  const {holds: next, remove} = X.release(holds, url);
  if (remove.length) await applyHolds(next, null, remove);
}

async function call(method, path, body, timeout = API_TIMEOUT_MS) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    const response = await fetch(`${S.node}/_ext${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit', cache: 'no-store', signal: AbortSignal.timeout(timeout)});
    let json = null;
    try { json = await response.json(); } catch (_e) { /* not JSON */ }
    return {status: response.status, body: json};
  } catch (e) {
    return {error: (e && e.message) || String(e)};
  }
}

async function showStatus(next) {
  status = next;
  const b = X.badge(status);
  await chrome.action.setBadgeText({text: b.text});
  await chrome.action.setTitle({title: b.title});
  if (b.text) await chrome.action.setBadgeBackgroundColor({color: '#777'});
}

async function refreshStatus() {
  const next = X.nodeState(S.node, await call('GET', '/status'));
  if (next.state === 'ok' && !token) next.state = 'unpaired';
  if (next.state !== status.state) trace('node', {state: next.state, detail: next.detail});
  await showStatus(next);
  return status;
}

function armTimer() {
  if (stallTimer !== null) clearTimeout(stallTimer);
  stallTimer = null;
  const due = nav.timer();
  if (due === null) return;
  stallTimer = setTimeout(() => {
    stallTimer = null;
    for (const asked of nav.handleTimer(Date.now())) rescue(asked);
    armTimer();
  }, Math.max(0, due - Date.now()));
}

async function rescue(asked) {
  trace('failure', {tab: asked.tab, url: asked.url, kind: asked.failure.kind,
                    text: asked.failure.text});
  await saveOutages(X.noteFailure(outages, asked.url, Date.now()));
  if (!token) {
    trace('nothing', {tab: asked.tab, why: 'not paired with a node'});
    return;
  }
  const result = await call('GET', `/lookup?url=${encodeURIComponent(asked.url)}`, undefined,
                            LOOKUP_TIMEOUT_MS);
  if (result.error || result.status !== 200) {
    const now = X.nodeState(S.node, result);
    await showStatus(now);
    trace('nothing', {tab: asked.tab, why: `the node: ${now.state} ${now.detail || ''}`.trim()});
    return;
  }
  if (status.state !== 'ok') await refreshStatus();
  const decision = nav.answered(asked.tab, asked.url, result.body);
  trace('decision', {tab: asked.tab, url: asked.url, ...decision});
  if ((decision.act === 'view' || decision.act === 'offer') && asked.failure.kind !== 'held') {
    const next = X.hold(holds, asked.url, Date.now(), S);
    if (next.add) trace('holding', {origin: new URL(asked.url).origin});
    await applyHolds(next.holds, next.add, next.remove);
  }
  if (decision.act === 'view') {
    expectedViews.set(asked.tab, decision.url);
    await update(asked.tab, decision.url);
  } else if (decision.act === 'offer') {
    const query = new URLSearchParams({
      url: asked.url, view: decision.url, holders: String(decision.holders),
      agreeing: String(decision.agreeing), fetched: String(decision.fetchedAt ?? ''),
      signed: decision.signed ? '1' : '', kind: asked.failure.kind, why: asked.failure.text});
    await update(asked.tab, `${chrome.runtime.getURL('rescue.html')}?${query}`);
  }
}

async function update(tab, url) {
  try {
    await chrome.tabs.update(tab, {url});
  } catch (e) {
    trace('nothing', {tab, why: `the tab is gone (${e.message})`});
  }
}

async function report(details) {
  let incognito;
  try { incognito = (await chrome.tabs.get(details.tabId)).incognito; } catch (_e) { return; }
  const visit = {url: details.url, status: details.statusCode, method: details.method, incognito};
  if (!token || status.state !== 'ok' || !X.reportable(visit, S)) return;
  const url = new URL(details.url);
  url.hash = '';
  const result = await call('POST', '/seen', {url: url.href});
  trace('seen', {url: url.href, status: result.status, error: result.error});
}

// A navigation inside a rescued view that the extension did not start itself.
async function viewNavigation(tab, url, httpStatus) {
  const expected = expectedViews.get(tab);
  if (httpStatus === undefined && expected === url) {
    expectedViews.delete(tab);
    return;
  }
  if (httpStatus === undefined) expectedViews.delete(tab);
  const decision = X.inView(url, outages, Date.now(), S, httpStatus);
  if (decision.act !== 'origin' || (httpStatus !== undefined && httpStatus !== 404)) return;
  trace('back to the origin', {tab, url: decision.url});
  await releaseHold(decision.url);
  await update(tab, decision.url);
}

const MAIN = {urls: ['http://*/*', 'https://*/*'], types: ['main_frame']};

chrome.webRequest.onBeforeRequest.addListener((d) => {
  ready.then(() => {
    if (X.isView(d.url, S)) {
      nav.closed(d.tabId);
      if (d.method === 'GET') viewNavigation(d.tabId, d.url);
      return;
    }
    nav.begin(d.tabId, d.url, d.method, d.timeStamp || Date.now());
    armTimer();
  });
}, MAIN);

chrome.webRequest.onBeforeRedirect.addListener((d) => {
  ready.then(() => { nav.redirected(d.tabId, d.redirectUrl, Date.now()); armTimer(); });
}, MAIN);

chrome.webRequest.onHeadersReceived.addListener((d) => {
  ready.then(() => {
    if (X.isView(d.url, S)) {
      if (d.statusCode === 404) viewNavigation(d.tabId, d.url, 404);
      return;
    }
    const asked = nav.headers(d.tabId, d.url, d.statusCode, Date.now());
    armTimer();
    if (asked) {
      rescue(asked);
    } else if (X.watched(d.url, S) && !X.failingStatus(d.statusCode)) {
      saveOutages(X.noteAnswer(outages, d.url));
      releaseHold(d.url);
      if (d.statusCode === 200) report(d);
    }
  });
}, MAIN);

chrome.webRequest.onErrorOccurred.addListener((d) => {
  ready.then(() => {
    const asked = nav.error(d.tabId, d.url, d.error, Date.now(), X.isHeld(holds, d.url));
    armTimer();
    if (asked) rescue(asked);
  });
}, MAIN);

chrome.webNavigation.onCommitted.addListener((d) => {
  if (d.frameId !== 0) return;
  ready.then(() => { nav.committed(d.tabId, d.url); armTimer(); });
});

chrome.tabs.onRemoved.addListener((tab) => {
  nav.closed(tab);
  expectedViews.delete(tab);
  armTimer();
});

chrome.storage.onChanged.addListener((changes, area) => {
  if (area !== 'local' || !(changes.settings || changes.token)) return;
  ready.then(load).then(refreshStatus);
});

chrome.alarms.create('status', {periodInMinutes: 1});
chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === 'status') ready.then(refreshStatus);
  if (alarm.name === 'holds') ready.then(expire);
});

// The extension's own pages (popup, rescue page) ask through messages; web pages cannot
// (no externally_connectable), and the sender is checked anyway.
const HANDLERS = {
  async status() { return refreshStatus(); },
  async pair(message) {
    const code = String(message.code || '').trim();
    if (!code) return {ok: false, error: 'paste the code `peerweb extension pair` printed'};
    const result = await call('POST', '/pair', {code});
    if (result.error) {
      await refreshStatus();
      return {ok: false, error: `no peerweb node answers at ${S.node}: start one with ` +
                                '`peerweb node --web-cache 200MB`, or set its address below'};
    }
    if (result.status !== 200 || !result.body || typeof result.body.token !== 'string') {
      const why = (result.body && result.body.error) || `HTTP ${result.status}`;
      return {ok: false, error: `the node refused the code (${why}): run ` +
                                '`peerweb extension pair` again for a new one'};
    }
    token = result.body.token;
    await chrome.storage.local.set({token});
    trace('paired', {node: S.node});
    return {ok: true, status: await refreshStatus()};
  },
  async unpair() {
    token = '';
    await chrome.storage.local.remove('token');
    return {ok: true, status: await refreshStatus()};
  },
  async expectView(message, sender) {
    if (!sender.tab || !X.isView(message.url, S)) return {ok: false};
    expectedViews.set(sender.tab.id, message.url);
    return {ok: true};
  },
  async wait(message) {
    if (!X.watched(message.url, S)) return {ok: false};
    nav.wait(message.url);
    await releaseHold(message.url);  // the user asked for the original itself
    return {ok: true};
  },
};

chrome.runtime.onMessage.addListener((message, sender, respond) => {
  const handler = message && Object.prototype.hasOwnProperty.call(HANDLERS, message.type)
    ? HANDLERS[message.type] : null;
  if (sender.id !== chrome.runtime.id || !handler) return false;
  ready.then(() => handler(message, sender)).then(respond,
    (e) => respond({ok: false, error: (e && e.message) || String(e)}));
  return true;  // the answer comes asynchronously
});
