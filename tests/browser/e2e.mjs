// e2e.mjs: a release through the web UI, with the real agent: log in,
// create a project and an enrollment token, see the device that ql-agent
// enrolls with it (run by tests/integration/t_ui_e2e.sh) appear without a
// reload, tag it, upload a 50 MiB image in PATCHes of 8 MiB through a
// proxy that cuts the connection on the wire twice past half the file: in
// the middle of a PATCH body, then after the whole body of its retry went
// to the server, before the reply (the server's offset, read directly,
// keeps what was committed; the upload resumes from it, one creation, and
// the stored image has the file's SHA-256), upload it again as another
// version with the page reloaded in the middle of a PATCH (it resumes from
// the server's offset), sign the first, deploy it to the
// tag, see the agent's install in the deployment and in the device's
// update history, revoke the device's certificate, and find each step in
// the audit log. Every main page is screenshot and checked by axe; any
// console error or failed request that is not the cut upload fails.
import path from 'node:path';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { open, env, log, assert, waitFile, handOver } from './lib.mjs';
import { cutProxy } from './cutproxy.mjs';

const URL0 = env('QL_URL'); // the admin listener; the browser goes through the proxy
const DIR = env('QL_UI_DIR');
const OUT = env('QL_UI_OUT');
const IMAGE = env('QL_IMAGE');
const PROJECT = 'e2e';
const SLOW = 120000; // chromium on a busy 2-core machine: waits, not speed asserts

const size = statSync(IMAGE).size;
const sha256 = createHash('sha256').update(readFileSync(IMAGE)).digest('hex');

const TLS = { cert: readFileSync(env('QL_TLS_CERT')), key: readFileSync(env('QL_TLS_KEY')), ca: readFileSync(env('QL_TLS_CA')) };
// The proxy below presents the admin listener's certificate.
const t = await open({ dir: DIR, out: OUT, nm: env('QL_NODE_MODULES'), timeout: 60000, trust: [TLS.cert] });
const { page, expect, allowFailure, check, go, failIfProblems } = t;
const handFile = (name) => path.join(DIR, name);
const row = (...cells) => cells.reduce((l, c) => l.filter({ has: page.getByRole('cell', { name: c, exact: true }) }), page.locator('tbody tr'));

