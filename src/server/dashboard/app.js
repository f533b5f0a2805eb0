// tessera dashboard: one page, no framework, no build step (docs/dashboard.md).
// Everything live comes from GET /events (server-sent events); nothing polls.
'use strict';

const state = {
  csrf: null,           // X-Tessera-CSRF for changes made with the session cookie
  jobs: new Map(),      // id -> the latest job JSON seen (API answers and events)
  lastEventId: null,    // resumes the event stream after a drop
  source: null,
  retryDelay: 1000,
  view: null,           // the page shown: {name, onJob(job), onReconnect()}
  models: null,
  // What settled() compares before and after a read (see there).
  liveCount: 0,         // times the stream became live
  moves: 0,             // events that changed a job's status or lane
  heard: new Map(),     // job id -> events heard for it
};

// ---------- small helpers ----------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
const $ = (selector, root = document) => root.querySelector(selector);
// replaceChildren would write an absent child as the text "null".
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}
const main = () => $('#main');

function toast(message) {
  const box = $('#toast');
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return seconds + ' s';
  if (seconds < 3600) return Math.floor(seconds / 60) + ' min ' + (seconds % 60) + ' s';
  return Math.floor(seconds / 3600) + ' h ' + Math.floor((seconds % 3600) / 60) + ' min';
}
function when(iso) { return iso ? new Date(iso).toLocaleString() : '—'; }
function ran(job) {
  if (!job.started_at) return null;
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  return (end - new Date(job.started_at)) / 1000;
}
function statusBadge(status) { return h('span', { class: 'status status-' + status, 'data-status': status }, status); }
function percent(progress) { return Math.round((progress || 0) * 100) + '%'; }
function jobTitle(job) {
  if (job.kind === 'generate') return job.prompt || '(no prompt)';
  return job.filename || job.id;
}
function isFinished(status) { return status === 'success' || status === 'error' || status === 'canceled'; }
// A small cached preview (GET /jobs/{id}/thumbnail), never the full image.
function thumbnail(id, of) { return '/jobs/' + encodeURIComponent(id) + '/thumbnail?of=' + of; }
function isImage(name) { return /\.(png|jpe?g|webp)$/i.test(name || ''); }

// At most one call per `ms`, the last one always made: a steady stream of
// events (which would starve a debounce) costs one refresh a second.
function throttle(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}

// ---------- the API ----------
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body, contentType) {
  const headers = {};
  if (state.csrf && method !== 'GET') headers['X-Tessera-CSRF'] = state.csrf;
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof FormData)) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  } else if (contentType) {
    headers['Content-Type'] = contentType;
  }
  const response = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  if (response.status === 401) {
    askToken();
    throw new ApiError(401, 'sign in first');
  }
  const type = response.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || response.statusText);
  return data;
}

function remember(job) {
  state.jobs.set(job.id, job);
  return job;
}

// A page reads the server once its events are live (eventsReady), then
// follows them. An event that crosses a read in flight may be older or newer
// than what the read returns: so a read crossed by a relevant event (one for
// `jobId`, or any that moved a job), or by the stream coming back, is made
// again. Bounded: a page under a storm of events keeps its last read and
// follows the events from there.
async function settled(read, jobId) {
  const mark = () => [state.liveCount, jobId ? (state.heard.get(jobId) || 0) : state.moves];
  for (let tries = 0; ; tries++) {
    const [live, heard] = mark();
    const value = await read();
    const [liveNow, heardNow] = mark();
    if ((live === liveNow && heard === heardNow) || tries >= 3) return value;
  }
}

// ---------- sign in ----------
async function startSession() {
  const session = await fetch('/session', { credentials: 'same-origin' }).then((r) => r.json());
  if (session.authenticated) {
    state.csrf = session.csrf;
    return true;
  }
  askToken();
  return false;
}

function askToken() {
  const dialog = $('#login');
  if (!dialog.open) dialog.showModal();
  $('#login-token').focus();
}

function setupLogin() {
  $('#login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('#login-token');
    const response = await fetch('/session', {
      method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: input.value }),
    });
    if (!response.ok) {
      $('#login-error').textContent = response.status === 401 ? 'Wrong token.' : 'Sign-in failed (' + response.status + ').';
      return;
    }
    const session = await response.json();
    state.csrf = session.csrf;
    input.value = '';
    $('#login-error').textContent = '';
    $('#login').close();
    startEvents();
    await eventsReady(2000);
    route();
  });
  $('#login').addEventListener('cancel', (event) => event.preventDefault());
}

