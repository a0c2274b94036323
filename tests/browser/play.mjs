#!/usr/bin/env node
// Headless Chromium + hls.js check of an HLS ladder (multivariant playlist + variants).
//
//   node tests/browser/play.mjs --dir DIR --master index.m3u8 --expect 1280x720,640x360 \
//        [--live] [--timeout-s N] [--json OUT.json] [--chromium PATH] [--quiet]
//   node tests/browser/play.mjs --dir DIR --master index.m3u8 --play-through [--rate R] \
//        [--head-seconds H --tail-seconds T] [--stall-threshold-s S] [--expect WxH,...]
//
// Serves DIR (plus the player page and hls.js) on 127.0.0.1:<ephemeral>, loads the
// master playlist with hls.js in headless Chromium, forces every level in turn and
// checks the decoded video size and that playback advances >= 1 s on each level.
// Any Hls.Events.ERROR event fails the run.
//
// --play-through instead plays a VOD (ENDLIST) from its start to its end on the level
// hls.js picks, at playbackRate R, and fails on any stall (see USAGE) or hls.js error.
//
// stdout: exactly one JSON line (the result). Progress/diagnostics go to stderr.
// Exit: 0 ok, 1 failed (playback/errors/timeout), 2 usage error,
//       3 environment missing (node_modules not installed, no Chromium).

import http from 'node:http';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HLS_DIST = path.join(HERE, 'node_modules', 'hls.js', 'dist');
const PLAYER_HTML = path.join(HERE, 'player.html');
const POLL_MS = 100;
const PLAY_SECONDS = 1.0;          // playback that must happen on each level after its size is reached
const VOD_MIN_REMAINING_S = 6;     // VOD: seek back to 0 before a switch if less than this is left

const USAGE = `usage: node play.mjs --dir DIR --master PLAYLIST --expect WxH[,WxH...]
                    [--live [--live-min-segments N]] [--timeout-s N] [--json OUT.json]
                    [--chromium PATH] [--quiet] [--strict]
       node play.mjs --dir DIR --master PLAYLIST --play-through [--rate R]
                    [--head-seconds H --tail-seconds T] [--stall-threshold-s S]
                    [--expect WxH[,WxH...]] [--timeout-s N] [--json OUT.json] [--chromium PATH] [--quiet]
  --dir DIR          directory served as the HTTP root
  --master PLAYLIST  multivariant playlist path relative to DIR (e.g. index.m3u8)
  --expect SIZES     expected variant sizes, one per level, any order (e.g. 1280x720,640x360)
  --live             the stream is live (playlists without ENDLIST): waits for the master to appear
                     and for every variant playlist to list --live-min-segments segments
  --live-min-segments N  default 4 (hls.js joins 3 target durations behind the live edge);
                     a playlist whose MEDIA-SEQUENCE is already > 0 counts as full
  --timeout-s N      per-level (and manifest) timeout in seconds, default 40
  --json FILE        also write the result JSON to FILE
  --chromium PATH    Chromium binary (default $CHROMIUM_PATH or /usr/bin/chromium)
  --quiet            no progress on stderr
  --strict           also fail on the non-fatal networkError/aborted that hls.js emits when
                     our own forced level switch cancels an in-flight fragment load
  --play-through     play a VOD from its start to its end (no forced levels; --expect optional,
                     then only checked against the manifest RESOLUTIONs) and fail on:
                     - a stall: after playback started and outside a seek this script asked for,
                       the element is neither paused nor ended but its currentTime does not advance
                       (a 'waiting' episode, or a frozen playhead without one) for longer than
                       --stall-threshold-s wall seconds; or any hls.js bufferStalledError;
                     - any hls.js ERROR event (fatal or not: bufferNudgeOnStall and
                       bufferSeekOverHole are how hls.js jumps holes), a media element error;
                     - not reaching the end ('ended', or currentTime within 0.25 s of the duration),
                       or less than 90 % of the expected media seconds played.
                     The JSON line adds mode, rate, durationSeconds, startSeconds, endSeconds,
                     playedSeconds, stallCount, stalls [{atSeconds, seconds, kind}], waits (every
                     'waiting' episode, also the short ones), seeks and ended.
  --rate R           playbackRate for --play-through (default 1; 2-4 saves time, stalls still show)
  --head-seconds H   with --tail-seconds: play only the first H s, then seek to T s before the end
  --tail-seconds T   and play to the end (long VODs)
  --stall-threshold-s S  stall threshold in wall seconds for --play-through, default 1
exit: 0 ok, 1 failed, 2 usage error, 3 environment missing`;

