// The dashboard in a real browser (issue 17): Debian's chromium driven by
// playwright-core against a real `tessera serve` with a CPU lane. Every wait is
// on a condition (the page's DOM, the server's event stream), never a clock.
// Run by ctest (tests/CMakeLists.txt): node --test tests/e2e/dashboard.test.mjs
// with TESSERA_BINARY and TESSERA_SOURCE_DIR set.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { corruptPng, openBrowser, png, serverLog, startProxy, startServer, tempDir, watchConsole } from './harness.mjs';

const binary = process.env.TESSERA_BINARY;
const source = process.env.TESSERA_SOURCE_DIR;
assert.ok(binary && source, 'set TESSERA_BINARY and TESSERA_SOURCE_DIR');
const TIMEOUT = 60000;  // generous: a bound for failures, not a measurement

let browser;
const cleanups = [];
before(async () => { browser = await openBrowser(); });
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await browser.close();
});

async function server(options = {}) {
  const dir = tempDir();
  const started = await startServer({ binary, source, dataDir: path.join(dir, 'data'), ...options,
    env: { FAKE_GENERATE_STEPS: '4', FAKE_GENERATE_STEP_SECONDS: '0.05', ...(options.env || {}) } });
  cleanups.push(async () => { await started.stop(); fs.rmSync(dir, { recursive: true, force: true }); });
  started.dir = dir;
  return started;
}

