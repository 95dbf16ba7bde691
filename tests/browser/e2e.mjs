// e2e.mjs: a release through the web UI, with the real agent: log in,
// create a project and an enrollment token, see the device that ql-agent
// enrolls with it (run by tests/integration/t_ui_e2e.sh) appear without a
// reload, tag it, upload a 50 MiB image with the connection cut half way
// (the upload resumes from the server's offset), sign it, deploy it to the
// tag, see the agent's install in the deployment and in the device's
// update history, revoke the device's certificate, and find each step in
// the audit log. Every main page is screenshot and checked by axe; any
// console error or failed request that is not the cut upload fails.
import path from 'node:path';
import { statSync } from 'node:fs';
import { open, env, log, assert, waitFile, handOver } from './lib.mjs';

const URL0 = env('QL_URL');
const DIR = env('QL_UI_DIR');
const OUT = env('QL_UI_OUT');
const IMAGE = env('QL_IMAGE');
const PROJECT = 'e2e';
const SLOW = 120000; // chromium on a busy 2-core machine: waits, not speed asserts

const t = await open({ dir: DIR, out: OUT, nm: env('QL_NODE_MODULES'), timeout: 60000 });
const { page, expect, allowFailure, check, go, failIfProblems } = t;
const handFile = (name) => path.join(DIR, name);
const row = (...cells) => cells.reduce((l, c) => l.filter({ has: page.getByRole('cell', { name: c, exact: true }) }), page.locator('tbody tr'));

try {
  // ---- log in
  expect('GET', /^\/api\/v1\/session$/, 401);
  await page.goto(`${URL0}/`);
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
  await page.getByRole('cell', { name: 'factory', exact: true }).waitFor();
  await check('enrollment');
  failIfProblems('project and token');

  // ---- the agent enrolls with it; the device appears without a reload
  await go(`#/p/${PROJECT}/devices`, `Devices of ${PROJECT}`);
  await page.evaluate(() => { window.qlNoReload = true; });
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

  // ---- upload 50 MiB; the connection drops once the upload is past half
  await go(`#/p/${PROJECT}/images`, `Images of ${PROJECT}`);
  const size = statSync(IMAGE).size;
  const tus = []; // what the upload did, in order
  let cuts = 0;
  const CUTS = 2; // the first PATCH past half, and its first retry
  allowFailure('PATCH', /^\/api\/v1\/uploads\/[a-z2-7]+$/, CUTS);
  await page.route('**/api/v1/uploads/**', async (route) => {
    const r = route.request();
    const off = Number(r.headers()['upload-offset']);
    if (r.method() === 'PATCH' && off > size / 2 && cuts < CUTS) {
      cuts += 1;
      tus.push(`cut PATCH ${off}`);
      await route.abort('connectionreset');
      return;
    }
    await route.continue();
  });
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/api/v1/uploads/')) return;
    const m = r.request().method();
    if (m === 'HEAD') tus.push(`HEAD ${r.headers()['upload-offset']}`);
    if (m === 'PATCH') tus.push(`PATCH ${r.request().headers()['upload-offset']} -> ${r.headers()['upload-offset']}`);
    if (m === 'POST') tus.push('POST');
  });
  await page.getByLabel('Image name').fill('os');
  await page.getByLabel('Version', { exact: true }).fill('2.0');
  await page.getByLabel('Compatible hardware').fill('hw-a');
  await page.getByLabel('Image file').setInputFiles(IMAGE);
  await page.getByRole('button', { name: 'Upload' }).click();
  // Done, or an error shown next to the form (then the run fails at once).
  await page.getByText(/^Uploaded 50\.0 MiB in /).or(page.getByRole('alert').filter({ hasText: /./ })).waitFor({ timeout: 5 * SLOW });
  failIfProblems('the upload');
  await page.unroute('**/api/v1/uploads/**');
  log(`upload: ${tus.join(', ')}`);
  assert(cuts === CUTS, `the upload was cut ${CUTS} times past half (${cuts})`);
  assert(tus.filter((x) => x === 'POST').length === 1, `one upload was created, then resumed: ${tus.join(', ')}`);
  const firstCut = tus.indexOf(tus.find((x) => x.startsWith('cut')));
  const after = tus.slice(firstCut);
  const head = after.find((x) => x.startsWith('HEAD'));
  assert(head && Number(head.split(' ')[1]) > 0, `after the cut the client asked the server's offset and it was past 0: ${after.join(', ')}`);
  const patches = after.filter((x) => x.startsWith('PATCH'));
  assert(patches.length > 0 && patches.every((x) => Number(x.split(' ')[1]) >= Number(head.split(' ')[1])), `the resumed PATCHes continue from the server's offset: ${after.join(', ')}`);
  assert(patches.at(-1).endsWith(`-> ${size}`), `the last PATCH completed the upload: ${patches.at(-1)}`);
  await row('os', '2.0').getByText('uploaded', { exact: true }).waitFor();

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
  handOver(handFile('done'), JSON.stringify({ device, serial, deployment: dep, upload: tus, axe: t.axe, writes: t.writes.length }, null, 1));
  log(`done: ${Object.keys(t.axe).length} pages checked, ${t.writes.length} changes with CSRF token`);
} catch (e) {
  await t.fail(e);
}
await t.browser.close();