// ---------------------------------------------------------------- args
function usageError(msg) {
  process.stderr.write(`play.mjs: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { live: false, timeoutS: 40, json: null, quiet: false, strict: false, liveMinSegments: 4,
              playThrough: false, rate: 1, headS: null, tailS: null, stallThresholdS: 1,
              chromium: process.env.CHROMIUM_PATH || '/usr/bin/chromium' };
    const num = (a, v, min) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < min || (min === 0 && n <= 0)) usageError(`bad ${a} ${v}`);
      return n;
    };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usageError(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--dir': o.dir = val(); break;
      case '--master': o.master = val(); break;
      case '--expect': o.expectRaw = val(); break;
      case '--live': o.live = true; break;
      case '--timeout-s': {
        const v = val();
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0) usageError(`bad --timeout-s ${v}`);
        o.timeoutS = n;
        break;
      }
      case '--json': o.json = val(); break;
      case '--chromium': o.chromium = val(); break;
      case '--quiet': o.quiet = true; break;
      case '--strict': o.strict = true; break;
      case '--play-through': o.playThrough = true; break;
      case '--rate': o.rate = num(a, val(), 0); break;
      case '--head-seconds': o.headS = num(a, val(), 0); break;
      case '--tail-seconds': o.tailS = num(a, val(), 0); break;
      case '--stall-threshold-s': o.stallThresholdS = num(a, val(), 0); break;
      case '--live-min-segments': {
        const v = val();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) usageError(`bad --live-min-segments ${v}`);
        o.liveMinSegments = n;
        break;
      }
      case '-h': case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
        break;
      default: usageError(`unknown argument ${a}`);
    }
  }
  if (!o.dir) usageError('--dir is required');
  if (!o.master) usageError('--master is required');
  if (!o.expectRaw && !o.playThrough) usageError('--expect is required');
  if (o.playThrough && o.live) usageError('--play-through plays a VOD: no --live');
  if ((o.headS === null) !== (o.tailS === null)) usageError('--head-seconds and --tail-seconds go together');
  if (o.headS !== null && !o.playThrough) usageError('--head-seconds/--tail-seconds need --play-through');
  if (o.rate > 16) usageError(`--rate ${o.rate} is above 16`);
  o.expect = (o.expectRaw || '').split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s);
    if (!m) usageError(`bad size in --expect: "${s}" (want WxH)`);
    return { w: Number(m[1]), h: Number(m[2]), s: `${Number(m[1])}x${Number(m[2])}` };
  });
  if (o.expect.length === 0 && !o.playThrough) usageError('--expect is empty');
  if (path.isAbsolute(o.master) || o.master.split(/[\\/]/).includes('..')) {
    usageError('--master must be a path relative to --dir without ".."');
  }
  o.dir = path.resolve(o.dir);
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const progress = (msg) => { if (!opts.quiet) process.stderr.write(`[play] ${msg}\n`); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const elapsed = () => (Date.now() - started) / 1000;

// ---------------------------------------------------------------- result
const result = {
  ok: false,
  levels: [],
  errors: [],
  ignoredErrors: [],
  maxStallSeconds: 0,
  waitingCount: 0,
  failures: [],
  live: null,
  masterVariants: null,
  http404: [],
  hlsVersion: null,
  browser: null,
  elapsedSeconds: 0,
};
let closing = false;   // set once finish() started: later failures are consequences of closing
const fail = (msg) => {
  if (closing) return;
  result.failures.push(msg);
  progress(`FAIL: ${msg}`);
};

let browser = null;
let server = null;
let finished = false;

async function finish(code) {
  if (finished) return;
  finished = true;
  closing = true;
  clearTimeout(globalTimer);
  if (browser) {
    await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  }
  if (server) {
    server.closeAllConnections?.();
    await Promise.race([new Promise((r) => server.close(() => r())), sleep(2000)]);
  }
  result.elapsedSeconds = Number(elapsed().toFixed(2));
  if (code === 0 && (result.failures.length || result.errors.length)) code = 1;
  result.ok = code === 0;
  const line = JSON.stringify(result);
  if (opts.json) {
    try { fs.writeFileSync(opts.json, line + '\n'); } catch (e) { process.stderr.write(`play.mjs: cannot write ${opts.json}: ${e}\n`); }
  }
  process.stdout.write(line + '\n');
  progress(`${result.ok ? 'OK' : 'FAILED'} in ${result.elapsedSeconds}s`);
  process.exit(code);
}

// Whole run must end by itself: (live: master + window waits) + manifest + start + each level + slack.
const globalMs = ((opts.expect.length + 5) * opts.timeoutS + 30) * 1000;
let globalTimer = null;
function armGlobalTimer(ms) {
  clearTimeout(globalTimer);
  globalTimer = setTimeout(() => {
    fail(`global timeout after ${(elapsed()).toFixed(0)}s`);
    finish(1);
  }, ms);
}
armGlobalTimer(globalMs);

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { fail(`killed by ${sig}`); finish(1); });
}
process.on('uncaughtException', (e) => { fail(`exception: ${e && e.stack || e}`); finish(1); });
process.on('unhandledRejection', (e) => { fail(`unhandled rejection: ${e && e.stack || e}`); finish(1); });

function envError(msg) {
  process.stderr.write(`play.mjs: ${msg}\n`);
  result.failures.push(msg);
  finished = true;
  clearTimeout(globalTimer);
  process.stdout.write(JSON.stringify(result) + '\n');
  if (opts.json) { try { fs.writeFileSync(opts.json, JSON.stringify(result) + '\n'); } catch {} }
  process.exit(3);
}

// ---------------------------------------------------------------- playlists on disk
function variantPlaylists(masterFile) {
  let text = '';
  try { text = fs.readFileSync(masterFile, 'utf8'); } catch { return []; }
  const dir = path.dirname(masterFile);
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const out = [];
  lines.forEach((l, k) => {
    if (l.startsWith('#EXT-X-STREAM-INF')) {
      const uri = lines.slice(k + 1).find((x) => x && !x.startsWith('#'));
      if (uri && !/^[a-z]+:\/\//i.test(uri)) out.push(path.join(dir, uri.split('?')[0]));
    }
  });
  return out;
}

// Segments listed; a playlist whose window already slides (MEDIA-SEQUENCE > 0) counts as full.
function countSegments(file) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const seq = /^#EXT-X-MEDIA-SEQUENCE:\s*(\d+)/m.exec(text);
    if (seq && Number(seq[1]) > 0) return Infinity;
    return (text.match(/^#EXTINF:/gm) || []).length;
  } catch { return 0; }
}

// ---------------------------------------------------------------- http server
const CONTENT_TYPES = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.mp4': 'video/mp4',
  '.m4s': 'video/mp4',
  '.m4v': 'video/mp4',
  '.m4a': 'audio/mp4',
  '.aac': 'audio/aac',
  '.vtt': 'text/vtt',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
};

function resolveUrlPath(urlPath) {
  let p;
  try { p = decodeURIComponent(urlPath); } catch { return null; }
  if (p === '/__player.html') return PLAYER_HTML;
  if (p.startsWith('/__hls/')) {
    const name = p.slice('/__hls/'.length);
    if (!/^[A-Za-z0-9._-]+$/.test(name)) return null;
    return path.join(HLS_DIST, name);
  }
  const full = path.resolve(opts.dir, '.' + path.posix.normalize(p));
  if (full !== opts.dir && !full.startsWith(opts.dir + path.sep)) return null;
  return full;
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const send = (status, body, headers = {}) => {
    res.writeHead(status, { 'Cache-Control': 'no-store', ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
  if (url.pathname === '/favicon.ico') return send(204, '');
  const file = resolveUrlPath(url.pathname);
  let data = null;
  if (file) {
    try {
      const st = await fsp.stat(file);
      if (st.isFile()) data = await fsp.readFile(file);
    } catch { /* not found */ }
  }
  if (!data) {
    if (result.http404.length < 50) result.http404.push(url.pathname);
    progress(`HTTP 404 ${url.pathname}`);
    return send(404, 'not found\n', { 'Content-Type': 'text/plain' });
  }
  const type = CONTENT_TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream';
  const headers = { 'Content-Type': type, 'Accept-Ranges': 'bytes' };
  const range = req.headers.range && /^bytes=(\d*)-(\d*)$/.exec(req.headers.range);
  if (range && (range[1] !== '' || range[2] !== '')) {
    let start, end;
    if (range[1] === '') { start = Math.max(0, data.length - Number(range[2])); end = data.length - 1; }
    else { start = Number(range[1]); end = range[2] === '' ? data.length - 1 : Math.min(Number(range[2]), data.length - 1); }
    if (start > end || start >= data.length) {
      return send(416, '', { 'Content-Range': `bytes */${data.length}` });
    }
    const part = data.subarray(start, end + 1);
    return send(206, part, { ...headers, 'Content-Length': part.length,
                             'Content-Range': `bytes ${start}-${end}/${data.length}` });
  }
  return send(200, data, { ...headers, 'Content-Length': data.length });
}

function startServer() {
  return new Promise((resolve, reject) => {
    const s = http.createServer((req, res) => {
      handle(req, res).catch((e) => {
        progress(`server error ${e}`);
        try { res.writeHead(500); res.end(); } catch {}
      });
    });
    s.keepAliveTimeout = 1000;
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

// ---------------------------------------------------------------- main
async function main() {
  // Environment checks (exit 3 so callers can skip when the tool is not set up).
  if (!fs.existsSync(path.join(HLS_DIST, 'hls.min.js'))) {
    envError(`hls.js not installed: run "npm ci" in ${HERE}`);
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    envError(`playwright-core not installed: run "npm ci" in ${HERE} (${e.message})`);
  }
  if (!fs.existsSync(opts.chromium)) {
    envError(`Chromium not found at ${opts.chromium} (apt-get install -y chromium)`);
  }

  // Master playlist (live: wait for the producer to write it).
  const masterFile = path.join(opts.dir, opts.master);
  const masterDeadline = Date.now() + (opts.live ? opts.timeoutS * 1000 : 0);
  while (!fs.existsSync(masterFile) && Date.now() < masterDeadline) await sleep(200);
  if (!fs.existsSync(masterFile)) {
    fail(`master playlist ${masterFile} does not exist`);
    return finish(1);
  }
  try {
    const text = fs.readFileSync(masterFile, 'utf8');
    result.masterVariants = (text.match(/^#EXT-X-STREAM-INF:/gm) || []).length;
  } catch (e) { /* reported by hls.js if really unreadable */ }

  // Live: hls.js starts 3 target durations behind the live edge. If we join before the
  // window holds that much, the player sits at the very edge and the next segment arriving
  // "late" gives a (legit, but test-order-caused) mediaError/bufferStalledError. So wait
  // until every variant playlist lists at least --live-min-segments segments.
  if (opts.live && opts.liveMinSegments > 0) {
    const variants = variantPlaylists(masterFile);
    const deadline = Date.now() + opts.timeoutS * 1000;
    let counts;
    for (;;) {
      counts = variants.map(countSegments);
      if (counts.every((c) => c >= opts.liveMinSegments) || Date.now() > deadline) break;
      await sleep(250);
    }
    progress(`live window: ${counts.join('/')} segment(s) in ${variants.length} variant playlist(s) after ${elapsed().toFixed(1)}s`);
    if (!counts.every((c) => c >= opts.liveMinSegments)) {
      fail(`live variant playlists did not reach ${opts.liveMinSegments} segments within ${opts.timeoutS}s (have ${counts.join('/')})`);
      return finish(1);
    }
  }

  server = await startServer();
  const base = `http://127.0.0.1:${server.address().port}`;
  progress(`serving ${opts.dir} at ${base}`);

  // playwright's launch() already uses a fresh temporary profile (user-data-dir)
  // and removes it on close.
  browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    timeout: 30000,
    handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,   // we close it ourselves
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required'],
  });
  result.browser = `chromium ${browser.version()}`;
  const page = await browser.newPage();
  // (uncaught page exceptions are also recorded as errors by player.html itself)
  page.on('pageerror', (e) => progress(`page error: ${e && e.message || e}`));
  page.on('crash', () => { fail('page crashed'); finish(1); });
  page.on('console', (m) => { if (m.type() === 'error') progress(`console: ${m.text()}`); });

  await page.goto(`${base}/__player.html`, { waitUntil: 'load', timeout: 20000 });
  const masterUrl = '/' + opts.master.split(/[\\/]/).map(encodeURIComponent).join('/');
  const st0 = await page.evaluate(() => window.player.state());
  result.hlsVersion = st0.hlsVersion;
  progress(`${result.browser}, hls.js ${st0.hlsVersion}, loading ${masterUrl}`);
  if (opts.playThrough) await installPlayThroughTracker(page);
  await page.evaluate((src) => window.player.start(src), masterUrl);

  const state = () => page.evaluate(() => window.player.state());
  const fatalError = (s) => s.errors.find((e) => e.fatal);
  const countedErrors = (s) => s.errors.filter((e) => opts.strict || !e.induced).length;
  const ERROR_GRACE_MS = 5000;   // a level stops waiting this long after a counted error (the run fails anyway)

  // ---- manifest
  let s = await state();
  const manifestDeadline = Date.now() + opts.timeoutS * 1000;
  while (!s.manifestParsed && !fatalError(s) && Date.now() < manifestDeadline) {
    await sleep(POLL_MS);
    s = await state();
  }
  if (!s.manifestParsed) {
    const fe = fatalError(s);
    fail(fe ? `manifest not parsed: fatal ${fe.type}/${fe.details}` : `manifest not parsed within ${opts.timeoutS}s`);
    return collectAndFinish(page, s);
  }
  const levels = s.levels;
  progress(`manifest: ${levels.length} level(s): ${levels.map((l) => `${l.width}x${l.height}@${l.bitrate}`).join(' ')}`);
  if (levels.length !== opts.expect.length && !(opts.playThrough && opts.expect.length === 0)) {
    fail(`hls.js has ${levels.length} level(s) but --expect lists ${opts.expect.length}` +
         (result.masterVariants !== null ? ` (master has ${result.masterVariants} EXT-X-STREAM-INF)` : ''));
  }

  // Match levels to expected sizes by the manifest RESOLUTION (multiset match).
  const used = new Array(opts.expect.length).fill(false);
  const plan = levels.map((l) => {
    const k = opts.expect.findIndex((e, j) => !used[j] && e.w === l.width && e.h === l.height);
    if (k >= 0) used[k] = true;
    return { level: l, expected: k >= 0 ? opts.expect[k] : null };
  });
  for (const p of plan) {
    if (!p.expected && !(opts.playThrough && opts.expect.length === 0)) {
      fail(`level ${p.level.index} RESOLUTION ${p.level.width}x${p.level.height} is not in --expect ${opts.expectRaw}`);
    }
  }
  opts.expect.forEach((e, j) => { if (!used[j]) fail(`expected size ${e.s} has no level with that RESOLUTION`); });
  if (opts.playThrough) return playThrough(page, state, fatalError);

  // ---- wait until playback has really started before forcing levels (forcing a level
  // while the first fragments load makes hls.js flush/abort and can cause buffer holes).
  const startDeadline = Date.now() + opts.timeoutS * 1000;
  s = await state();
  while (!(s.fragLevel >= 0 && s.currentTime > 0 && !s.paused && s.width > 0) &&
         !fatalError(s) && Date.now() < startDeadline) {
    await sleep(POLL_MS);
    s = await state();
  }
  if (!(s.fragLevel >= 0 && s.currentTime > 0 && s.width > 0)) {
    const fe = fatalError(s);
    fail(fe ? `playback did not start: fatal ${fe.type}/${fe.details}` :
         `playback did not start within ${opts.timeoutS}s (readyState ${s.readyState}, paused ${s.paused}` +
         `${s.playError ? ', play(): ' + s.playError : ''})`);
    return collectAndFinish(page, s);
  }
  progress(`playback started: ${s.width}x${s.height} level ${s.fragLevel} after ${elapsed().toFixed(2)}s`);

  // ---- levels in turn
  for (const p of plan) {
    const i = p.level.index;
    const manifestSize = `${p.level.width}x${p.level.height}`;
    const entry = { index: i, expected: p.expected ? p.expected.s : null, manifest: manifestSize,
                    bitrate: p.level.bitrate, reached: null, playedSeconds: 0, switchSeconds: null, ok: false };
    result.levels.push(entry);
    // Target decoded size: the expected one; for an unmatched level, its manifest size (for diagnostics).
    const tw = p.expected ? p.expected.w : p.level.width;
    const th = p.expected ? p.expected.h : p.level.height;

    s = await state();
    if (fatalError(s)) break;
    if (!opts.live && Number.isFinite(s.duration) && s.duration - s.currentTime < VOD_MIN_REMAINING_S) {
      await page.evaluate(() => window.player.seek(0));
    }
    const t0 = Date.now();
    await page.evaluate((lvl) => window.player.setLevel(lvl), i);
    const deadline = t0 + opts.timeoutS * 1000;
    let played = false;
    const errorsBefore = countedErrors(s);
    let errorSeenAt = null;
    let reachedAt = null;   // currentTime when the size was first seen on this level
    let lastSeek = 0;
    while (Date.now() < deadline) {
      await sleep(POLL_MS);
      s = await state();
      if (fatalError(s)) break;
      if (errorSeenAt === null && countedErrors(s) > errorsBefore) errorSeenAt = Date.now();
      if (errorSeenAt !== null && reachedAt === null && Date.now() - errorSeenAt > ERROR_GRACE_MS) break;
      const sizeOk = s.width === tw && s.height === th && tw > 0;
      const onLevel = s.fragLevel === i;
      if (sizeOk && onLevel) {
        if (reachedAt === null) {
          reachedAt = s.currentTime;
          entry.switchSeconds = Number(((Date.now() - t0) / 1000).toFixed(2));
        }
        entry.playedSeconds = Number(Math.max(0, s.currentTime - reachedAt).toFixed(3));
        if (s.currentTime - reachedAt >= PLAY_SECONDS) { played = true; break; }
      } else if (reachedAt !== null) {
        reachedAt = null;   // size/level changed again: start over
        entry.playedSeconds = 0;
      }
      // VOD reached the end before we got our second of playback: go again from the start.
      if (!opts.live && s.ended && Date.now() - lastSeek > 2000) {
        lastSeek = Date.now();
        reachedAt = null;
        await page.evaluate(() => { window.player.seek(0); window.player.play(); });
      }
    }
    entry.reached = `${s.width}x${s.height}`;
    entry.fragLevel = s.fragLevel;
    entry.ok = played && !!p.expected;   // an unmatched level was already reported as a failure
    if (played) {
      progress(`level ${i} (${manifestSize}): reached ${entry.reached} in ${entry.switchSeconds}s, played ${entry.playedSeconds}s`);
    } else {
      const fe = fatalError(s);
      fail(`level ${i} (${manifestSize}, expected ${entry.expected}): ` +
           (fe ? `fatal hls.js error ${fe.type}/${fe.details}` :
            (errorSeenAt !== null ? `gave up ${ERROR_GRACE_MS / 1000}s after an hls.js error: ` :
             `not reached within ${opts.timeoutS}s: `) + `decoded ${entry.reached}, playing fragment of level ${s.fragLevel}, ` +
            `currentTime ${s.currentTime.toFixed(2)}, played ${entry.playedSeconds}s, readyState ${s.readyState}`));
    }
  }
  return collectAndFinish(page, s);
}

