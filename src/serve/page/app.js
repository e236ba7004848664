// The upload page of `peerflash serve`: served by the daemon itself, no
// framework. Talks to the same HTTP API as curl does (docs/SERVE.md).
'use strict';
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('peerflash-token') || '';
let targets = [];
let streamAbort = null;
let busy = false;

function headers() {
  return token ? { Authorization: 'Bearer ' + token } : {};
}

function log(text) {
  const li = document.createElement('li');
  li.textContent = new Date().toLocaleTimeString() + '  ' + text;
  $('log').appendChild(li);
  li.scrollIntoView({ block: 'nearest' });
}

function setResult(text, state) {
  const r = $('result');
  r.textContent = text;
  r.className = state || '';
  r.dataset.state = state || '';
}

function current() {
  return targets.find((t) => t.name === $('target').value);
}

function showChip(t) {
  $('chip').textContent = t && t.chip ? t.chip + ' (' + t.target + ' on ' + t.port + ')'
    : t ? 'not identified yet (' + t.target + ' on ' + t.port + ')' : '-';
}

async function api(path, opts) {
  const res = await fetch(path, Object.assign({ headers: headers() }, opts || {}));
  if (res.status === 401) {
    $('token-row').hidden = false;
    $('token').focus();
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  return { status: res.status, body };
}

async function loadTargets() {
  const { status, body } = await api('/api/targets');
  if (status !== 200 || !body) {
    setResult(status === 401 ? 'This updater needs its access token.' : 'Cannot list the targets (HTTP ' + status + ').', 'error');
    return;
  }
  targets = body.targets;
  const sel = $('target');
  const keep = sel.value;
  sel.textContent = '';
  for (const t of targets) {
    const o = document.createElement('option');
    o.value = t.name;
    o.textContent = t.name + ' - ' + t.target + (t.state === 'busy' ? ' (busy)' : '');
    sel.appendChild(o);
  }
  if (keep && targets.some((t) => t.name === keep)) sel.value = keep;
  showChip(current());
  follow();
}

// Phase bars: one per phase the job reports (check, erase, write, verify, ...)
function phaseBar(phase) {
  let div = document.querySelector('.phase[data-phase="' + phase + '"]');
  if (!div) {
    div = document.createElement('div');
    div.className = 'phase';
    div.dataset.phase = phase;
    const id = 'bar-' + phase;
    div.innerHTML = '<label for="' + id + '"><span></span><span class="pct"></span></label><progress id="' + id + '" max="1" value="0"></progress>';
    div.querySelector('span').textContent = phase;
    $('phases').appendChild(div);
  }
  return div;
}

function onProgress(p) {
  const div = phaseBar(p.phase);
  const bar = div.querySelector('progress');
  bar.max = p.total || 1;
  bar.value = p.total ? p.done : 1;
  const pct = p.total ? Math.floor((100 * p.done) / p.total) : 100;
  div.querySelector('.pct').textContent = pct + '%';
  // earlier phases are complete once a later one runs
  for (const d of document.querySelectorAll('.phase')) {
    if (d === div) break;
    const b = d.querySelector('progress');
    b.value = b.max;
    d.querySelector('.pct').textContent = '100%';
  }
}

function plainResult(r) {
  if (r.ok) {
    if (r.command === 'flash') {
      let s = 'Done: wrote ' + r.written_bytes + ' bytes to the ' + (r.chip || r.target);
      if (r.skipped_bytes) s += ' (' + r.skipped_bytes + ' bytes were already there)';
      s += r.verified ? ' and verified them (' + r.verify_method + ')' : ', not verified';
      return s + ' in ' + r.seconds.toFixed(1) + ' s.';
    }
    if (r.command === 'verify') return 'The ' + (r.chip || r.target) + ' holds this image (' + r.verify_method + ').';
    if (r.command === 'run') return 'The application on the ' + (r.chip || r.target) + ' was started.';
    return 'Found ' + r.chip + ' (' + r.bootloader + ').';
  }
  let s = 'Failed: ' + r.error;
  if (r.stopped_at) s += ' (stopped in ' + r.stopped_at.phase + ' at ' + r.stopped_at.done + ' of ' + r.stopped_at.total + ' bytes)';
  return s;
}

// The target's event stream (Server-Sent Events), read with fetch so that
// the token travels in a header.
async function follow() {
  if (streamAbort) streamAbort.abort();
  const t = current();
  if (!t) return;
  const ctl = new AbortController();
  streamAbort = ctl;
  try {
    const res = await fetch('/api/targets/' + encodeURIComponent(t.name) + '/events', { headers: headers(), signal: ctl.signal });
    if (!res.ok || !res.body) return;
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let type = 'message', data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) type = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        let obj = {};
        try { obj = JSON.parse(data || '{}'); } catch (e) { continue; }
        if (type === 'progress') onProgress(obj);
        else if (type === 'log') log(obj.message);
        else if (type === 'state') $('target').options[$('target').selectedIndex].textContent =
          t.name + ' - ' + t.target + (obj.state === 'busy' ? ' (busy)' : '');
        else if (type === 'result' && obj.chip) { t.chip = obj.chip; showChip(t); }
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError') log('progress stream: ' + e.message);
  }
}