function request(base, method, route, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(base + route, { method, headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

// Follows GET /events?job_id= until `until(job)`: the server's own events.
function followJob(base, id, until, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/events?job_id=${id}`, { headers }, (res) => {
      let buffer = '';
      res.on('data', (chunk) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split('\n').find((line) => line.startsWith('data: '));
          if (!data) continue;
          const job = JSON.parse(data.slice(6));
          if (until(job)) { req.destroy(); resolve(job); return; }
        }
      });
      res.on('end', () => reject(new Error('event stream of ' + id + ' ended first')));
    });
    req.on('error', (error) => { if (!req.destroyed) reject(error); });
  });
}
const finished = (job) => ['success', 'error', 'canceled'].includes(job.status);

async function newPage(allowedConsole = []) {
  const page = await browser.context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errors = watchConsole(page, allowedConsole);
  cleanups.push(() => page.close());
  return { page, errors };
}

function statusOf(page, selector) {
  return page.waitForFunction((sel) => document.querySelector(sel)?.dataset.status, selector);
}
async function waitStatus(page, scope, status) {
  await page.waitForSelector(`${scope} .status[data-status="${status}"]`);
}

test('two uploaded images both finish and their results are shown', { timeout: 3 * TIMEOUT }, async () => {
  const tessera = await server();
  const { page, errors } = await newPage();
  await page.goto(tessera.url + '/#/upscale');
  await page.waitForSelector('#u-model option[value="realesr-animevideov3-x2"]', { state: 'attached' });
  await page.selectOption('#u-model', 'realesr-animevideov3-x2');
  await page.setInputFiles('#u-files', [
    { name: 'first.png', mimeType: 'image/png', buffer: png(24, 16, 1) },
    { name: 'second.png', mimeType: 'image/png', buffer: png(20, 12, 2) },
  ]);
  await page.waitForFunction(() => document.querySelectorAll('#uploads .status[data-status="success"]').length === 2);
  // Both results are shown: the thumbnails decoded at twice the input size.
  const sizes = await page.waitForFunction(() => {
    const images = [...document.querySelectorAll('#uploads img.thumb')];
    return images.length === 2 && images.every((img) => img.complete && img.naturalWidth > 0)
      && images.map((img) => [img.naturalWidth, img.naturalHeight]);
  });
  assert.deepEqual(await sizes.jsonValue(), [[48, 32], [40, 24]]);
  // A job's page shows the result over its original, with the slider.
  const id = await page.getAttribute('#uploads tr[data-job]', 'data-job');
  await page.goto(tessera.url + '/#/job/' + id);
  await page.waitForFunction(() => {
    const before = document.querySelector('.compare img.before');
    const after = document.querySelector('.compare img.after');
    return before && after && before.complete && after.complete && before.naturalWidth === 24 && after.naturalWidth === 48;
  });
  assert.doesNotMatch(await page.textContent('main'), /\bnull\b|undefined|NaN/);
  await page.fill('input[type=range]', '20');
  assert.match(await page.$eval('.compare img.before', (img) => img.style.clipPath), /inset\(0(px)? 80%/);
  assert.deepEqual(errors, []);
});

test('a job page lists its webhook deliveries', { timeout: 2 * TIMEOUT }, async () => {
  const received = [];
  const receiver = http.createServer((req, res) => { req.resume(); req.on('end', () => { received.push(req.url); res.end('ok'); }); });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => receiver.close(resolve)));
  const tessera = await server();
  const hook = `http://127.0.0.1:${receiver.address().port}/done`;
  const id = (await request(tessera.url, 'POST', '/generate', { prompt: 'tell me', size: '1280x720', webhook: hook })).body.id;
  const { page, errors } = await newPage();
  await page.goto(tessera.url + '/#/job/' + id);
  await waitStatus(page, 'main', 'success');
  // The delivery shows once made, without reloading.
  await page.waitForSelector('#webhooks td:has-text("delivered")');
  assert.match(await page.textContent('#webhooks'), new RegExp(hook.replace(/[.]/g, '\\.') + '.*job\\.success'));
  assert.deepEqual(received, ['/done']);
  assert.deepEqual(errors, []);
});

test('a generate job appears in the queue at once and its progress bar moves with the ETA', { timeout: 2 * TIMEOUT }, async () => {
  const release = path.join(tempDir(), 'release');
  const tessera = await server({ env: { FAKE_GENERATE_BLOCK_FILE: release, FAKE_GENERATE_STRUCTURED: '1' } });
  const { page, errors } = await newPage();
  await page.goto(tessera.url + '/#/generate');
  await page.fill('#g-prompt', 'a lighthouse at dusk');
  await page.selectOption('#g-size', '720x1280');
  await page.click('#generate-form button[type=submit]');
  const card = await page.waitForSelector('#generated section[data-job]');
  const id = await card.getAttribute('data-job');
  await page.goto(tessera.url + '/#/');
  await page.waitForSelector(`#queue tr[data-job="${id}"]`);
  // Blocked after step 1 of 4: the lane's bar stands at 25 % with the generator's own ETA.
  await page.waitForFunction(() => document.querySelector('.lane progress')?.value === 25);
  const laneText = await page.textContent('.lane');
  assert.match(laneText, /ETA .*\(structured\)/);
  assert.match(laneText, /a lighthouse at dusk/);
  assert.equal(await page.textContent('[data-count="running"] b'), '1');
  fs.writeFileSync(release, 'go');
  await page.waitForFunction(() => document.querySelector('[data-count="success"] b')?.textContent === '1');
  await page.waitForFunction(() => document.querySelector('.lane .lane-state')?.textContent === 'idle');
  await page.goto(tessera.url + '/#/job/' + id);
  await waitStatus(page, 'main', 'success');
  await page.waitForSelector('#result video[src]');
  assert.deepEqual(errors, []);
});

test('a running job is canceled from its page, retried, and canceled with another from the list', { timeout: TIMEOUT * 2 }, async () => {
  const tessera = await server({ env: { FAKE_GENERATE_BLOCK_FILE: path.join(tempDir(), 'never') } });
  const submitted = await request(tessera.url, 'POST', '/generate', { prompt: 'never ends', size: '1280x720' });
  const id = submitted.body.id;
  await followJob(tessera.url, id, (job) => job.status === 'running');
  const { page, errors } = await newPage();
  await page.goto(tessera.url + '/#/job/' + id);
  await waitStatus(page, 'main', 'running');
  await page.click('#cancel');
  await waitStatus(page, 'main', 'canceled');
  const job = await request(tessera.url, 'GET', '/status/' + id);
  assert.equal(job.body.status, 'canceled');
  // Retry makes a new job and the page moves to it; it runs (blocked like the first).
  await page.click('#retry');
  await page.waitForFunction((old) => location.hash.startsWith('#/job/') && !location.hash.endsWith(old), id);
  const retried = decodeURIComponent(new URL(page.url()).hash.slice('#/job/'.length));
  await waitStatus(page, 'main', 'running');
  assert.equal((await request(tessera.url, 'GET', '/status/' + retried)).body.prompt, 'never ends');
  // Several at once from the list: the new one and a queued one behind it.
  const queued = (await request(tessera.url, 'POST', '/generate', { prompt: 'waits behind', size: '1280x720' })).body.id;
  await page.goto(tessera.url + '/#/jobs');
  for (const selected of [retried, queued]) await page.check(`#jobs tr[data-job="${selected}"] input[type=checkbox]`);
  await page.click('button:has-text("Cancel selected")');
  await page.waitForFunction((ids) => ids.every((one) =>
    document.querySelector(`#jobs tr[data-job="${one}"] .status`)?.dataset.status === 'canceled'), [retried, queued]);
  assert.deepEqual(errors, []);
});

test('a batch with a corrupt image shows 1/3 failed and retries it from the page', { timeout: 3 * TIMEOUT }, async () => {
  const tessera = await server();
  const { page, errors } = await newPage();
  await page.goto(tessera.url + '/#/batches');
  await page.fill('#b-game', 'game-7');
  await page.waitForSelector('#b-model option[value="realesr-animevideov3-x2"]', { state: 'attached' });
  await page.selectOption('#b-model', 'realesr-animevideov3-x2');
  await page.setInputFiles('#b-files', [
    { name: 'ok-1.png', mimeType: 'image/png', buffer: png(16, 16, 3) },
    { name: 'broken.png', mimeType: 'image/png', buffer: corruptPng() },
    { name: 'ok-2.png', mimeType: 'image/png', buffer: png(16, 12, 4) },
  ]);
  await page.click('#batch-form button[type=submit]');
  await page.waitForSelector('h1:has-text("Batch")');
  await page.waitForFunction(() => document.querySelector('.batch-failed')?.textContent === '1/3 images failed'
    && document.querySelector('.batch-progress')?.textContent === '2/3 images processed');
  const broken = 'tr:has-text("broken.png")';
  await waitStatus(page, broken, 'FAILED');
  assert.equal(await page.textContent(`${broken} td:nth-child(4)`), '1');
  await page.waitForFunction(() => {
    const thumbs = [...document.querySelectorAll('#images img.thumb')];
    return thumbs.length === 2 && thumbs.every((img) => img.complete && img.naturalWidth === 32);
  });
  // An image's job page shows its result over its original, from the batch's own folder.
  await page.click('#images a:has-text("ok-1.png")');
  await page.waitForFunction(() => {
    const [after, before] = ['.compare img.after', '.compare img.before'].map((sel) => document.querySelector(sel));
    return after && before && after.complete && before.complete && after.naturalWidth === 32 && before.naturalWidth === 16;
  });
  await page.goBack();
  await page.waitForSelector('#retry-failed');
  await page.click('#retry-failed');
  // The retry runs (a second attempt) and fails again: the page follows it.
  await page.waitForFunction((sel) => {
    const row = [...document.querySelectorAll('#images tr')].find((tr) => tr.textContent.includes('broken.png'));
    return row && row.children[3].textContent === '2' && row.querySelector('.status')?.dataset.status === 'FAILED';
  }, broken);
  assert.equal(await page.textContent('.batch-failed'), '1/3 images failed');
  await page.goto(tessera.url + '/#/batches');
  await page.waitForSelector('.batch:has-text("game-7") >> text=2/3 images processed');
  assert.deepEqual(errors, []);
});

test('the event stream cut and restored mid-run leaves the page correct', { timeout: 2 * TIMEOUT }, async () => {
  const release = path.join(tempDir(), 'release');
  const tessera = await server({ env: { FAKE_GENERATE_BLOCK_FILE: release } });
  const proxy = await startProxy(tessera.port);
  cleanups.push(() => proxy.close());
  const submitted = await request(tessera.url, 'POST', '/generate', { prompt: 'through the proxy', size: '1280x720' });
  const id = submitted.body.id;
  // Only the browser's failed connections to the cut proxy may be logged.
  const { page, errors } = await newPage([/net::ERR_|Failed to load resource/]);
  await page.goto(proxy.url + '/#/job/' + id);
  await waitStatus(page, 'main', 'running');
  await page.waitForSelector('#conn[data-state="live"]');
  await page.waitForFunction(() => document.querySelector('main progress')?.value === 25);
  proxy.cut();
  await page.waitForSelector('#conn[data-state="disconnected"]');
  fs.writeFileSync(release, 'go');
  await followJob(tessera.url, id, finished);  // it finished while the page could not hear
  assert.equal(await page.$eval('main .status', (el) => el.dataset.status), 'running');
  proxy.restore();
  await page.waitForSelector('#conn[data-state="live"]');
  await waitStatus(page, 'main', 'success');
  await page.waitForFunction(() => document.querySelector('main progress')?.value === 100);
  await page.waitForSelector('#result video[src]');
  // The queue page agrees: nothing running, one success.
  await page.goto(proxy.url + '/#/');
  await page.waitForFunction(() => document.querySelector('[data-count="success"] b')?.textContent === '1'
    && document.querySelector('[data-count="running"] b')?.textContent === '0');
  assert.deepEqual(errors, []);
});

test('eight tabs of one browser share one event stream, and another tab takes it over when its tab closes', { timeout: 3 * TIMEOUT }, async () => {
  // A browser keeps 6 HTTP/1.1 connections per host: with a stream per tab, the 7th tab would never load.
  const tessera = await server({ env: { FAKE_GENERATE_BLOCK_FILE: path.join(tempDir(), 'never') } });
  const tabs = [];
  const errors = [];
  for (let i = 0; i < 8; i++) {
    const opened = await newPage();
    errors.push(opened.errors);
    await opened.page.goto(tessera.url + '/#/');
    await opened.page.waitForSelector('#conn[data-state="live"]');
    tabs.push(opened.page);
  }
  const subscribers = async () => {
    const metrics = await new Promise((resolve) => http.get(tessera.url + '/metrics', (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve(text));
    }));
    return Number(/tessera_event_subscribers (\d+)/.exec(metrics)[1]);
  };
  assert.equal(await subscribers(), 1);
  const first = (await request(tessera.url, 'POST', '/generate', { prompt: 'seen by every tab', size: '1280x720' })).body.id;
  for (const tab of tabs) await tab.waitForSelector(`#queue tr[data-job="${first}"]`);
  await tabs[0].close();  // the tab holding the stream
  const second = (await request(tessera.url, 'POST', '/generate', { prompt: 'after the handover', size: '1280x720' })).body.id;
  for (const tab of tabs.slice(1)) await tab.waitForSelector(`#queue tr[data-job="${second}"]`);
  assert.equal(await subscribers(), 1);
  assert.deepEqual(errors.flat(), []);
});

test('with a token the page asks for it once, then every page renders without console errors', { timeout: 2 * TIMEOUT }, async () => {
  const token = 'e2e-token-' + process.pid;
  const tessera = await server({ args: ['--token', token] });
  const { page, errors } = await newPage();
  await page.goto(tessera.url + '/#/');
  await page.waitForSelector('#login[open]');
  await page.fill('#login-token', 'wrong');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login-error:has-text("Wrong token")');
  await page.fill('#login-token', token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#conn[data-state="live"]');
  const cookies = await browser.context.cookies(tessera.url);
  const session = cookies.find((c) => c.name === 'tessera_session');
  assert.ok(session && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies));
  assert.ok(!session.value.includes(token));
  // A change from the page carries the CSRF header: the job is accepted.
  await page.goto(tessera.url + '/#/generate');
  await page.fill('#g-prompt', 'signed in');
  await page.click('#generate-form button[type=submit]');
  await page.waitForSelector('#generated section[data-job]:has-text("signed in")');
  for (const hash of ['#/', '#/jobs', '#/upscale', '#/batches', '#/generate']) {
    await page.goto(tessera.url + '/' + hash);
    await page.waitForSelector('main h1');
  }
  await page.goto(tessera.url + '/#/jobs');
  await page.fill('#f-q', 'signed');
  await page.click('form[role=search] button');
  await page.waitForFunction(() => document.querySelectorAll('#jobs tbody tr[data-job]').length === 1);
  // The theme toggle switches and is remembered.
  const before = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.click('#theme');
  await page.waitForFunction((old) => getComputedStyle(document.body).backgroundColor !== old, before);
  // After reloading, the cookie is enough: no second question.
  await page.reload();
  await page.waitForSelector('#conn[data-state="live"]');
  assert.equal(await page.$eval('#login', (d) => d.open), false);
  // The one error the browser logs is the refused wrong token (a 401 is the right answer to it).
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0], /status of 401 .*\/session$/);
  assert.ok(!serverLog(tessera.dataDir).includes(token), 'the token must never be logged');
});