// ---------------------------------------------------------------- play-through
// Event tracker on the video element, beside player.html's own; installed before hls.js
// starts so that the first 'playing' is seen.
async function installPlayThroughTracker(page) {
  await page.evaluate(() => {
    const v = document.getElementById('video');
    const now = () => performance.now() / 1000;
    const pt = window.__pt = { started: false, seeking: false, ended: false, waiting: null, waits: [] };
    v.addEventListener('playing', () => {
      pt.started = true;
      if (pt.waiting) {
        pt.waits.push({ atSeconds: pt.waiting.at, seconds: now() - pt.waiting.t, duringSeek: pt.waiting.seek });
        pt.waiting = null;
      }
    });
    v.addEventListener('waiting', () => {
      if (pt.started && !pt.waiting) pt.waiting = { t: now(), at: v.currentTime, seek: pt.seeking };
    });
    v.addEventListener('seeking', () => { pt.seeking = true; });
    v.addEventListener('seeked', () => { pt.seeking = false; });
    v.addEventListener('ended', () => { pt.ended = true; });
    window.__ptState = () => ({
      started: pt.started, seeking: pt.seeking, ended: pt.ended || v.ended, waits: pt.waits,
      openWait: pt.waiting ? { atSeconds: pt.waiting.at, seconds: now() - pt.waiting.t, duringSeek: pt.waiting.seek } : null,
      rate: v.playbackRate, wall: now(),
    });
  });
}

