// The page the extension puts in a tab whose site failed, when peers hold a copy: what went
// wrong, the copy's standing (how many peers agreed, when it was fetched), and two buttons.
'use strict';

const X = self.peerwebExtension;
const $ = (id) => document.getElementById(id);
const q = new URLSearchParams(location.search);
const original = q.get('url') || '';
const view = q.get('view') || '';

function when(seconds) {
  const n = Number(seconds);
  if (!seconds || !Number.isFinite(n)) return 'at an unknown time';
  return `on ${new Date(n * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

async function start() {
  const s = X.settings((await chrome.storage.local.get('settings')).settings);
  let host = original;
  try { host = new URL(original).host; } catch (_e) { /* shown as given */ }
  $('title').textContent = `${host} is not answering`;
  $('why').textContent = `${original} ${q.get('why') || 'failed'}.`;
  const agreeing = Number(q.get('agreeing')) || 0;
  const holders = Number(q.get('holders')) || 0;
  $('copy').textContent = q.get('signed')
    ? 'The site publishes a signed peerweb copy of itself: every file is checked against its key.'
    : `${agreeing} of ${holders} peers asked agreed on a copy fetched ${when(q.get('fetched'))}.`;
  if (q.get('kind') === 'stall') $('try-original').textContent = 'Keep waiting for the original';
  const usable = X.isView(view, s) && X.watched(original, s);
  $('show-copy').disabled = !usable;
  $('show-copy').addEventListener('click', async () => {
    await chrome.runtime.sendMessage({type: 'expectView', url: view});
    location.replace(view);
  });
  $('try-original').disabled = !X.watched(original, s);
  $('try-original').addEventListener('click', async () => {
    await chrome.runtime.sendMessage({type: 'wait', url: original});
    location.replace(original);
  });
  document.body.dataset.ready = '1';
}

start();
