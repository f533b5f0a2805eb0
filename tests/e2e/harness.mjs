// What the browser tests share: a real `tessera serve` (CPU lanes, the test-only
// fake generator), Debian's chromium driven by playwright-core, a TCP proxy that
// can cut the page's connections, and small PNGs made here.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

// playwright-core lives outside the tree (scripts/setup installs it under
// ~/.cache/tessera/e2e, or E2E_NODE_MODULES points elsewhere).
const modules = process.env.E2E_NODE_MODULES || path.join(os.homedir(), '.cache/tessera/e2e/node_modules');
const require = createRequire(path.join(modules, 'noop.js'));
export const { chromium } = require('playwright-core');

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

export function tempDir(prefix = 'tessera-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// Starts `tessera serve --port 0`; resolves once it wrote its port (read from a
// FIFO, so nothing waits on a clock).
export async function startServer({ binary, source, dataDir, args = [], env = {} }) {
  fs.mkdirSync(dataDir, { recursive: true });
  const fifo = path.join(dataDir, 'port.fifo');
  fs.rmSync(fifo, { force: true });
  await new Promise((resolve, reject) => {
    const mk = spawn('mkfifo', [fifo]);
    mk.on('exit', (code) => (code === 0 ? resolve() : reject(new Error('mkfifo failed'))));
  });
  const ckpt = path.join(dataDir, 'ckpt');
  fs.mkdirSync(ckpt, { recursive: true });
  const log = fs.openSync(path.join(dataDir, 'server.log'), 'a');
  const child = spawn(binary, ['serve', '--port', '0', '--port-file', fifo, '--data-dir', dataDir, '--wan-ckpt-dir', ckpt,
    '--log-format', 'kv', '--generate-command',
    `python3 ${source}/tests/fixtures/fake_generate.py --size {width}*{height} --prompt {prompt} --save_file {output}`,
    ...args], { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const port = await Promise.race([
    new Promise((resolve, reject) => {
      let text = '';
      fs.createReadStream(fifo, { encoding: 'utf8' }).on('data', (chunk) => { text += chunk; })
        .on('end', () => resolve(Number.parseInt(text, 10))).on('error', reject);
    }),
    exited.then((code) => { throw new Error('tessera serve exited with ' + code + ':\n' + serverLog(dataDir)); }),
  ]);
  return {
    port, url: `http://127.0.0.1:${port}`, dataDir, pid: child.pid,
    async stop() { if (child.exitCode === null) { child.kill('SIGINT'); await exited; } },
  };
}

export function serverLog(dataDir) {
  try { return fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8').slice(-6000); } catch { return ''; }
}

// A TCP proxy in front of the server: `cut()` closes every connection through
// it and refuses new ones (the page sees the network go away) until `restore()`.
export async function startProxy(targetPort) {
  const sockets = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) { client.destroy(); return; }
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client); sockets.add(upstream);
    const drop = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', drop); upstream.on('error', drop); client.on('close', drop); upstream.on('close', drop);
    client.pipe(upstream); upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() { refusing = true; for (const socket of sockets) socket.destroy(); sockets.clear(); },
    restore() { refusing = false; },
    close() { this.cut(); return new Promise((resolve) => server.close(resolve)); },
  };
}

// A small RGB PNG with a gradient (zlib from node; CRC per the PNG spec).
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buffer) {
  let c = 0xffffffff;
  for (const byte of buffer) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const length = Buffer.alloc(4); length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}
export function png(width, height, seed = 0) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0); header.writeUInt32BE(height, 4);
  header[8] = 8; header[9] = 2;  // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) {
      row[1 + x * 3] = (x * 255 / width + seed * 40) & 255;
      row[2 + x * 3] = (y * 255 / height) & 255;
      row[3 + x * 3] = ((x + y) * 8 + seed * 90) & 255;
    }
    rows.push(row);
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}
// A valid PNG signature and nothing decodable after it: accepted at upload,
// fails in its job.
export function corruptPng() {
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), Buffer.from('not really an image at all')]);
}

// A browser with a fresh profile, and a page that records console errors.
export async function openBrowser() {
  const profile = tempDir('tessera-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  return { context, async close() { await context.close(); fs.rmSync(profile, { recursive: true, force: true }); } };
}

export function watchConsole(page, allowed = []) {
  const errors = [];
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text() + ' ' + (message.location().url || '');
    if (!allowed.some((pattern) => pattern.test(text))) errors.push(text);
  });
  page.on('pageerror', (error) => errors.push('page error: ' + error.message));
  return errors;
}