// Plays a VOD from its start to its end (or its head and tail) at opts.rate and records
// stalls; see USAGE for the definition. Wall time below is the page's performance.now().
async function playThrough(page, state, fatalError) {
  Object.assign(result, {
    mode: 'play-through', rate: opts.rate, durationSeconds: null, startSeconds: null, endSeconds: null,
    playedSeconds: 0, stallCount: 0, stalls: [], waits: [], seeks: [], ended: false,
  });
  const both = () => page.evaluate(() => ({ s: window.player.state(), pt: window.__ptState() }));
  const setRate = (r) => page.evaluate((r) => { document.getElementById('video').playbackRate = r; }, opts.rate);

  // Start: first frame shown and the playhead moving.
  let { s, pt } = await both();
  const startDeadline = Date.now() + opts.timeoutS * 1000;
  while (!(pt.started && s.currentTime > 0 && !s.paused) && !fatalError(s) && Date.now() < startDeadline) {
    await sleep(POLL_MS);
    ({ s, pt } = await both());
  }
  if (!(pt.started && !s.paused)) {
    const fe = fatalError(s);
    fail(fe ? `playback did not start: fatal ${fe.type}/${fe.details}` :
         `playback did not start within ${opts.timeoutS}s (readyState ${s.readyState}, paused ${s.paused}` +
         `${s.playError ? ', play(): ' + s.playError : ''})`);
    return collectAndFinish(page, s);
  }
  await setRate(opts.rate);
  const duration = s.duration;
  result.durationSeconds = Number.isFinite(duration) ? Number(duration.toFixed(3)) : null;
  result.startSeconds = Number(s.currentTime.toFixed(3));
  if (!Number.isFinite(duration) || duration <= 0) {
    fail(`duration is ${duration}: --play-through needs a VOD (EXT-X-ENDLIST)`);
    return collectAndFinish(page, s);
  }
  const headTail = opts.headS !== null && duration - s.currentTime > opts.headS + opts.tailS;
  const expectedMedia = headTail ? opts.headS + opts.tailS : duration - s.currentTime;
  armGlobalTimer(((expectedMedia / opts.rate) * 2 + opts.timeoutS + 30) * 1000);
  progress(`play-through: duration ${duration.toFixed(2)}s from ${s.currentTime.toFixed(2)}s at rate ${opts.rate}` +
           (headTail ? `, head ${opts.headS}s + tail ${opts.tailS}s` : ''));

  const thr = opts.stallThresholdS;
  const playStart = s.currentTime;
  let lastCt = s.currentTime;
  let lastAdvance = pt.wall;        // page wall time the playhead last moved
  let lastWall = pt.wall;
  let frozen = null;                // open frozen-playhead episode {at, since}
  let seekPending = null;           // {to, wall} while our own seek is resolving
  let tailDone = !headTail;
  const noteStall = (kind, at, seconds) => {
    result.stalls.push({ kind, atSeconds: Number(at.toFixed(3)), seconds: Number(seconds.toFixed(3)) });
    progress(`stall (${kind}) at ${at.toFixed(2)}s for ${seconds.toFixed(2)}s`);
  };
  const stalledErrors = () => s.errors.filter((e) => e.details === 'bufferStalledError').length;
  for (;;) {
    await sleep(POLL_MS);
    ({ s, pt } = await both());
    if (fatalError(s)) break;
    const ct = s.currentTime;
    const dWall = pt.wall - lastWall;
    lastWall = pt.wall;
    const inSeek = seekPending !== null || pt.seeking;
    if (ct > lastCt && !inSeek) {
      // Count at most what the rate allows in this poll (plus slack): a jump is not playback.
      result.playedSeconds += Math.min(ct - lastCt, dWall * opts.rate * 1.5 + 0.25);
    }
    if (ct !== lastCt) lastAdvance = pt.wall;
    lastCt = ct;
    if (pt.ended || (s.ended)) { result.ended = true; break; }
    if (seekPending !== null) {
      if (seekPending.settledCt === null && !pt.seeking && pt.wall - seekPending.wall > 0.1) seekPending.settledCt = ct;
      if (seekPending.settledCt !== null && ct > seekPending.settledCt + 0.05 && !s.paused) {
        seekPending = null;           // playing again after our seek
        lastAdvance = pt.wall;
      } else if (pt.wall - seekPending.wall > opts.timeoutS) {
        fail(`seek to ${seekPending.to.toFixed(2)}s did not resume playback within ${opts.timeoutS}s`);
        break;
      }
      continue;
    }
    // Frozen playhead (with or without 'waiting').
    const shouldMove = pt.started && !s.paused && !pt.ended && !pt.seeking;
    if (shouldMove && pt.wall - lastAdvance > thr) {
      if (!frozen) frozen = { at: ct, since: lastAdvance };
    } else if (frozen && ct !== frozen.at) {
      noteStall(pt.openWait || s.stalledNow ? 'waiting' : 'frozen', frozen.at, pt.wall - frozen.since);
      frozen = null;
    }
    if (frozen && pt.wall - frozen.since > opts.timeoutS) {
      noteStall('stuck', frozen.at, pt.wall - frozen.since);
      fail(`playhead stuck at ${frozen.at.toFixed(2)}s for ${opts.timeoutS}s (readyState ${s.readyState})`);
      frozen = null;
      break;
    }
    if (s.paused && !pt.ended && pt.started) {
      // Chromium pauses by itself only at the end; anything else is reported and resumed.
      progress(`paused at ${ct.toFixed(2)}s without 'ended': play()`);
      await page.evaluate(() => window.player.play());
    }
    if (headTail && !tailDone && ct - playStart >= opts.headS) {
      const to = Math.max(ct, duration - opts.tailS);
      result.seeks.push({ from: Number(ct.toFixed(3)), to: Number(to.toFixed(3)) });
      seekPending = { to, wall: pt.wall, settledCt: null };
      tailDone = true;
      await page.evaluate((t) => window.player.seek(t), to);
      await setRate(opts.rate);
    }
  }
  if (frozen) noteStall('frozen', frozen.at, lastWall - frozen.since);
  // Every 'waiting' episode is reported; the ones over the threshold outside our seek are stalls
  // (unless the frozen-playhead watch above already has them).
  result.waits = pt.waits.concat(pt.openWait ? [pt.openWait] : []).map((w) => ({
    atSeconds: Number(w.atSeconds.toFixed(3)), seconds: Number(w.seconds.toFixed(3)), duringSeek: w.duringSeek,
  }));
  for (const w of result.waits) {
    if (!w.duringSeek && w.seconds > thr && !result.stalls.some((x) => Math.abs(x.atSeconds - w.atSeconds) < 0.5)) {
      noteStall('waiting', w.atSeconds, w.seconds);
    }
  }
  for (let k = 0; k < stalledErrors(); k++) result.stalls.push({ kind: 'hls.js bufferStalledError', atSeconds: null, seconds: null });
  result.stallCount = result.stalls.length;
  result.endSeconds = Number(s.currentTime.toFixed(3));
  result.playedSeconds = Number(result.playedSeconds.toFixed(3));
  if (!result.ended && !(Number.isFinite(duration) && duration - s.currentTime < 0.25)) {
    fail(`did not reach the end: stopped at ${s.currentTime.toFixed(2)}s of ${duration.toFixed(2)}s`);
  }
  if (result.playedSeconds < 0.9 * expectedMedia) {
    fail(`played ${result.playedSeconds.toFixed(2)}s of ${expectedMedia.toFixed(2)}s`);
  }
  if (result.stallCount > 0) {
    fail(`${result.stallCount} stall(s): ` + result.stalls.slice(0, 5)
      .map((x) => `${x.kind}${x.atSeconds !== null ? ` at ${x.atSeconds}s for ${x.seconds}s` : ''}`).join(', '));
  }
  progress(`play-through: played ${result.playedSeconds}s, ended ${result.ended}, ${result.stallCount} stall(s), ` +
           `${result.waits.length} waiting episode(s)`);
  return collectAndFinish(page, s);
}