// ---------- live events ----------
// One event stream per browser, not per tab: a browser keeps at most 6 HTTP/1.1
// connections per host, and each stream holds one, so a seventh dashboard tab
// would never load. The tab holding a Web Lock opens the stream and passes
// what it hears to the others on a BroadcastChannel; when it closes, another
// tab takes the lock and the stream over. (Without Web Locks, outside a secure
// context, each tab opens its own.)
const LEADER_LOCK = 'tessera-events';

function setConnection(stateName, text) {
  const pill = $('#conn');
  pill.dataset.state = stateName;
  pill.textContent = text;
}

// Whether the stream came back after a drop (pages then read again).
function becameLive(stateName, reconnected) {
  if (stateName !== 'live') return false;
  state.liveCount++;
  if (state.onLive) {
    const ready = state.onLive;
    state.onLive = null;
    ready();
  }
  return reconnected;
}

// Resolves once this tab hears events (its own stream opened, or the tab
// holding the stream says it is live), or after `ms` whatever happens (the
// server unreachable: the page shows what it can). A page read before that
// could miss what happens between its read and the stream's opening; read
// after it, only events crossing the read matter (settled).
function eventsReady(ms) {
  return new Promise((resolve) => {
    if (state.liveCount > 0) return resolve();
    state.onLive = resolve;
    setTimeout(resolve, ms);
  });
}

function connectionChanged(stateName, text, reconnected) {
  setConnection(stateName, text);
  if (becameLive(stateName, reconnected) && state.view && state.view.onReconnect) state.view.onReconnect();
  state.lastConnection = { type: 'connection', stateName, text };
  if (state.channel && state.leader) state.channel.postMessage({ ...state.lastConnection, reconnected });
}

function jobEvent(data) {
  const job = JSON.parse(data);
  const before = state.jobs.get(job.id);
  remember(job);
  // Progress alone changes no list, count or position: pages read again only
  // when a job appears or changes state (50 dashboards x every progress line
  // would otherwise be the server's main load).
  const moved = !before || before.status !== job.status || before.lane !== job.lane;
  state.heard.set(job.id, (state.heard.get(job.id) || 0) + 1);
  if (moved) state.moves++;
  if (state.view && state.view.onJob) state.view.onJob(job, moved);
}

function startEvents() {
  if (state.eventsStarted) return;
  state.eventsStarted = true;
  if (!(navigator.locks && window.BroadcastChannel)) return connect();
  state.channel = new BroadcastChannel('tessera-events');
  state.channel.onmessage = ({ data }) => {
    if (data.type === 'hello') {
      if (state.leader && state.lastConnection) state.channel.postMessage(state.lastConnection);
      return;
    }
    if (state.leader) return;
    if (data.type === 'job') {
      state.lastEventId = data.id;
      jobEvent(data.data);
    } else if (data.type === 'connection') {
      setConnection(data.stateName, data.text);
      if (becameLive(data.stateName, data.reconnected) && state.view && state.view.onReconnect) state.view.onReconnect();
    }
  };
  state.channel.postMessage({ type: 'hello' });  // the leader, if any, says how its stream is
  // Held until this tab closes: the browser then hands it to the next tab.
  navigator.locks.request(LEADER_LOCK, () => new Promise(() => {
    state.leader = true;
    connect();
  }));
}

function connect() {
  clearTimeout(connect.timer);
  if (state.source) state.source.close();
  // Reopened by hand after any error (with backoff), since a stream answered
  // with an error status is never retried by EventSource; the last event id
  // seen goes in the query so the server replays what was missed.
  const url = state.lastEventId === null ? '/events' : '/events?last_event_id=' + encodeURIComponent(state.lastEventId);
  const source = new EventSource(url);
  state.source = source;
  source.addEventListener('open', () => {
    state.retryDelay = 1000;
    // After a drop, events older than the server keeps may be gone: pages read again.
    const reconnected = state.down === true;
    state.down = false;
    connectionChanged('live', 'live', reconnected);
  });
  source.addEventListener('job', (event) => {
    if (event.lastEventId) state.lastEventId = event.lastEventId;
    if (state.channel) state.channel.postMessage({ type: 'job', id: state.lastEventId, data: event.data });
    jobEvent(event.data);
  });
  source.addEventListener('error', () => {
    if (state.source !== source) return;
    source.close();
    state.down = true;
    connectionChanged('disconnected', 'disconnected — reconnecting…', false);
    connect.timer = setTimeout(connect, state.retryDelay);
    state.retryDelay = Math.min(state.retryDelay * 2, 10000);
  });
}

// ---------- pages ----------
const pages = {};

