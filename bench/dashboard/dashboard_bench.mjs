// `make bench-dashboard` (docs/dashboard.md, "Measured"): the dashboard against
// a store of JOBS jobs (default 10 000) in Debian's chromium:
//  1. each page loaded cold: first contentful paint, DOM interactive, the time
//     its data is on screen, and the bytes transferred (every response body and
//     header, from Chromium's own network events);
//  2. the server's CPU (its own utime+stime, not its children's) over WINDOW_S
//     seconds while jobs finish one after another, with 0 and with DASHBOARDS
//     queue pages open (default 50), each following GET /events.
// The numbers are printed, not asserted: this is a measurement, not a test.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { CHROMIUM_ARGS, chromium, openBrowser, startServer, tempDir } from '../../tests/e2e/harness.mjs';

const binary = process.env.TESSERA_BINARY;
const source = process.env.TESSERA_SOURCE_DIR;
const JOBS = Number(process.env.JOBS || 10000);
const DASHBOARDS = Number(process.env.DASHBOARDS || 50);
const WINDOW_S = Number(process.env.WINDOW_S || 20);

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
function post(base, route, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(base + route, { method: 'POST', agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => (res.statusCode === 202 ? resolve(JSON.parse(text)) : reject(new Error(res.statusCode + ' ' + text))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;  // utime + stime, in USER_HZ (100)
}

const dir = tempDir('tessera-dash-bench-');
const release = path.join(dir, 'release');
const server = await startServer({ binary, source, dataDir: path.join(dir, 'data'),
  args: ['--rate-limit-per-minute', '0', '--max-connections-per-client', '4096'],
  env: { FAKE_GENERATE_BLOCK_FILE: release, FAKE_GENERATE_STEPS: '2', FAKE_GENERATE_STEP_SECONDS: '0.01' } });
const browser = await openBrowser();
try {
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0].model}), load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const filled = Date.now();
  for (let i = 0; i < JOBS; i += 4) {
    await Promise.all([0, 1, 2, 3].filter((k) => i + k < JOBS)
      .map((k) => post(server.url, '/generate', { prompt: `bench job ${i + k}: a slow pan over hills`, size: '1280x720' })));
  }
  console.log(`store: ${JOBS} jobs submitted in ${((Date.now() - filled) / 1000).toFixed(1)} s (one running, the rest queued)`);

  // 1. Cold loads.
  const pages = [['queue', '#/', () => document.querySelectorAll('#queue tbody tr[data-job]').length > 0],
    ['jobs', '#/jobs', () => document.querySelectorAll('#jobs tbody tr[data-job]').length > 0],
    ['generate', '#/generate', () => document.querySelectorAll('#generated section').length > 0]];
  console.log('page      FCP ms  DOM interactive ms  data shown ms  bytes  requests');
  for (const [name, hash, ready] of pages) {
    const context = browser.context;  // one profile; the cache is disabled per page below
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    let bytes = 0;
    let requests = 0;
    cdp.on('Network.loadingFinished', (event) => { bytes += event.encodedDataLength; requests += 1; });
    cdp.on('Network.dataReceived', () => {});
    await page.goto(server.url + '/' + hash);
    await page.waitForFunction(ready, null, { timeout: 60000 });
    const timing = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      return { fcp: fcp ? fcp.startTime : NaN, interactive: nav.domInteractive, shown: performance.now() };
    });
    // The event stream never finishes loading: its bytes so far are not counted.
    console.log(`${name.padEnd(9)} ${timing.fcp.toFixed(0).padStart(6)}  ${timing.interactive.toFixed(0).padStart(18)}  ` +
      `${timing.shown.toFixed(0).padStart(13)}  ${String(bytes).padStart(6)}  ${String(requests).padStart(8)}`);
    await page.close();
  }

  // 2. Server CPU while jobs finish, without and with dashboards open.
  const finishedJobs = () => new Promise((resolve) => http.get(server.url + '/jobs/counts', (res) => {
    let text = '';
    res.on('data', (c) => { text += c; });
    res.on('end', () => resolve(JSON.parse(text).success));
  }));
  const measure = async (label) => {
    const done = await finishedJobs();
    const before = cpuSeconds(server.pid);
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, WINDOW_S * 1000));  // a measurement window, not a synchronisation
    const used = cpuSeconds(server.pid) - before;
    const seconds = (Date.now() - started) / 1000;
    const jobs = (await finishedJobs()) - done;
    console.log(`${label}: server CPU ${(100 * used / seconds).toFixed(1)} % of one core over ${seconds.toFixed(0)} s, ` +
      `${jobs} jobs finished meanwhile (${(jobs / seconds).toFixed(1)}/s)`);
  };
  fs.writeFileSync(release, 'go');  // jobs now finish one after another, each a burst of events
  await measure('0 dashboards');
  // One browser context each: a browser holds at most 6 HTTP/1.1 connections
  // per host per profile, and each dashboard keeps one for its event stream.
  const many = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const open = [];
  try {
  for (let i = 0; i < DASHBOARDS; i++) {
    const page = await (await many.newContext()).newPage();
    page.setDefaultTimeout(180000);  // 50 renderers on 2 shared cores start slowly
    await page.goto(server.url + '/#/', { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#conn[data-state="live"]');
    open.push(page);
    if ((i + 1) % 10 === 0) console.log(`  ${i + 1} dashboards open`);
  }
  const subscribers = await new Promise((resolve) => http.get(server.url + '/metrics', (res) => {
    let text = '';
    res.on('data', (c) => { text += c; });
    res.on('end', () => resolve(/tessera_event_subscribers (\d+)/.exec(text)[1]));
  }));
  await measure(`${DASHBOARDS} dashboards (${subscribers} event subscribers)`);
  const pinged = Date.now();
  await new Promise((resolve) => http.get(server.url + '/health', (res) => { res.resume(); res.on('end', resolve); }));
  console.log(`GET /health with ${DASHBOARDS} dashboards open: ${Date.now() - pinged} ms`);
  } finally {
    await many.close();  // its renderers too, even when a page failed to open
  }
  await measure('0 dashboards again');
} finally {
  await browser.close();
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
