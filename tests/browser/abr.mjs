#!/usr/bin/env node
// Client-side ABR recorder: hls.js (automatic level selection, nothing forced) in headless
// Chromium plays an HLS ladder while Chrome DevTools Protocol network throttling
// (Network.emulateNetworkConditions) follows a schedule; everything hls.js and the video
// element do is printed for the caller to judge (tests/tests/hls_abr_client.rs).
//
//   node tests/browser/abr.mjs --dir DIR --master index.m3u8 \
//        --schedule 20000@0,900@10,20000@36 --run-s 80 [--latency-ms 10] \
//        [--hls-config '{"maxBufferLength":20,"maxMaxBufferLength":20}'] [--timeout-s 40] \
//        [--chromium PATH] [--quiet] [--console]
//
// --schedule KBPS@S,...: download (and upload) throughput in kbit/s from S seconds after
//   the first 'playing' event; the entry at 0 is applied before the page loads.
// --run-s S: stop S seconds after the first 'playing' (or at 'ended').
// --hls-config JSON: extra hls.js config (buffer sizes only, say; ABR is never forced).
// --console: copy the page's console to stderr (with "debug":true in --hls-config: hls.js'
//   own log of its ABR decisions).
//
// Serves DIR, abr.html and hls.js on 127.0.0.1:<ephemeral> (HTTP/1.1, Cache-Control:
// no-store; the browser cache is disabled over CDP as well, so every fragment is a real,
// throttled transfer).
//
// stdout: one record per line, `KIND key=value ...` (values have no spaces), ending with
// `done`. Times `t` are page seconds (performance.now()), the same clock for the page's
// events and the throttle phases. Kinds: meta, level, phase, play, switching, switched,
// frag, emergency, resize, wait, frozen, tickgap, error, sample, quality, end, done.
// stderr: progress.
// Exit: 0 recorded (the caller judges), 1 the run could not be recorded (no playback,
// fatal error before play, timeout), 2 usage, 3 environment missing.

import http from 'node:http';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HLS_DIST = path.join(HERE, 'node_modules', 'hls.js', 'dist');
const PAGE = path.join(HERE, 'abr.html');

// ---------------------------------------------------------------- args
function usage(msg) {
  process.stderr.write(`abr.mjs: ${msg}\nusage: node abr.mjs --dir DIR --master PLAYLIST ` +
    '--schedule KBPS@S[,KBPS@S...] --run-s S [--latency-ms MS] [--hls-config JSON] ' +
    '[--timeout-s S] [--chromium PATH] [--quiet] [--console]\n');
  process.exit(2);
}
const o = { latencyMs: 10, timeoutS: 40, hlsConfig: {}, quiet: false,
            chromium: process.env.CHROMIUM_PATH || '/usr/bin/chromium' };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    const num = () => {
      const v = val();
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) usage(`bad ${a} ${v}`);
      return n;
    };
    switch (a) {
      case '--dir': o.dir = path.resolve(val()); break;
      case '--master': o.master = val(); break;
      case '--schedule': o.scheduleRaw = val(); break;
      case '--run-s': o.runS = num(); break;
      case '--latency-ms': o.latencyMs = num(); break;
      case '--timeout-s': o.timeoutS = num(); break;
      case '--chromium': o.chromium = val(); break;
      case '--quiet': o.quiet = true; break;
      case '--console': o.console = true; break;
      case '--hls-config':
        try { o.hlsConfig = JSON.parse(val()); } catch (e) { usage(`bad --hls-config: ${e.message}`); }
        break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!o.dir || !o.master || !o.scheduleRaw || o.runS === undefined) usage('--dir, --master, --schedule and --run-s are required');
  if (path.isAbsolute(o.master) || o.master.split('/').includes('..')) usage('--master must be relative to --dir');
  o.schedule = o.scheduleRaw.split(',').map((s) => {
    const m = /^(\d+(?:\.\d+)?)@(\d+(?:\.\d+)?)$/.exec(s.trim());
    if (!m) usage(`bad schedule entry "${s}" (want KBPS@SECONDS)`);
    return { kbps: Number(m[1]), at: Number(m[2]) };
  });
  if (o.schedule[0].at !== 0) usage('the schedule starts at 0');
  for (let k = 1; k < o.schedule.length; k++) {
    if (!(o.schedule[k].at > o.schedule[k - 1].at)) usage('schedule times must increase');
  }
}