function route() {
  const hash = location.hash || '#/';
  const [, name = '', arg] = hash.split('/');
  const page = {
    '': 'queue', jobs: 'jobs', job: 'job', upscale: 'upscale', batches: 'batches', batch: 'batch', generate: 'generate',
  }[name] || 'queue';
  for (const link of document.querySelectorAll('nav a')) {
    const current = link.dataset.page === page || (page === 'job' && link.dataset.page === 'jobs') ||
      (page === 'batch' && link.dataset.page === 'batches');
    if (current) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
  const root = main();
  root.replaceChildren();
  state.view = { name: page };
  pages[page](root, arg ? decodeURIComponent(arg) : null, state.view).catch((error) => {
    if (error.status !== 401) root.append(h('p', { class: 'error', role: 'alert' }, String(error.message || error)));
  });
}

function progressCell(job) {
  const bar = h('progress', { max: '100', value: String(Math.round((job.progress || 0) * 100)),
    'aria-label': 'progress of ' + jobTitle(job) });
  const eta = job.eta_seconds !== null && job.eta_seconds !== undefined && !isFinished(job.status)
    ? 'ETA ' + duration(job.eta_seconds) + (job.eta_source ? ' (' + job.eta_source + ')' : '') : '';
  return h('div', { class: 'progress-cell' }, bar, h('small', { class: 'muted' }, percent(job.progress), eta ? ' · ' + eta : ''));
}

// Queue and lanes. The head of the FIFO only: a queue of 10 000 costs one page.
const QUEUE_SHOWN = 100;
pages.queue = async (root, _arg, view) => {
  root.append(h('h1', {}, 'Queue and lanes'));
  const countsList = h('ul', { class: 'counts', 'aria-label': 'jobs by status' });
  const lanesGrid = h('div', { class: 'grid', id: 'lanes' });
  const queueBody = h('tbody');
  root.append(countsList, h('h2', {}, 'Lanes'), lanesGrid, h('h2', {}, 'Queue (first in, first out)'),
    h('div', { class: 'table-wrap' }, h('table', { id: 'queue' },
      h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'job'), h('th', {}, 'status'), h('th', { class: 'hide-narrow' }, 'lane'),
        h('th', { class: 'hide-narrow' }, 'kind'), h('th', {}, 'progress'))), queueBody)));
  let queue = [];

  const drawCounts = (counts) => {
    countsList.replaceChildren(...['queued', 'running', 'success', 'error', 'canceled'].map((status) =>
      h('li', { 'data-count': status }, h('b', {}, String(counts[status] || 0)), status)));
  };
  const drawLanes = (lanes) => {
    lanesGrid.replaceChildren(...lanes.map((lane) => {
      const job = lane.running_job ? state.jobs.get(lane.running_job) : null;
      return h('section', { class: 'card lane', 'data-lane': lane.name, 'aria-label': 'lane ' + lane.name },
        h('h3', {}, lane.name, lane.device !== lane.name ? h('span', { class: 'muted' }, ' ' + lane.device) : null),
        h('p', {}, 'state: ', h('b', { class: 'lane-state' }, lane.state), ' · backlog ', String(lane.queued),
          ' · busy ', duration(lane.busy_seconds)),
        lane.model_memory_mb !== null ? h('p', { class: 'muted' }, 'models in memory: ' + lane.model_memory_mb.toFixed(0) + ' MB') : null,
        lane.vram_mb != null ? h('p', { class: 'muted' }, 'GPU memory held: ' + lane.vram_mb.toFixed(0) + ' MB') : null,
        job ? h('div', {}, h('a', { href: '#/job/' + job.id }, jobTitle(job)), progressCell(job))
          : lane.running_job ? h('a', { href: '#/job/' + lane.running_job }, lane.running_job) : h('p', { class: 'muted' }, 'idle'));
    }));
  };
  let shownCounts = {};
  const drawQueue = () => {
    const counts = shownCounts;
    queue.sort((a, b) => (a.lane || '').localeCompare(b.lane || '') || (a.queue_position || 0) - (b.queue_position || 0));
    queueBody.replaceChildren(...queue.map((job) => h('tr', { 'data-job': job.id },
      h('td', {}, job.queue_position ? String(job.queue_position) : '—'),
      h('td', {}, h('a', { href: '#/job/' + job.id }, jobTitle(job))),
      h('td', {}, statusBadge(job.status)), h('td', { class: 'hide-narrow' }, job.lane || '—'),
      h('td', { class: 'hide-narrow' }, job.kind), h('td', {}, progressCell(job)))));
    if (!queue.length) queueBody.append(h('tr', {}, h('td', { colspan: '6', class: 'muted' }, 'Nothing queued.')));
    const waiting = (counts.queued || 0) + (counts.running || 0);
    if (waiting > queue.length) {
      queueBody.append(h('tr', {}, h('td', { colspan: '6', class: 'muted', id: 'queue-more' },
        `… and ${waiting - queue.length} more (the first ${queue.length} shown; all of them under Jobs)`)));
    }
  };
  let lanes = [];
  const load = async () => {
    const [counts, lanesAnswer, page] = await settled(() => Promise.all([api('GET', '/jobs/counts'), api('GET', '/lanes'),
      api('GET', '/jobs?status=running,queued&order=oldest&limit=' + QUEUE_SHOWN)]));
    page.jobs.forEach(remember);
    for (const lane of lanesAnswer.lanes) {
      if (lane.running_job && !state.jobs.has(lane.running_job)) remember(await api('GET', '/status/' + lane.running_job));
    }
    lanes = lanesAnswer.lanes;
    queue = page.jobs;
    shownCounts = counts;
    drawCounts(counts);
    drawLanes(lanes);
    drawQueue();
  };
  const refresh = throttle(() => { if (state.view === view) load().catch(() => {}); }, 1000);
  view.onJob = (job, moved) => {
    const at = queue.findIndex((j) => j.id === job.id);
    if (isFinished(job.status)) { if (at >= 0) queue.splice(at, 1); } else if (at >= 0) queue[at] = job; else queue.push(job);
    drawQueue();
    drawLanes(lanes);
    if (moved) refresh();  // counts, lanes and positions move when a job changes state
  };
  view.onReconnect = refresh;
  await load();
};