// The browser reaches the admin listener through a proxy that cuts the
// upload on the wire (cutproxy.mjs). The test asks the server for the
// upload's offset directly, with the browser's session cookie.
const wire = []; // the upload's requests as the proxy forwarded them
let cutting = false;
let cut1 = null;
let cut2 = null;
let cutError = null;
let gate = Promise.resolve(); // requests wait here while the server is asked
const serverOffset = async (p) => {
  const r = await t.browser.request.head(`${URL0}${p}`, { headers: { 'Tus-Resumable': '1.0.0' } });
  if (r.status() !== 200) throw new Error(`HEAD ${p} answered ${r.status()}`);
  return Number(r.headers()['upload-offset']);
};
// The page is reloaded while a PATCH of a second upload is in flight:
// once the server has stored that PATCH's whole body, with its reply held
// back from the browser (reload.stored: the server's offset then).
let reload = null;
const decide = async (req) => {
  await gate;
  if (reload && !reload.at && req.method === 'PATCH' && Number(req.headers['upload-offset']) > 0) {
    reload.at = Number(req.headers['upload-offset']);
    reload.path = req.path;
    return {
      hold: async () => {
        const end = Date.now() + SLOW;
        while (Date.now() < end) {
          reload.stored = await serverOffset(req.path).catch((e) => { cutError = e.message; return -1; });
          if (reload.stored === reload.at + req.length || reload.stored < 0) break;
          await new Promise((r) => { setTimeout(r, 25); });
        }
        reload.held();
        await reload.reloaded;
      },
    };
  }
  if (!cutting || !req.path.startsWith('/api/v1/uploads/')) return undefined;
  const at = Number(req.headers['upload-offset']);
  if (req.method !== 'PATCH') return undefined;
  if (!cut1 && at > size / 2) {
    // Half of this body to the server, then the cut; the server's offset
    // is read before any other request reaches it.
    cut1 = { at, length: req.length };
    let opened;
    gate = new Promise((r) => { opened = r; });
    return {
      cutAfter: Math.floor(req.length / 2),
      afterCut: () => serverOffset(req.path).then((o) => { cut1.kept = o; }, (e) => { cutError = e.message; }).finally(opened),
    };
  }
  if (cut1 && !cut2) {
    // Its retry: the whole body, then wait until the server has committed
    // some of it, then the cut before its reply reaches the browser.
    cut2 = { at, length: req.length };
    return {
      hold: async () => {
        const end = Date.now() + SLOW;
        for (;;) {
          cut2.seen = await serverOffset(req.path).catch((e) => { cutError = e.message; return -1; });
          if (cut2.seen > at || cut2.seen < 0 || Date.now() > end) return;
          await new Promise((r) => { setTimeout(r, 25); });
        }
      },
    };
  }
  return undefined;
};
const proxy = await cutProxy({
  ...TLS,
  host: new URL(URL0).hostname, port: Number(new URL(URL0).port), decide,
  problem: (x) => t.problems.push(x),
  note: (x) => { if (/ \/api\/v1\/uploads\//.test(x)) wire.push(x); },
});
const URL1 = `https://127.0.0.1:${proxy.port}`;

try {
  // ---- log in
  expect('GET', /^\/api\/v1\/session$/, 401);
  await page.goto(`${URL1}/`);
  await page.getByRole('heading', { name: 'Log in to quarklink' }).waitFor();
  await check('login');
  await page.getByLabel('User name').fill(env('QL_USER'));
  await page.getByLabel('Password').fill(env('QL_PASSWORD'));
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Projects' }).waitFor();
  await check('projects');

  // ---- a project, an enrollment token
  await page.getByLabel('Name', { exact: true }).fill(PROJECT);
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.getByRole('heading', { level: 1, name: `Devices of ${PROJECT}` }).waitFor();
  await go(`#/p/${PROJECT}/enrollment`, `Enrollment in ${PROJECT}`);
  await page.getByLabel('Name', { exact: true }).fill('factory');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = await page.locator('input.secret').inputValue();
  assert(/^\S{16,}$/.test(secret), 'the token secret is shown');
  // The configuration the page shows is what the agent runs with.
  const conf = await page.locator('pre[aria-label="Agent configuration"]').textContent();
  await page.getByRole('cell', { name: 'factory', exact: true }).waitFor();
  await check('enrollment');
  failIfProblems('project and token');

  // ---- the agent enrolls with it; the device appears without a reload
  await go(`#/p/${PROJECT}/devices`, `Devices of ${PROJECT}`);
  await page.evaluate(() => { window.qlNoReload = true; });
  handOver(handFile('agent.conf'), conf);
  handOver(handFile('token'), secret);
  const device = await waitFile(handFile('device'), SLOW);
  const serial = await waitFile(handFile('serial'), 5000);
  log(`ql-agent enrolled device ${device} (certificate ${serial})`);
  await page.locator(`tr[data-device="${device}"]`).waitFor({ timeout: SLOW });
  assert(await page.evaluate(() => window.qlNoReload === true), 'the device appeared without a page reload');
  await check('devices');

  // ---- tag it on its page
  await page.getByRole('link', { name: device }).click();
  await page.getByRole('heading', { level: 1, name: `Device ${device}` }).waitFor();
  await page.getByLabel('Tags', { exact: true }).fill('edge');
  await page.getByRole('button', { name: 'Save tags' }).click();
  await page.getByText('Tags saved.').waitFor();
  await page.getByText('This device was not the target of any deployment yet.').waitFor();

  // ---- upload 50 MiB; the connection is cut twice once past half (see
  // the proxy above): in the middle of a PATCH body, then after the whole
  // body of its retry went to the server but before its reply came back.
  await go(`#/p/${PROJECT}/images`, `Images of ${PROJECT}`);
  allowFailure('PATCH', /^\/api\/v1\/uploads\/[a-z2-7]+$/, 2);
  cutting = true;
  await page.getByLabel('Image name').fill('os');
  await page.getByLabel('Version', { exact: true }).fill('2.0');
  await page.getByLabel('Compatible hardware').fill('hw-a');
  await page.getByLabel('Image file').setInputFiles(IMAGE);
  await page.getByRole('button', { name: 'Upload' }).click();
  // Done, or an error shown next to the form (then the run fails at once).
  await page.getByText(/^Uploaded 50\.0 MiB in /).or(page.getByRole('alert').filter({ hasText: /./ })).waitFor({ timeout: 5 * SLOW });
  cutting = false;
  failIfProblems('the upload');
  log(`upload on the wire: ${wire.join(', ')}`);
  log(`the server's offset: ${cut1?.kept} after the cut in a body, ${cut2?.seen} while it stored the retry`);
  assert(!cutError, `the cuts: ${cutError}`);
  assert(cut1 && cut2, `the upload was cut twice past half: ${wire.join(', ')}`);
  assert(wire.filter((x) => x.startsWith('POST /api/v1/uploads/ ')).length === 1, `one upload was created, then resumed: ${wire.join(', ')}`);
  const patches = wire.filter((x) => x.startsWith('PATCH ') && x.includes(' -> '));
  assert(patches.filter((x) => / at 0 -> /.test(x)).length === 1, `no PATCH started again from 0: ${patches.join(', ')}`);
  // The server stores a PATCH once its whole body is in (in pieces of up
  // to 4 MiB): a body cut half way leaves the offset where the previous
  // PATCH ended; nothing of the partial body counts.
  assert(wire.some((x) => x.endsWith(`-> 204 ${cut1.at}`)), `the PATCH before the first cut ended at ${cut1.at}: ${wire.join(', ')}`);
  assert(cut1.kept === cut1.at, `after the cut in the body the server's offset is the previous PATCH's end ${cut1.at}: ${cut1.kept}`);
  // tus-js-client asked the server and sent the same chunk again from there.
  assert(cut2.at === cut1.kept, `the retry started at the server's offset ${cut1.kept}: ${cut2.at}`);
  // The retry's body was all with the server, which was storing it when
  // the cut came (cut2.seen: its offset then, past the previous PATCH's
  // end). What it committed stays: the piece in flight at the cut may still
  // land, so the offset the client gets from HEAD after the cut is at least
  // that, at most the PATCH's end, and the upload goes on from exactly there.
  assert(cut2.seen > cut2.at && cut2.seen <= cut2.at + cut2.length, `before the second cut the server had committed past ${cut2.at}: ${cut2.seen}`);
  const after2 = wire.slice(wire.findIndex((x) => x.includes('cut after the whole body')) + 1);
  const head2 = after2.find((x) => x.startsWith('HEAD '));
  const kept2 = head2 ? Number(head2.split(' ').at(-1)) : NaN;
  assert(head2 && / -> 200 \d+$/.test(head2) && kept2 >= cut2.seen && kept2 <= cut2.at + cut2.length,
    `after the second cut the client asked the server's offset, which kept at least ${cut2.seen}: ${after2.join(', ')}`);
  const next2 = after2.find((x) => x.startsWith('PATCH '));
  assert(next2 && next2.includes(` at ${kept2} -> 204 `), `the upload resumed from the server's offset ${kept2}, not from the client's own ${cut2.at}: ${after2.join(', ')}`);
  assert(patches.at(-1).endsWith(`-> 204 ${size}`), `the last PATCH completed the upload: ${patches.at(-1)}`);
  const imgs = await (await t.browser.request.get(`${URL0}/api/v1/projects/${PROJECT}/images`)).json();
  const img = imgs.items.find((i) => i.name === 'os' && i.version === '2.0');
  assert(img && img.size === size && img.sha256 === sha256, `the server's image is the file (${size} bytes, SHA-256 ${sha256}): ${JSON.stringify(img)}`);
  await row('os', '2.0').getByText('uploaded', { exact: true }).waitFor();

  // ---- a second upload, the page reloaded in the middle of a PATCH: after
  // the reload the page names the unfinished upload, and choosing the same
  // file again resumes it from the server's offset (one creation)
  let held;
  let reloaded;
  reload = { held: () => {} };
  const isHeld = new Promise((r) => { held = r; });
  reload.held = held;
  reload.reloaded = new Promise((r) => { reloaded = r; });
  const wire0 = wire.length;
  const fillUpload = async () => {
    await page.getByLabel('Image name').fill('os');
    await page.getByLabel('Version', { exact: true }).fill('2.1');
    await page.getByLabel('Compatible hardware').fill('hw-a');
    await page.getByLabel('Image file').setInputFiles(IMAGE);
    await page.getByRole('button', { name: 'Upload' }).click();
  };
  await fillUpload();
  await isHeld;
  await page.reload();
  reloaded();
  await page.getByRole('heading', { level: 1, name: `Images of ${PROJECT}` }).waitFor();
  await page.getByText(`Unfinished upload: os 2.1 (${path.basename(IMAGE)}). Choose the same file with the same name and version to continue.`).waitFor();
  const wire1 = wire.length;
  await fillUpload();
  await page.getByText(/^Uploaded 50\.0 MiB in /).or(page.getByRole('alert').filter({ hasText: /./ })).waitFor({ timeout: 5 * SLOW });
  failIfProblems('the upload across a reload');
  const second = wire.slice(wire0);
  const resumed = wire.slice(wire1).filter((x) => x.startsWith(`HEAD ${reload.path} `) || x.startsWith(`PATCH ${reload.path} `) || x.startsWith('POST '));
  log(`upload across a reload: held at ${reload.at}, stored ${reload.stored}; after the reload: ${resumed.join(', ')}`);
  assert(!cutError, `the reload: ${cutError}`);
  assert(reload.stored > reload.at, `the held PATCH was stored before the reload: ${reload.stored}`);
  assert(second.filter((x) => x.startsWith('POST /api/v1/uploads/ ')).length === 1, `one creation across the reload: ${second.join(', ')}`);
  assert(resumed[0] === `HEAD ${reload.path} -> 200 ${reload.stored}`, `after the reload the page asked the server's offset first: ${resumed.join(', ')}`);
  assert(resumed[1]?.startsWith(`PATCH ${reload.path} at ${reload.stored} -> 204 `), `and went on from it: ${resumed.join(', ')}`);
  assert(resumed.at(-1) === `PATCH ${reload.path} at ${resumed.at(-1).split(' ')[3]} -> 204 ${size}`, `the last PATCH completed it: ${resumed.join(', ')}`);
  const imgs2 = await (await t.browser.request.get(`${URL0}/api/v1/projects/${PROJECT}/images`)).json();
  const img2 = imgs2.items.find((i) => i.name === 'os' && i.version === '2.1');
  assert(img2 && img2.size === size && img2.sha256 === sha256, `the image uploaded across the reload is the file: ${JSON.stringify(img2)}`);
  await row('os', '2.1').getByText('uploaded', { exact: true }).waitFor();
  assert(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('tus::')).length) === 0, 'no unfinished upload is remembered once it is done');

  // ---- sign it (confirmed in a dialog); the root certificate link works
  await page.getByRole('button', { name: 'Sign os 2.0' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByRole('heading', { name: 'Sign os 2.0?' }).waitFor();
  await check('sign-dialog');
  await dlg.getByRole('button', { name: 'Sign', exact: true }).click();
  await row('os', '2.0').getByText('signed', { exact: true }).waitFor({ timeout: SLOW });
  await page.getByRole('button', { name: 'Signature of os 2.0' }).waitFor();
  allowFailure('GET', /^\/api\/v1\/pki\/root\.crt$/); // a download ends the request as a page load
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'root.crt' }).click()]);
  await dl.saveAs(handFile('root-ui.crt'));
  await check('images');
  failIfProblems('upload and sign');

  // ---- deploy to the tag
  await go(`#/p/${PROJECT}/deployments`, `Deployments of ${PROJECT}`);
  await page.getByLabel('Image', { exact: true }).selectOption({ label: 'os 2.0' });
  await page.getByLabel('Target tag').fill('edge');
  await check('deployments');
  await page.getByRole('button', { name: 'Create deployment' }).click();
  await page.getByRole('heading', { level: 1, name: /^Deployment #\d+: os 2\.0$/ }).waitFor();
  const dep = (await page.getByRole('heading', { level: 1 }).textContent()).match(/#(\d+)/)[1];
  await row(device, 'pending').waitFor();

  // ---- the agent installs it; the deployment shows it (polled)
  handOver(handFile('deployed'), dep);
  await waitFile(handFile('installed'), 5 * SLOW);
  await row(device, 'installed').waitFor({ timeout: SLOW });
  await page.getByText(/^All groups — 1 device: installed 1$/).waitFor({ timeout: SLOW });
  await check('deployment');
  // ... and so does the device's update history
  await page.getByRole('link', { name: device }).click();
  await page.getByRole('heading', { level: 1, name: `Device ${device}` }).waitFor();
  const hist = page.locator('section', { has: page.getByRole('heading', { name: 'Update history' }) });
  await hist.locator('tbody tr').filter({ has: page.getByRole('cell', { name: `#${dep}`, exact: true }) })
    .filter({ has: page.getByRole('cell', { name: 'os 2.0', exact: true }) })
    .getByText('installed', { exact: true }).waitFor();
  await page.locator('dl.facts dd').filter({ hasText: /^2\.0$/ }).waitFor(); // installed version

  // ---- revoke its certificate with a reason
  await page.getByRole('button', { name: `Revoke certificate ${serial}` }).click();
  await page.getByRole('dialog').getByLabel('Reason').selectOption('keyCompromise');
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('cell', { name: /keyCompromise/ }).waitFor();
  await check('device');
  await go(`#/p/${PROJECT}/certificates`, `Certificates of ${PROJECT}`);
  await page.getByRole('link', { name: serial }).waitFor();
  await check('certificates');
  failIfProblems('deploy, install and revoke');

  // ---- all of it in the audit log, and the chain verifies
  await go('#/audit', 'Audit log');
  const filters = page.getByRole('search', { name: 'Filter the audit log' });
  await page.getByText(/Chain verified: \d+ rows intact/).waitFor();
  const steps = [
    ['login', 'user:admin'],
    ['project.create', 'user:admin'],
    ['enrollment_token.create', 'user:admin'],
    ['device.enroll', `device:${device}`, serial],
    ['device.tags', 'user:admin', device],
    ['upload.create', 'user:admin'],
    ['image.upload', 'user:admin'],
    ['image.sign', 'user:admin'],
    ['deployment.create', 'user:admin', dep],
    ['deployment.installed', `device:${device}`, dep],
    ['certificate.revoke', 'user:admin', serial],
  ];
  for (const [action, actor, object] of steps) {
    await filters.getByLabel('Action starts with').fill(action);
    await filters.getByRole('button', { name: 'Apply' }).click();
    const cells = object ? [action, actor, object] : [action, actor];
    await row(...cells).first().waitFor();
    log(`audit: ${cells.join(' ')}`);
  }
  await filters.getByLabel('Action starts with').fill('');
  await filters.getByLabel('Project').fill(PROJECT);
  await filters.getByRole('button', { name: 'Apply' }).click();
  await row('deployment.installed', `device:${device}`).waitFor();
  await check('audit');

  failIfProblems('the audit log');
  handOver(handFile('done'), JSON.stringify({ device, serial, deployment: dep, upload: wire, axe: t.axe, writes: t.writes.length }, null, 1));
  log(`done: ${Object.keys(t.axe).length} pages checked, ${t.writes.length} changes with CSRF token`);
} catch (e) {
  await t.fail(e);
}
await t.browser.close();
proxy.close();