const progress = (m) => { if (!o.quiet) process.stderr.write(`[abr] ${m}\n`); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = [];
// One record: values are numbers, booleans or strings with whitespace replaced.
function record(kind, fields = {}) {
  const parts = [kind];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null) continue;
    let s = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v);
    s = s.replace(/\s+/g, '_') || '-';
    parts.push(`${k}=${s}`);
  }
  out.push(parts.join(' '));
}

let browser = null;
let server = null;
let finished = false;
async function finish(code) {
  if (finished) return;
  finished = true;
  clearTimeout(globalTimer);
  if (browser) await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  if (server) {
    server.closeAllConnections?.();
    await Promise.race([new Promise((r) => server.close(() => r())), sleep(2000)]);
  }
  out.push(`done code=${code}`);
  process.stdout.write(out.join('\n') + '\n', () => process.exit(code));
}
// The run ends by itself whatever happens: start-up timeouts + the run + slack.
const globalTimer = setTimeout(() => {
  record('error', { source: 'driver', type: 'timeout', details: 'global_timeout', fatal: true });
  finish(1);
}, (3 * o.timeoutS + o.runS + 30) * 1000);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => finish(1));
process.on('uncaughtException', (e) => { progress(`exception ${e && e.stack || e}`); finish(1); });
process.on('unhandledRejection', (e) => { progress(`rejection ${e && e.stack || e}`); finish(1); });

// ---------------------------------------------------------------- http server
const TYPES = { '.m3u8': 'application/vnd.apple.mpegurl', '.ts': 'video/mp2t', '.html': 'text/html; charset=utf-8',
                '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };
function resolve(urlPath) {
  let p;
  try { p = decodeURIComponent(urlPath); } catch { return null; }
  if (p === '/__abr.html') return PAGE;
  if (p.startsWith('/__hls/')) {
    const name = p.slice(7);
    return /^[A-Za-z0-9._-]+$/.test(name) ? path.join(HLS_DIST, name) : null;
  }
  const full = path.resolve(o.dir, '.' + path.posix.normalize(p));
  return full.startsWith(o.dir + path.sep) ? full : null;
}
const http404 = [];
function startServer() {
  return new Promise((res, rej) => {
    const s = http.createServer(async (req, resp) => {
      const url = new URL(req.url, 'http://127.0.0.1');
      if (url.pathname === '/favicon.ico') { resp.writeHead(204); return resp.end(); }
      const file = resolve(url.pathname);
      let data = null;
      if (file && req.method === 'GET') {
        try { data = await fsp.readFile(file); } catch { /* 404 */ }
      }
      if (!data) {
        http404.push(url.pathname);
        resp.writeHead(404, { 'Cache-Control': 'no-store', 'Content-Type': 'text/plain' });
        return resp.end('not found\n');
      }
      resp.writeHead(200, { 'Cache-Control': 'no-store', 'Content-Length': data.length,
                            'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' });
      resp.end(data);
    });
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => res(s));
  });
}