// Jobs list: searchable, cursor-paged.
pages.jobs = async (root, _arg, view) => {
  root.append(h('h1', {}, 'Jobs'));
  const q = h('input', { id: 'f-q', type: 'search', placeholder: 'id, prompt or file name' });
  const status = h('select', { id: 'f-status' }, ['', 'queued', 'running', 'success', 'error', 'canceled']
    .map((s) => h('option', { value: s }, s || 'any')));
  const kind = h('select', { id: 'f-kind' }, ['', 'generate', 'upscale', 'video', 'video_segment'].map((s) => h('option', { value: s }, s || 'any')));
  const form = h('form', { class: 'filters', role: 'search' },
    h('div', {}, h('label', { for: 'f-q' }, 'Search'), q),
    h('div', {}, h('label', { for: 'f-status' }, 'Status'), status),
    h('div', {}, h('label', { for: 'f-kind' }, 'Kind'), kind),
    h('button', { type: 'submit' }, 'Search'));
  const body = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const selectedActions = h('div', { class: 'actions' },
    h('button', { type: 'button', class: 'secondary', onclick: () => bulk('cancel') }, 'Cancel selected'),
    h('button', { type: 'button', class: 'danger', onclick: () => bulk('delete') }, 'Delete selected'));
  root.append(form, selectedActions, h('div', { class: 'table-wrap' }, h('table', { id: 'jobs' },
    h('thead', {}, h('tr', {}, h('th', {}, h('span', { class: 'visually-hidden' }, 'select')), h('th', {}, 'job'),
      h('th', {}, 'status'), h('th', { class: 'hide-narrow' }, 'kind'), h('th', { class: 'hide-narrow' }, 'lane'),
      h('th', { class: 'hide-narrow' }, 'attempts'), h('th', { class: 'hide-narrow' }, 'created'),
      h('th', {}, 'duration'), h('th', {}, 'progress'))), body)), more);
  let cursor = null;
  // Kept apart from the rows: a live update redraws a row, never a selection.
  const selected = new Set();
  const box = (job) => {
    const input = h('input', { type: 'checkbox', value: job.id, checked: selected.has(job.id), 'aria-label': 'select ' + jobTitle(job) });
    input.addEventListener('change', () => { if (input.checked) selected.add(job.id); else selected.delete(job.id); });
    return input;
  };
  const row = (job) => h('tr', { 'data-job': job.id },
    h('td', {}, box(job)),
    h('td', {}, h('a', { href: '#/job/' + job.id }, jobTitle(job))),
    h('td', {}, statusBadge(job.status)), h('td', { class: 'hide-narrow' }, job.kind),
    h('td', { class: 'hide-narrow' }, job.lane || '—'), h('td', { class: 'hide-narrow' }, String(job.attempts)),
    h('td', { class: 'hide-narrow' }, when(job.created_at)), h('td', {}, duration(ran(job))), h('td', {}, progressCell(job)));
  const query = () => {
    const params = new URLSearchParams({ limit: '50' });
    if (q.value) params.set('q', q.value);
    if (status.value) params.set('status', status.value);
    if (kind.value) params.set('kind', kind.value);
    if (cursor) params.set('cursor', cursor);
    return '/jobs?' + params;
  };
  const load = async (append) => {
    if (!append) cursor = null;
    const page = append ? await api('GET', query()) : await settled(() => api('GET', query()));
    page.jobs.forEach(remember);
    if (!append) body.replaceChildren();
    body.append(...page.jobs.map(row));
    if (!append && !page.jobs.length) body.append(h('tr', {}, h('td', { colspan: '9', class: 'muted' }, 'No job matches.')));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  async function bulk(action) {
    const ids = [...selected];
    if (!ids.length) return toast('Select jobs first.');
    const path = '/jobs?ids=' + ids.map(encodeURIComponent).join(',') + (action === 'delete' ? '&delete_files=true' : '');
    // DELETE cancels live jobs and deletes finished ones: "cancel" sends only the live ones.
    const live = ids.filter((id) => !isFinished((state.jobs.get(id) || {}).status));
    if (action === 'cancel' && !live.length) return toast('None of the selected jobs is queued or running.');
    const answer = await api('DELETE', action === 'cancel' ? '/jobs?ids=' + live.map(encodeURIComponent).join(',') : path);
    toast(`${answer.canceled.length} canceled, ${answer.deleted.length} deleted`);
    selected.clear();
    await load(false);
  }
  form.addEventListener('submit', (event) => { event.preventDefault(); load(false); });
  more.addEventListener('click', () => load(true));
  view.onJob = (job) => {
    const existing = body.querySelector(`tr[data-job="${CSS.escape(job.id)}"]`);
    if (existing) existing.replaceWith(row(job));
    else if (!q.value && !kind.value && (!status.value || status.value === job.status) && job.status === 'queued') {
      body.prepend(row(job));
    }
  };
  view.onReconnect = () => load(false);
  await load(false);
};

// One job: parameters, error, log tail, result; cancel, retry, delete.
pages.job = async (root, id, view) => {
  const read = () => settled(() => api('GET', '/status/' + encodeURIComponent(id)), id).then(remember);
  let job = await read();
  const head = h('div');
  const logBox = h('pre', { class: 'log', id: 'log', tabindex: '0', 'aria-label': 'log tail' });
  const result = h('div', { id: 'result' });
  const hooks = h('div', { id: 'webhooks' });
  root.append(head, h('h2', {}, 'Result'), result, h('h2', {}, 'Log (last 16 KiB)'), logBox, hooks);
  let shownResult = null;
  const draw = () => {
    const actions = h('div', { class: 'actions' },
      !isFinished(job.status) ? h('button', { type: 'button', class: 'danger', id: 'cancel', onclick: cancel }, 'Cancel') : null,
      (job.status === 'error' || job.status === 'canceled') && !job.batch_id
        ? h('button', { type: 'button', id: 'retry', onclick: retry }, 'Retry') : null,
      job.batch_id ? h('a', { class: 'button secondary', href: '#/batch/' + job.batch_id }, 'Its batch') : null,
      isFinished(job.status) ? h('button', { type: 'button', class: 'danger', id: 'delete', onclick: remove }, 'Delete') : null);
    const props = [['id', job.id], ['kind', job.kind], ['lane', job.lane || '—'], ['attempts', String(job.attempts)],
      ['queue position', job.queue_position ? String(job.queue_position) : '—'], ['created', when(job.created_at)],
      ['started', when(job.started_at)], ['finished', when(job.finished_at)], ['duration', duration(ran(job))],
      ['parameters', JSON.stringify(job.params || {})]];
    if (job.prompt !== undefined) props.splice(2, 0, ['prompt', job.prompt]);
    fill(head, h('h1', {}, jobTitle(job)), h('p', {}, statusBadge(job.status)), progressCell(job),
      job.error ? h('p', { class: 'error', role: 'alert', id: 'job-error' }, job.error) : null, actions,
      h('dl', { class: 'props' }, props.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
    if (job.status === 'success' && job.file_url && shownResult !== job.id) {
      shownResult = job.id;
      result.replaceChildren(resultView(job));
    } else if (job.status !== 'success') {
      shownResult = null;
      result.replaceChildren(h('p', { class: 'muted' }, 'No result yet.'));
    }
  };
  const loadLog = async () => {
    try { logBox.textContent = (await api('GET', '/jobs/' + encodeURIComponent(id) + '/log')) || '(empty)'; } catch (e) { /* shown above */ }
  };
  const refreshLog = throttle(loadLog, 1000);
  // Webhook attempts (GET /jobs/{id}/webhooks): shown only when there are some.
  const loadHooks = async () => {
    const answer = await api('GET', '/jobs/' + encodeURIComponent(id) + '/webhooks');
    if (!answer.attempts.length) return fill(hooks);
    fill(hooks, h('h2', {}, 'Webhook deliveries'), h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'when'), h('th', {}, 'url'), h('th', {}, 'event'), h('th', {}, 'attempt'),
        h('th', {}, 'outcome'))),
      h('tbody', {}, answer.attempts.map((a) => h('tr', {}, h('td', {}, new Date(a.at_ms).toLocaleString()),
        h('td', { class: 'mono' }, a.url), h('td', {}, a.event), h('td', {}, String(a.attempt)),
        h('td', { class: a.delivered ? 'status-success' : 'status-error' },
          a.delivered ? 'delivered' : (a.final ? 'abandoned: ' : 'failed, will retry: ') + a.error)))))));
  };
  const refreshHooks = throttle(() => loadHooks().catch(() => {}), 1000);
  async function cancel() {
    await api('DELETE', '/jobs?ids=' + encodeURIComponent(id));
    toast('Canceled.');
  }
  async function retry() {
    const fresh = remember(await api('POST', '/jobs/' + encodeURIComponent(id) + '/retry'));
    location.hash = '#/job/' + fresh.id;
  }
  async function remove() {
    await api('DELETE', '/jobs?ids=' + encodeURIComponent(id) + '&delete_files=true');
    toast('Deleted.');
    location.hash = '#/jobs';
  }
  view.onJob = (changed) => {
    if (changed.id !== id) return;
    job = changed;
    draw();
    refreshLog();
    // Webhooks go out once a job finished; the server publishes the job again
    // after each attempt, so the list follows without polling.
    if (isFinished(job.status)) refreshHooks();
  };
  view.onReconnect = async () => { job = await read(); draw(); loadLog(); };
  draw();
  await Promise.all([loadLog(), loadHooks()]);
};

