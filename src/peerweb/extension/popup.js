// The popup and options page: the node's state, pairing, and the settings (stored in
// chrome.storage.local; decide.js checks them). Everything that talks to the node goes
// through the service worker.
'use strict';

const X = self.peerwebExtension;
const $ = (id) => document.getElementById(id);

function describe(status) {
  if (status.state === 'down') {
    return `No peerweb node answers at ${status.node}. Start one with ` +
      '`peerweb node --web-cache 200MB` (or set its address below); until then this ' +
      'extension does nothing.';
  }
  if (status.state === 'unpaired') {
    return `The node at ${status.node} answers, but this browser is not paired with it: run ` +
      '`peerweb extension pair` and paste the code below.';
  }
  if (status.state === 'ok') {
    const cache = status.webCache;
    const kept = cache && cache.enabled
      ? `its web cache holds ${cache.entries} pages (${Math.round(cache.used / 1e6)} of ` +
        `${Math.round(cache.size / 1e6)} MB).`
      : 'its web cache is off (start it with `--web-cache SIZE` to keep pages for others); ' +
        'pages can still be rescued from peers.';
    return `Paired with the node at ${status.node}; ${kept}`;
  }
  return `The node at ${status.node} answered oddly (${status.detail || 'unknown'}); is it a ` +
    'peerweb node of this version?';
}

function show(status) {
  const el = $('state');
  el.textContent = describe(status);
  el.className = `state ${status.state}`;
  el.dataset.state = status.state;
}

async function ask(message) {
  return chrome.runtime.sendMessage(message);
}

async function fill() {
  const s = X.settings((await chrome.storage.local.get('settings')).settings);
  $('node').value = s.node;
  $('stall').value = String(s.stallSeconds);
  $('automatic').checked = s.automatic;
  $('report').checked = s.report;
  $('never').value = s.neverCache.join('\n');
  $('retry').value = String(s.retryOriginSeconds);
}

$('pairing').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('pair-result').textContent = 'Pairing…';
  const answer = await ask({type: 'pair', code: $('code').value});
  $('pair-result').textContent = answer.ok ? 'Paired.' : answer.error;
  if (answer.ok) { $('code').value = ''; show(answer.status); }
});

$('unpair').addEventListener('click', async () => {
  const answer = await ask({type: 'unpair'});
  $('pair-result').textContent = 'Forgotten: pair again to use the node.';
  show(answer.status);
});

$('options').addEventListener('submit', async (event) => {
  event.preventDefault();
  const given = {
    node: $('node').value, stallSeconds: Number($('stall').value),
    automatic: $('automatic').checked, report: $('report').checked,
    neverCache: $('never').value, retryOriginSeconds: Number($('retry').value)};
  const s = X.settings(given);
  const refused = [];
  if (s.node !== given.node.trim().replace(/\/$/, '')) refused.push('the node address');
  if (s.stallSeconds !== given.stallSeconds) refused.push('the seconds before asking (1-120)');
  if (s.retryOriginSeconds !== given.retryOriginSeconds) refused.push('the retry (0-3600 s)');
  await chrome.storage.local.set({settings: s});
  await fill();
  $('saved').textContent = refused.length
    ? `Saved, but ${refused.join(', ')} made no sense: the default is used.` : 'Saved.';
  show(await ask({type: 'status'}));
});

fill().then(() => ask({type: 'status'})).then(show);
