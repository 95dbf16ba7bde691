// lib.mjs: what the browser tests (ui.mjs, e2e.mjs) share: Debian's
// chromium through playwright-core with the issue's flags and a fresh user
// data dir; every console error, page error, failed request and HTTP
// error that the test did not announce becomes a problem; every change
// made with the session cookie must carry the CSRF token; each main page
// is saved as a screenshot and checked by axe-core (serious and critical
// violations are problems). Hand-overs to the shell go through files.
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, existsSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { X509Certificate, createHash } from 'node:crypto';

export const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
export const log = (...a) => console.log('#', ...a);
export function assert(cond, msg) { if (!cond) throw new Error(`assertion failed: ${msg}`); }

export const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// open({ dir, out, nm, timeout, trust }): the browser with its first page
// and the problem bookkeeping. dir/chrome is the user data dir (dir is the
// test's own fresh directory); screenshots go to out. trust: PEM
// certificates whose keys Chromium accepts everywhere (by SPKI hash), also
// where Playwright's ignoreHTTPSErrors does not reach: a download made on
// a new connection is refused without it.
export async function open({ dir, out, nm, timeout = 30000, trust = [] }) {
  const require = createRequire(path.join(path.dirname(nm), 'package.json'));
  const { chromium } = require('playwright-core');
  const { default: AxeBuilder } = require('@axe-core/playwright');
  mkdirSync(out, { recursive: true });
  const udd = path.join(dir, 'chrome');
  assert(!existsSync(udd), `the user data dir ${udd} is fresh`);
  const browser = await chromium.launchPersistentContext(udd, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: trust.length ? [...FLAGS, `--ignore-certificate-errors-spki-list=${trust.map(spkiHash).join(',')}`] : FLAGS,
    ignoreHTTPSErrors: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  const page = browser.pages()[0] || await browser.newPage();
  page.setDefaultTimeout(timeout);

  const problems = [];
  const expected = []; // HTTP errors: { method, re, status, left }
  const failures = []; // failed requests: { method, re, left }
  const t = { browser, page, problems, writes: [], axe: {} };
  // expect(METHOD, /path/, STATUS, times): that many such HTTP errors are fine.
  t.expect = (method, re, status, times = 1) => { expected.push({ method, re, status, left: times }); };
  // allowFailure(METHOD, /path/, times): that many failed requests (and
  // Chromium's console line for each) are fine.
  t.allowFailure = (method, re, times = 1) => { failures.push({ method, re, times, failed: 0, logged: 0 }); };
  // The request's failure and its console line come in either order.
  const takeFailure = (method, pathname) => {
    const f = failures.find((x) => x.method === method && x.re.test(pathname) && x.failed < x.times);
    if (f) f.failed += 1;
    return Boolean(f);
  };
  const takeConsoleLine = (pathname) => {
    const f = failures.find((x) => x.re.test(pathname) && x.logged < x.times);
    if (f) f.logged += 1;
    return Boolean(f);
  };

  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium logs every HTTP error response; those are checked one by one below.
    if (/^Failed to load resource: the server responded with a status of \d+/.test(m.text())) return;
    // ... and every failed request, which requestfailed checks.
    const u = m.location()?.url;
    if (/^Failed to load resource: net::ERR_/.test(m.text()) && u && takeConsoleLine(new URL(u).pathname)) return;
    problems.push(`console error: ${m.text()}${u ? ` (${u})` : ''}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // Chromium ends a fetch answered 204 No Content with loadingFailed
  // (net::ERR_ABORTED) after its response, though the page's fetch resolves
  // (microsoft/playwright#32752): such a request did not fail.
  const noContent = new WeakSet();
  page.on('response', (r) => { if (r.status() === 204) noContent.add(r.request()); });
  page.on('requestfailed', (r) => {
    const f = r.failure()?.errorText || '';
    const u = new URL(r.url());
    if (f === 'net::ERR_ABORTED' && u.pathname.startsWith('/api/v1/uploads/')) return; // paused upload
    if (f === 'net::ERR_ABORTED' && noContent.has(r)) return;
    if (takeFailure(r.method(), u.pathname)) return;
    problems.push(`request failed: ${r.method()} ${r.url()}: ${f}`);
  });
  page.on('response', (r) => {
    if (r.status() < 400) return;
    const u = new URL(r.url());
    const e = expected.find((x) => x.left > 0 && x.method === r.request().method() && x.status === r.status() && x.re.test(u.pathname));
    if (e) { e.left -= 1; return; }
    problems.push(`unexpected HTTP ${r.status()}: ${r.request().method()} ${u.pathname}${u.search}`);
  });
  // Every change made with the session cookie carries the CSRF token.
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/api/v1/') || ['GET', 'HEAD', 'OPTIONS'].includes(r.method())) return;
    t.writes.push(`${r.method()} ${u.pathname}`);
    if (u.pathname !== '/api/v1/login' && !r.headers()['x-csrf-token']) problems.push(`no X-CSRF-Token on ${r.method()} ${u.pathname}`);
  });

  // check(NAME): a full-page screenshot out/NAME.png and axe-core.
  t.check = async (name) => {
    await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true });
    const r = await new AxeBuilder({ page }).analyze();
    const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    t.axe[name] = r.violations.map((v) => `${v.id}:${v.impact}`);
    for (const v of bad) problems.push(`axe ${name}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
    log(`page ${name}: screenshot, axe ${r.violations.length} violations (${bad.length} serious/critical)`);
  };
  // go(HASH, HEADING): client-side navigation, done when the h1 is there.
  t.go = async (hash, heading) => {
    await page.evaluate((h) => { location.hash = h; }, hash);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  };
  t.failIfProblems = (step) => { if (problems.length) throw new Error(`after ${step}:\n  ${problems.join('\n  ')}`); };
  // fail(ERROR): the failure screenshot and the report; exits 1.
  t.fail = async (e) => {
    await page.screenshot({ path: path.join(out, 'failure.png'), fullPage: true }).catch(() => {});
    console.log(`FAIL ${path.basename(process.argv[1])}: ${e.message}`);
    if (problems.length) console.log(`also:\n  ${problems.join('\n  ')}`);
    await browser.close();
    process.exit(1);
  };
  return t;
}

// The base64 SHA-256 of a PEM certificate's SubjectPublicKeyInfo.
function spkiHash(pem) {
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

// waitFile(FILE, MS): its trimmed content once the shell has written it
// (the shell writes FILE.tmp and renames it, so it is never seen half).
export async function waitFile(f, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(f)) return readFileSync(f, 'utf8').trim();
    await new Promise((r) => { setTimeout(r, 100); });
  }
  throw new Error(`timed out waiting for ${f}`);
}

// handOver(FILE, TEXT): tell the shell, atomically.
export function handOver(f, text) {
  writeFileSync(`${f}.tmp`, text);
  renameSync(`${f}.tmp`, f);
}