function setBusy(on) {
  busy = on;
  for (const id of ['go', 'verify', 'identify', 'target', 'file']) $(id).disabled = on;
}

async function send(action) {
  const t = current();
  const file = $('file').files[0];
  if (!t) return setResult('Choose a target first.', 'error');
  if ((action === 'flash' || action === 'verify') && !file) {
    setResult('Choose a firmware file first.', 'error');
    $('file').focus();
    return;
  }
  $('phases').textContent = '';
  setResult(action === 'info' ? 'Identifying...' : (action === 'flash' ? 'Uploading ' : 'Checking against ') + (file ? file.name : '') + '...', '');
  setBusy(true);
  const q = new URLSearchParams();
  const addr = $('address').value.trim();
  if (addr) q.set('address', addr);
  if (file) q.set('filename', file.name);
  try {
    const h = headers();
    if (file) h['Content-Type'] = 'application/octet-stream';
    const res = await fetch('/api/targets/' + encodeURIComponent(t.name) + '/' + action + (q.toString() ? '?' + q : ''),
      { method: 'POST', headers: h, body: file && action !== 'info' ? file : undefined });
    let r = null;
    try { r = await res.json(); } catch (e) { r = null; }
    if (res.status === 401) { $('token-row').hidden = false; $('token').focus(); }
    if (!r) setResult('Failed: HTTP ' + res.status + ' without a result.', 'error');
    else {
      setResult(plainResult(r), r.ok ? 'ok' : 'error');
      if (r.chip) { t.chip = r.chip; showChip(t); }
    }
  } catch (e) {
    setResult('Failed: the updater did not answer (' + e.message + ').', 'error');
  }
  setBusy(false);
}

$('form').addEventListener('submit', (e) => { e.preventDefault(); if (!busy) send('flash'); });
$('verify').addEventListener('click', () => { if (!busy) send('verify'); });
$('identify').addEventListener('click', () => { if (!busy) send('info'); });
$('target').addEventListener('change', () => { showChip(current()); follow(); });
$('file').addEventListener('change', () => {
  const f = $('file').files[0];
  $('drop-text').textContent = f ? f.name + ' (' + f.size + ' bytes)' : 'Drop a firmware file here, or choose one';
});
$('token-go').addEventListener('click', () => {
  token = $('token').value.trim();
  sessionStorage.setItem('peerflash-token', token);
  $('token-row').hidden = true;
  setResult('', '');
  loadTargets();
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer.files.length) {
    $('file').files = e.dataTransfer.files;
    $('file').dispatchEvent(new Event('change'));
  }
});
loadTargets();