// ---------------------------------------------------------------- main
async function main() {
  if (!fs.existsSync(path.join(HLS_DIST, 'hls.min.js'))) { progress(`hls.js missing: npm ci in ${HERE}`); process.exit(3); }
  let chromium;
  try { ({ chromium } = await import('playwright-core')); } catch (e) { progress(`playwright-core missing: ${e.message}`); process.exit(3); }
  if (!fs.existsSync(o.chromium)) { progress(`no Chromium at ${o.chromium}`); process.exit(3); }
  if (!fs.existsSync(path.join(o.dir, o.master))) { progress(`no ${o.master} in ${o.dir}`); return finish(1); }

  server = await startServer();
  const base = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({
    executablePath: o.chromium, headless: true, timeout: 30000,
    handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required'],
  });
  const page = await browser.newPage();
  page.on('crash', () => { record('error', { source: 'page', type: 'crash', fatal: true }); finish(1); });
  page.on('console', (m) => { if (o.console || m.type() === 'error') progress(`console: ${m.text()}`); });

  // Throttling of this page's requests (Chromium applies it to the HTTP responses).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  const throttle = async (kbps) => {
    const bytesPerS = (kbps * 1000) / 8;
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: o.latencyMs, downloadThroughput: bytesPerS, uploadThroughput: bytesPerS,
    });
  };
  await throttle(o.schedule[0].kbps);
  await page.goto(`${base}/__abr.html`, { waitUntil: 'load', timeout: o.timeoutS * 1000 });
  const pageNow = () => page.evaluate(() => performance.now() / 1000);
  record('phase', { t: 0, sent: 0, kbps: o.schedule[0].kbps, at: 0 });
  record('meta', { chromium: browser.version(), hlsjs: await page.evaluate(() => window.Hls && Hls.version),
                   latency_ms: o.latencyMs, run_s: o.runS, hls_config: JSON.stringify(o.hlsConfig) });
  const started = await page.evaluate(([src, cfg]) => window.abr.start(src, cfg),
    ['/' + o.master.split('/').map(encodeURIComponent).join('/'), o.hlsConfig]);
  if (!started) return collect(page, 1);

  // ---- first 'playing'
  const state = () => page.evaluate(() => window.abr.state());
  let s = await state();
  const startDeadline = Date.now() + o.timeoutS * 1000;
  while (s.playAt === null && !s.fatal && Date.now() < startDeadline) {
    await sleep(100);
    s = await state();
  }
  if (s.playAt === null) {
    progress(`playback did not start (readyState ${s.readyState}, fatal ${s.fatal})`);
    return collect(page, 1);
  }
  const playAt = s.playAt;
  progress(`playing after ${playAt.toFixed(2)} s at ${s.width}x${s.height}, level ${s.level}`);

  // ---- throttle schedule, relative to the first 'playing'
  let next = 1;
  let lastLog = 0;
  for (;;) {
    await sleep(100);
    s = await state();
    const rel = s.t - playAt;
    if (next < o.schedule.length && rel >= o.schedule[next].at) {
      const e = o.schedule[next++];
      await throttle(e.kbps);
      // in force between `sent` (page time before the CDP command) and `t` (after it)
      record('phase', { t: await pageNow(), sent: s.t, kbps: e.kbps, at: e.at });
      progress(`+${rel.toFixed(1)} s: throttle ${e.kbps} kbit/s`);
    }
    if (rel - lastLog >= 5) {
      lastLog = rel;
      progress(`+${rel.toFixed(1)} s: ct ${s.ct.toFixed(1)} buf ${s.buf.toFixed(1)} level ${s.level} ` +
               `(loading ${s.loadLevel}) ${s.width}x${s.height} estimate ${s.estKbps} kbit/s`);
    }
    if (rel >= o.runS || s.ended || s.fatal) break;
  }
  return collect(page, 0);
}

async function collect(page, code) {
  let r;
  try { r = await page.evaluate(() => window.abr.collect()); } catch (e) {
    progress(`cannot collect: ${e}`);
    return finish(1);
  }
  for (const l of r.levels) record('level', l);
  if (r.playAt !== null) record('play', { t: r.playAt, ct: r.playCt });
  for (const x of r.switching) record('switching', x);
  for (const x of r.switched) record('switched', x);
  for (const x of r.frags) record('frag', x);
  for (const x of r.emergency) record('emergency', x);
  for (const x of r.resizes) record('resize', x);
  for (const x of r.waits) record('wait', x);
  for (const x of r.frozen) record('frozen', x);
  for (const x of r.tickGaps) record('tickgap', x);
  for (const x of r.errors) record('error', x);
  for (const x of r.samples) record('sample', x);
  for (const p of http404) record('error', { source: 'server', type: 'http404', details: p, fatal: false });
  if (r.quality) record('quality', r.quality);
  record('end', { t: r.t, ct: r.ct, duration: r.duration, paused: r.paused, ended: r.ended,
                  width: r.width, height: r.height });
  return finish(code);
}

main().catch((e) => { progress(`exception ${e && e.stack || e}`); finish(1); });