// The result: a video plays; an image sits over its original with a slider.
function resultView(job) {
  // Not /files/: a batch image's result is kept in its batch's folder.
  const url = '/jobs/' + encodeURIComponent(job.id) + '/result';
  const download = h('a', { class: 'button secondary', href: url, download: job.filename }, 'Download');
  if (!isImage(job.filename)) {
    return h('div', {}, h('video', { src: url, controls: true, preload: 'metadata', 'aria-label': 'result video' }), h('p', {}, download));
  }
  const after = h('img', { src: url, alt: 'upscaled result', class: 'after' });
  const before = h('img', { src: '/jobs/' + encodeURIComponent(job.id) + '/input', alt: 'original', class: 'before' });
  const slider = h('input', { type: 'range', min: '0', max: '100', value: '50', 'aria-label': 'before/after: share of the original shown' });
  const clip = () => { before.style.clipPath = `inset(0 ${100 - Number(slider.value)}% 0 0)`; };
  slider.addEventListener('input', clip);
  clip();
  return h('div', {}, h('div', { class: 'compare' }, after, before), slider,
    h('p', { class: 'muted' }, 'Left of the line: the original, scaled; right: the result. '), download);
}

async function loadModels() {
  if (!state.models) state.models = await api('GET', '/models');
  return state.models;
}