async function collectAndFinish(page, s) {
  try { s = await page.evaluate(() => window.player.state()); } catch { /* keep last */ }
  for (const e of s.errors) {
    const o = { ...e };
    delete o.t;
    delete o.induced;
    if (typeof e.t === 'number') o.atSeconds = Number(e.t.toFixed(2));
    (e.induced && !opts.strict ? result.ignoredErrors : result.errors).push(o);
  }
  result.maxStallSeconds = Number((s.maxStallSeconds || 0).toFixed(3));
  result.waitingCount = s.waitingCount || 0;
  result.live = s.live;
  if (opts.live && s.live === false) fail('--live given but the media playlist is not live (has EXT-X-ENDLIST)');
  if (result.errors.length) {
    fail(`${result.errors.length} error event(s): ` +
         result.errors.slice(0, 5).map((e) => `${e.type}/${e.details}${e.fatal ? ' (fatal)' : ''}`).join(', '));
  }
  if (result.failures.length && !opts.quiet) {
    try {
      const log = await page.evaluate(() => window.player.log());
      process.stderr.write('[play] page log (last 40):\n  ' + log.slice(-40).join('\n  ') + '\n');
    } catch { /* page gone */ }
  }
  const allOk = opts.playThrough ? true :
    result.levels.length === opts.expect.length && result.levels.every((l) => l.ok);
  return finish(allOk && result.failures.length === 0 && result.errors.length === 0 ? 0 : 1);
}

main().catch((e) => { fail(`exception: ${e && e.stack || e}`); finish(1); });
