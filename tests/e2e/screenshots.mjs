// `make screenshots`: each dashboard page, light and dark, into docs/images/
// (the only thing here that writes into the source tree; `make test` never runs
// it). A real server with a little of everything: finished upscales, a batch with
// a failed image, a video, one generate job running and two queued.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { corruptPng, openBrowser, png, startServer, tempDir } from './harness.mjs';

const binary = process.env.TESSERA_BINARY;
const source = process.env.TESSERA_SOURCE_DIR;
const out = process.env.SCREENSHOT_DIR || path.join(source, 'docs/images');

function call(base, method, route, body, type = 'application/json') {
  return new Promise((resolve, reject) => {
    const req = http.request(base + route, { method, headers: { 'Content-Type': type } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end(body);
  });
}
function multipart(files, fields) {
  const boundary = 'tessera-screens';
  const parts = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const [name, bytes] of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="images"; filename="${name}"\r\nContent-Type: image/png\r\n\r\n`), bytes, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: 'multipart/form-data; boundary=' + boundary };
}
function finished(base, id) {
  return new Promise((resolve) => {
    http.get(`${base}/events?job_id=${id}`, (res) => { res.resume(); res.on('end', resolve); });
  });
}

const dir = tempDir();
const release = path.join(dir, 'release');
const server = await startServer({ binary, source, dataDir: path.join(dir, 'data'),
  env: { FAKE_GENERATE_STEPS: '8', FAKE_GENERATE_STEP_SECONDS: '0.05', FAKE_GENERATE_STRUCTURED: '1' } });
const base = server.url;
try {
  const first = await call(base, 'POST', '/upscale?model=realesr-animevideov3-x2', png(96, 64, 1), 'image/png');
  const second = await call(base, 'POST', '/upscale?model=realesr-animevideov3-x2', png(80, 60, 2), 'image/png');
  const batch = multipart([['castle.png', png(64, 48, 3)], ['broken.png', corruptPng()], ['forest.png', png(48, 48, 4)]],
    { model: 'realesr-animevideov3-x2' });
  const created = await call(base, 'POST', '/images/games/demo-game/batch-upload', batch.body, batch.type);
  const video = await call(base, 'POST', '/generate', JSON.stringify({ prompt: 'a paper boat on a rainy street', size: '1280x720' }));
  for (const id of [first.id, second.id, video.id]) await finished(base, id);
  // Now the live part: one generate job held at step 1 of 8, two behind it.
  await server.stop();
  const live = await startServer({ binary, source, dataDir: path.join(dir, 'data'),
    env: { FAKE_GENERATE_STEPS: '8', FAKE_GENERATE_STEP_SECONDS: '0.05', FAKE_GENERATE_STRUCTURED: '1', FAKE_GENERATE_BLOCK_FILE: release } });
  const running = await call(live.url, 'POST', '/generate', JSON.stringify({ prompt: 'a lighthouse at dusk, slow pan', size: '1280x720' }));
  await call(live.url, 'POST', '/generate', JSON.stringify({ prompt: 'a fox in the snow', size: '720x1280' }));
  await call(live.url, 'POST', '/generate', JSON.stringify({ prompt: 'city lights from a train window', size: '1280x720' }));

  const browser = await openBrowser();
  fs.mkdirSync(out, { recursive: true });
  const shots = [['queue', '#/'], ['jobs', '#/jobs'], ['job', '#/job/' + first.id], ['upscale', '#/upscale'],
    ['batches', '#/batches'], ['batch', '#/batch/' + created.batch_id], ['generate', '#/generate']];
  for (const theme of ['light', 'dark']) {
    const page = await browser.context.newPage();
    await page.emulateMedia({ colorScheme: theme });
    for (const [name, hash] of shots) {
      await page.goto(live.url + '/' + hash);
      await page.waitForSelector('#conn[data-state="live"]');
      await page.waitForSelector('main h1');
      if (name === 'queue') await page.waitForFunction(() => document.querySelector('.lane progress')?.value > 0);
      if (name === 'job') await page.waitForFunction(() => [...document.querySelectorAll('.compare img')].every((i) => i.complete && i.naturalWidth));
      if (name === 'batch') await page.waitForFunction(() => document.querySelector('.batch-failed')?.textContent.startsWith('1/3'));
      await page.screenshot({ path: path.join(out, `dashboard-${name}-${theme}.png`), fullPage: false });
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(live.url + '/#/');
    await page.waitForSelector('.lane');
    await page.screenshot({ path: path.join(out, `dashboard-phone-${theme}.png`) });
    await page.close();
  }
  await browser.close();
  fs.writeFileSync(release, 'go');
  await live.stop();
  console.log('screenshots in ' + out);
} finally {
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