function modelSelect(id, models) {
  return h('select', { id, name: 'model' }, models.models.map((model) =>
    h('option', { value: model.name, selected: model.name === models.default }, model.name + ' — ' + model.description)));
}

// Upscale: drop images, pick a model, follow each, download each.
pages.upscale = async (root, _arg, view) => {
  const models = await loadModels();
  root.append(h('h1', {}, 'Upscale images'));
  const select = modelSelect('u-model', models);
  const input = h('input', { id: 'u-files', type: 'file', accept: 'image/*', multiple: true });
  const drop = h('div', { class: 'drop', id: 'drop' }, h('p', {}, 'Drop images here, or ', h('label', { for: 'u-files' }, 'choose files'), '.'), input);
  const body = h('tbody');
  root.append(h('form', { class: 'stack', onsubmit: (e) => e.preventDefault() },
    h('label', { for: 'u-model' }, 'Model'), select, drop),
    h('div', { class: 'table-wrap' }, h('table', { id: 'uploads' }, h('thead', {}, h('tr', {}, h('th', {}, 'image'),
      h('th', {}, 'status'), h('th', {}, 'progress'), h('th', {}, 'result'))), body)));
  const rows = new Map();  // job id -> row
  const draw = (job, name) => {
    const cells = [h('td', {}, name || job.filename), h('td', {}, statusBadge(job.status),
      job.error ? h('div', { class: 'error' }, job.error) : null), h('td', {}, progressCell(job)),
    h('td', {}, job.status === 'success'
      ? h('a', { href: '/files/' + encodeURIComponent(job.filename), download: job.filename },
        h('img', { class: 'thumb', src: thumbnail(job.id, 'result'), alt: 'result of ' + (name || job.filename), loading: 'lazy' }), 'Download')
      : h('a', { href: '#/job/' + job.id }, 'details'))];
    let tr = rows.get(job.id);
    if (!tr) { tr = h('tr', { 'data-job': job.id }); rows.set(job.id, tr); body.append(tr); tr.dataset.name = name; }
    tr.replaceChildren(...cells);
  };
  const send = async (files) => {
    for (const file of files) {
      try {
        const job = remember(await api('POST', '/upscale?model=' + encodeURIComponent(select.value), file, file.type || 'application/octet-stream'));
        draw(state.jobs.get(job.id) || job, file.name);
      } catch (error) {
        body.append(h('tr', {}, h('td', {}, file.name), h('td', { colspan: '3', class: 'error' }, error.message)));
      }
    }
  };
  input.addEventListener('change', () => { send([...input.files]); input.value = ''; });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); send([...e.dataTransfer.files]); });
  view.onJob = (job) => { const tr = rows.get(job.id); if (tr) draw(job, tr.dataset.name); };
  view.onReconnect = async () => {
    for (const [id, tr] of rows) draw(remember(await api('GET', '/status/' + encodeURIComponent(id))), tr.dataset.name);
  };
};

function batchCard(batch) {
  return h('section', { class: 'card batch', 'data-batch': batch.batch_id, 'aria-label': 'batch ' + batch.batch_id },
    h('h3', {}, h('a', { href: '#/batch/' + batch.batch_id }, batch.game_id + ' · ' + batch.batch_id.slice(0, 8))),
    h('p', {}, statusBadge(batch.status)),
    h('progress', { max: '100', value: String(batch.percentage), 'aria-label': 'batch progress' }),
    h('p', { class: 'batch-progress' }, batch.progress), h('p', { class: 'batch-failed' }, batch.failed));
}

// Batches: upload a game's images, follow "5/30 images processed".
pages.batches = async (root, _arg, view) => {
  const models = await loadModels();
  root.append(h('h1', {}, 'Image batches'));
  const game = h('input', { id: 'b-game', name: 'game', required: true, pattern: '[A-Za-z0-9_\\-]{1,64}', value: 'game' });
  const files = h('input', { id: 'b-files', type: 'file', accept: 'image/*', multiple: true, required: true });
  const select = modelSelect('b-model', models);
  const form = h('form', { class: 'stack', id: 'batch-form' },
    h('label', { for: 'b-game' }, 'Game id'), game, h('label', { for: 'b-model' }, 'Model'), select,
    h('label', { for: 'b-files' }, 'Images'), files, h('button', { type: 'submit' }, 'Upload batch'));
  const grid = h('div', { class: 'grid', id: 'batches' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  root.append(form, h('h2', {}, 'Batches'), grid, more);
  let cursor = null;
  const load = async (append) => {
    const read = () => api('GET', '/images/batches?limit=20' + (append && cursor ? '&cursor=' + cursor : ''));
    const page = append ? await read() : await settled(read);
    if (!append) grid.replaceChildren();
    grid.append(...page.batches.map(batchCard));
    if (!append && !page.batches.length) grid.append(h('p', { class: 'muted' }, 'No batch yet.'));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData();
    data.append('model', select.value);
    for (const file of files.files) data.append('images', file, file.name);
    const answer = await api('POST', '/images/games/' + encodeURIComponent(game.value) + '/batch-upload', data);
    location.hash = '#/batch/' + answer.batch_id;
  });
  more.addEventListener('click', () => load(true));
  const refresh = throttle(() => { if (state.view === view) load(false).catch(() => {}); }, 1000);
  view.onJob = (job, moved) => { if (job.batch_id && moved) refresh(); };
  view.onReconnect = refresh;
  await load(false);
};

// One batch: counts, each image, retry failed.
pages.batch = async (root, id, view) => {
  const head = h('div');
  const body = h('tbody');
  root.append(head, h('div', { class: 'table-wrap' }, h('table', { id: 'images' }, h('thead', {}, h('tr', {},
    h('th', {}, '#'), h('th', {}, 'image'), h('th', {}, 'status'), h('th', {}, 'attempts'), h('th', {}, 'error'),
    h('th', {}, 'result'))), body)));
  const load = async () => {
    const [batch, images] = await settled(() => Promise.all([api('GET', '/images/batches/' + encodeURIComponent(id) + '/status'),
      api('GET', '/images/batches/' + encodeURIComponent(id) + '/images')]));
    fill(head, h('h1', {}, 'Batch ' + batch.batch_id.slice(0, 8) + ' · ' + batch.game_id), batchCard(batch),
      h('div', { class: 'actions' }, h('button', { type: 'button', id: 'retry-failed', disabled: !batch.can_retry, onclick: retry },
        'Retry failed')));
    body.replaceChildren(...images.images.map((image) => h('tr', { 'data-image': image.image_id },
      h('td', {}, String(image.position + 1)), h('td', {}, h('a', { href: '#/job/' + image.job_id }, image.original_name)),
      h('td', {}, statusBadge(image.status)), h('td', {}, String(image.attempts)),
      h('td', { class: 'error' }, image.error || ''),
      h('td', {}, image.result_url ? h('a', { href: image.result_url, download: true },
        h('img', { class: 'thumb', src: thumbnail(image.job_id, 'result'), alt: 'result of ' + image.original_name, loading: 'lazy' })) : '—'))));
  };
  async function retry() {
    await api('POST', '/images/batches/' + encodeURIComponent(id) + '/retry');
    toast('Retrying failed images.');
    await load();
  }
  const refresh = throttle(() => { if (state.view === view) load().catch(() => {}); }, 500);
  view.onJob = (job, moved) => { if (job.batch_id === id && moved) refresh(); };
  view.onReconnect = refresh;
  await load();
};

// Generate: the video form; the job shows in the list below at once.
pages.generate = async (root, _arg, view) => {
  root.append(h('h1', {}, 'Generate a video'));
  const prompt = h('textarea', { id: 'g-prompt', name: 'prompt', rows: '3', required: true, maxlength: '20000' });
  const size = h('select', { id: 'g-size', name: 'size' }, h('option', { value: '1280x720' }, '1280×720 (landscape)'),
    h('option', { value: '720x1280' }, '720×1280 (portrait)'));
  const list = h('div', { id: 'generated' });
  const form = h('form', { class: 'stack', id: 'generate-form' }, h('label', { for: 'g-prompt' }, 'Prompt'), prompt,
    h('label', { for: 'g-size' }, 'Size'), size, h('button', { type: 'submit' }, 'Generate'));
  root.append(form, h('h2', {}, 'Recent videos'), list);
  const cards = new Map();
  const draw = (job, top) => {
    const card = h('section', { class: 'card', 'data-job': job.id }, h('h3', {}, h('a', { href: '#/job/' + job.id }, jobTitle(job))),
      h('p', {}, statusBadge(job.status), job.queue_position ? ' · position ' + job.queue_position : ''), progressCell(job),
      job.error ? h('p', { class: 'error' }, job.error) : null);
    const old = cards.get(job.id);
    if (old) old.replaceWith(card); else if (top) list.prepend(card); else list.append(card);
    cards.set(job.id, card);
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const job = remember(await api('POST', '/generate', { prompt: prompt.value, size: size.value }));
    draw(state.jobs.get(job.id), true);
    prompt.value = '';
  });
  const load = async () => {
    const page = await settled(() => api('GET', '/jobs?kind=generate&limit=10'));
    list.replaceChildren();
    cards.clear();
    page.jobs.forEach((job) => draw(remember(job), false));
  };
  view.onJob = (job) => { if (job.kind === 'generate') draw(job, true); };
  view.onReconnect = load;
  await load();
};

// ---------- theme ----------
function setupTheme() {
  const saved = localStorage.getItem('tessera-theme');
  if (saved) document.documentElement.dataset.theme = saved;
  $('#theme').addEventListener('click', () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
    const next = dark ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('tessera-theme', next);
  });
}

async function start() {
  setupTheme();
  setupLogin();
  window.addEventListener('hashchange', route);
  window.addEventListener('unhandledrejection', (event) => {
    event.preventDefault();
    const error = event.reason;
    if (error && error.status !== 401) toast(String(error.message || error));
  });
  if (await startSession()) {
    startEvents();
    await eventsReady(2000);
    route();
  }
}

start();
