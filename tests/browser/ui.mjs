// ui.mjs: the web UI end to end in headless Chromium (playwright-core and
// @axe-core/playwright from npm, Debian's /usr/bin/chromium), driven by
// tests/integration/t_ui.sh against a real quarklinkd, PostgreSQL and
// SoftHSM. Steps that need the shell (an EST enrollment with curl) are
// handed over through files in QL_UI_DIR. Any console error, page error,
// failed request or HTTP error that a step did not expect fails the run.
import { writeFileSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { open, env, log, assert, waitFile } from './lib.mjs';

const URL0 = env('QL_URL');
const DIR = env('QL_UI_DIR');
const OUT = env('QL_UI_OUT');
const HAS_IMAGES = process.env.QL_HAS_IMAGES === '1';
const HAS_DEPLOY = process.env.QL_HAS_DEPLOY === '1';

const t = await open({ dir: DIR, out: OUT, nm: env('QL_NODE_MODULES') });
const { browser, page, writes, expect, check, go, failIfProblems } = t;
const axeResults = t.axe;
// What the server says, with the browser's session cookie but not through
// the page (so the page's own requests stay the ones checked).
const getJson = async (p) => {
  const r = await browser.request.get(`${URL0}/api/v1${p}`);
  assert(r.ok(), `GET ${p}: ${r.status()}`);
  return r.json();
};
const policyOf = (p) => ['token', 'allowlist', 'approval', 'tpm'].filter((k) => p.policy[k]).join(',');

try {
  // ---- login: a wrong password is shown next to the form; the keyboard alone logs in
  expect('GET', /^\/api\/v1\/session$/, 401);
  await page.goto(`${URL0}/`);
  await page.getByRole('heading', { name: 'Log in to quarklink' }).waitFor();
  await check('login');
  expect('POST', /^\/api\/v1\/login$/, 401);
  await page.getByLabel('User name').fill(env('QL_USER'));
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'wrong user name or password' }).waitFor();
  await page.getByLabel('User name').focus();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Control+A');
  await page.keyboard.type(env('QL_PASSWORD'));
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Projects' }).waitFor();
  failIfProblems('login');

  // ---- create a project with the form
  await page.getByLabel('Name', { exact: true }).fill('ui');
  await page.getByLabel('Allowlist of device IDs').check();
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.getByRole('heading', { level: 1, name: 'Devices of ui' }).waitFor();
  await check('devices-empty');
  await go('#/projects', 'Projects');
  await page.getByRole('link', { name: 'ui', exact: true }).waitFor();
  await check('projects');

  // ---- an invalid change shows the API's message next to the form
  await go('#/p/ui/settings', 'Settings of ui');
  expect('PATCH', /^\/api\/v1\/projects\/ui$/, 409);
  await page.getByLabel('Name', { exact: true }).fill('big');
  await page.getByRole('button', { name: 'Save' }).click();
  const perr = await page.getByRole('alert').filter({ hasText: /./ }).first().textContent();
  log(`refused rename shown as: ${perr}`);
  assert(/exists|conflict|duplicate/.test(perr), `the API's reason for refusing a rename to an existing name: ${perr}`);
  await page.getByLabel('Name', { exact: true }).fill('ui');
  await page.getByLabel('Enrollment tokens').uncheck();
  await page.getByLabel('Allowlist of device IDs').uncheck();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('alert').filter({ hasText: 'at least one enrollment policy must be on' }).waitFor();
  await page.getByLabel('Enrollment tokens').check();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  await check('settings');

  // ---- TPM attestation counts as a policy: alone it is saved
  const tpm = page.getByLabel('TPM attestation', { exact: true });
  assert(!await tpm.isChecked(), 'tpm is off in a new project');
  await tpm.check();
  await page.getByLabel('Enrollment tokens').uncheck();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  let proj = await getJson('/projects/ui');
  assert(policyOf(proj) === 'tpm', `server policy after tpm alone was saved: ${policyOf(proj)}`);
  // the enrollment page names it; back in Settings the form is read anew
  await go('#/p/ui/enrollment', 'Enrollment in ui');
  await page.getByText('Policy: tpm. Change it in Settings.').waitFor();
  await go('#/p/ui/settings', 'Settings of ui');
  assert(await tpm.isChecked() && !await page.getByLabel('Enrollment tokens').isChecked(), 'the reloaded form shows tpm alone');
  // the PCRs: refused in the form when not 0-23, stored as numbers
  assert(await page.getByLabel('PCRs quoted').inputValue() === '0-7', 'default PCRs shown as 0-7');
  await page.getByLabel('PCRs quoted').fill('0-3, 24');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('alert').filter({ hasText: 'PCRs: "24" is not a PCR number 0-23' }).waitFor();
  await page.getByLabel('PCRs quoted').fill('10, 0-3 7');
  await page.getByLabel('Refuse updates and re-enrollment to tampered devices').uncheck();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  proj = await getJson('/projects/ui');
  assert(JSON.stringify(proj.attestation) === JSON.stringify({ pcrs: [0, 1, 2, 3, 7, 10], refuse_tampered: false }),
    `server attestation after the save: ${JSON.stringify(proj.attestation)}`);
  assert(await page.getByLabel('PCRs quoted').inputValue() === '0-3, 7, 10', 'the PCRs as the server stored them');
  await check('settings-attestation');
  // back to what the EST enrollment below needs (tpm is a gate ANDed with token)
  await page.getByLabel('Enrollment tokens').check();
  await tpm.uncheck();
  await page.getByLabel('PCRs quoted').fill('0-7');
  await page.getByLabel('Refuse updates and re-enrollment to tampered devices').check();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  proj = await getJson('/projects/ui');
  assert(policyOf(proj) === 'token' && proj.attestation.refuse_tampered && proj.attestation.pcrs.join() === '0,1,2,3,4,5,6,7',
    `server state restored: ${JSON.stringify(proj)}`);

  // ---- TPM manufacturer CAs: not a CA refused with the server's reason next to the form, a CA from a file, deleted
  const caForm = page.locator('form').filter({ has: page.getByRole('button', { name: 'Add CA' }) });
  expect('POST', /^\/api\/v1\/projects\/ui\/tpm-cas$/, 400);
  await caForm.getByLabel('CA certificate (PEM)').fill(readFileSync(env('QL_TPM_NOT_CA'), 'utf8'));
  await caForm.getByRole('button', { name: 'Add CA' }).click();
  await caForm.getByRole('alert').filter({ hasText: 'the certificate is not a CA certificate' }).waitFor();
  await caForm.getByLabel('CA certificate (PEM)').fill('');
  await caForm.getByLabel('Certificate file').setInputFiles(env('QL_TPM_CA'));
  await caForm.getByRole('button', { name: 'Add CA' }).click();
  await caForm.getByText(/^Added .*UI Test EK ca/).waitFor();
  assert(await caForm.getByRole('alert').isHidden(), 'the error is gone after a good add');
  const caSha = new X509Certificate(readFileSync(env('QL_TPM_CA'))).fingerprint256.replace(/:/g, '').toLowerCase();
  await page.getByRole('cell', { name: caSha }).waitFor();
  const cas = await getJson('/projects/ui/tpm-cas');
  assert(cas.items.length === 1 && cas.items[0].sha256 === caSha, `server lists the CA: ${JSON.stringify(cas)}`);
  await check('settings-tpm-cas');
  await page.getByRole('button', { name: /^Delete CA .*UI Test EK ca/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByText(/^No CAs of this project/).waitFor();
  assert((await getJson('/projects/ui/tpm-cas')).items.length === 0, 'the CA is deleted on the server');
  failIfProblems('the attestation settings');

  // ---- an enrollment token, shown once with the ql-agent command line
  await go('#/p/ui/enrollment', 'Enrollment in ui');
  await page.getByLabel('Name', { exact: true }).fill('factory line 1');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = await page.locator('input.secret').inputValue();
  assert(/^\S{16,}$/.test(secret), `token secret looks like a secret: ${secret}`);
  const cmd = await page.locator('pre[data-cmd="enroll"]').textContent();
  assert(cmd === `ql-agent -c /etc/ql-agent.conf enroll --token '${secret}'`, `enroll command line: ${cmd}`);
  await page.getByRole('button', { name: 'Copy command' }).click();
  await page.getByText('Copied').first().waitFor();
  await page.getByRole('cell', { name: 'factory line 1', exact: true }).waitFor();
  // the allowlist from pasted text (and a CSV-like line)
  await page.getByLabel('Device IDs').fill(`id,comment\n${'a'.repeat(32)},one\n${'b'.repeat(32)},two`);
  await page.getByRole('button', { name: 'Add to allowlist' }).click();
  await page.getByText('Added 2, already present 0').waitFor();
  await page.getByText('a'.repeat(32)).waitFor();
  await check('enrollment');

  // ---- a device enrolled by curl (EST) appears in the table without a reload
  await go('#/p/ui/devices', 'Devices of ui');
  await page.evaluate(() => { window.qlNoReload = true; });
  writeFileSync(path.join(DIR, 'token'), secret);
  const device = await waitFile(path.join(DIR, 'device'), 60000);
  const serial = await waitFile(path.join(DIR, 'serial'), 5000);
  const ek = await waitFile(path.join(DIR, 'ek'), 5000);
  log(`shell enrolled device ${device} (certificate ${serial}), made it tampered`);
  const row = page.locator(`tr[data-device="${device}"]`);
  await row.waitFor({ timeout: 15000 });
  assert(await page.evaluate(() => window.qlNoReload === true), 'the page was not reloaded');
  // the shell made it tampered: the list says so next to its status
  await row.getByRole('cell').nth(2).getByText('tampered', { exact: true }).waitFor();
  await check('devices');

  // ---- its page: the attestation facts; accepting the current measurements
  await page.getByRole('link', { name: device }).click();
  await page.getByRole('heading', { level: 1, name: `Device ${device}` }).waitFor();
  const att = page.locator('section').filter({ has: page.getByRole('heading', { level: 2, name: 'Attestation', exact: true }) });
  await att.getByText(ek, { exact: true }).waitFor();
  const facts = await att.locator('dl.facts').innerText();
  assert(/State\s+tampered/.test(facts) && /AK name\s+000b[0-9a-f]{64}/.test(facts) && /Differing PCRs\s+7\b/.test(facts),
    `attestation facts of a tampered device: ${facts}`);
  await check('device-tampered');
  await att.getByRole('button', { name: 'Accept current measurements' }).click();
  await page.getByRole('dialog').getByRole('heading', { name: 'Accept current measurements?' }).waitFor();
  await check('accept-dialog');
  await page.getByRole('dialog').getByRole('button', { name: 'Accept', exact: true }).click();
  await att.locator('dl.facts').getByText('trusted', { exact: true }).waitFor();
  assert(await att.getByRole('button', { name: 'Accept current measurements' }).count() === 0, 'no accept button on a trusted device');
  const dev = await getJson(`/projects/ui/devices/${device}`);
  assert(dev.attestation.state === 'trusted' && dev.attestation.differ.length === 0, `server attestation after accept: ${JSON.stringify(dev.attestation)}`);
  failIfProblems('the accept');

  // ---- revoking its certificate with a reason
  await page.getByRole('button', { name: `Revoke certificate ${serial}` }).click();
  await page.getByRole('dialog').getByLabel('Reason').selectOption('keyCompromise');
  await check('revoke-dialog');
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('cell', { name: /keyCompromise/ }).waitFor();
  await check('device');

  // ---- certificates: the revoked filter finds it; its detail page
  await go('#/p/ui/certificates', 'Certificates of ui');
  await page.getByRole('button', { name: 'Revoked' }).click();
  await page.getByRole('link', { name: serial }).waitFor();
  await check('certificates');
  await page.getByRole('link', { name: serial }).click();
  await page.getByRole('heading', { level: 1, name: `Certificate ${serial}` }).waitFor();
  await page.getByText('-----BEGIN CERTIFICATE-----', { exact: false }).waitFor();
  await check('certificate');

  // ---- the audit log has the revocation; the chain verifies
  await go('#/audit', 'Audit log');
  await page.getByText(/Chain verified: \d+ rows intact/).waitFor();
  await page.getByLabel('Action starts with').fill('certificate.revoke');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByRole('cell', { name: new RegExp(serial) }).first().waitFor();
  await check('audit');

  // ---- users and an API token (secret shown once)
  await go('#/users', 'Users and API tokens');
  await page.getByLabel('Name', { exact: true }).fill('ci-token');
  await page.getByRole('button', { name: 'Create API token' }).click();
  const apiSecret = await page.locator('input.secret').inputValue();
  assert(apiSecret.length >= 16, 'API token secret shown');
  await page.getByRole('cell', { name: 'ci-token', exact: true }).waitFor();
  await check('users');

  // ---- overview: the charts (uPlot, vendored) render
  await go('#/p/ui', 'Project ui');
  await page.locator('figure.chartbox canvas').nth(1).waitFor();
  const cap = await page.locator('figure.chartbox figcaption').first().textContent();
  assert(/Enrollments per day, last 30 days: [1-9]\d* in all/.test(cap), `enrollment chart counts the enrollment: ${cap}`);
  await check('overview');

  // ---- images and deployments: usable where the server has the API
  if (!HAS_IMAGES) { expect('GET', /^\/api\/v1\/projects\/ui\/images$/, 404, 2); }
  if (!HAS_DEPLOY) { expect('GET', /^\/api\/v1\/projects\/ui\/deployments$/, 404); }
  await go('#/p/ui/images', 'Images of ui');
  await page.getByRole('button', { name: 'Upload' }).waitFor();
  if (!HAS_IMAGES) await page.getByText('This server has no images API yet (404).').waitFor();
  await check('images');
  await go('#/p/ui/deployments', 'Deployments of ui');
  await page.getByRole('button', { name: 'Create deployment' }).waitFor();
  if (!HAS_DEPLOY) await page.getByText('This server has no deployments API yet (404).').waitFor();
  await check('deployments');
  failIfProblems('the main pages');

  // ---- 100,000 devices: the first page renders in under a second
  const t = [];
  for (let i = 0; i < 3; i += 1) {
    await go('#/projects', 'Projects');
    const t0 = await page.evaluate(() => { const now = performance.now(); location.hash = '#/p/big/devices'; return now; });
    await page.locator('table.devices tbody tr').nth(49).waitFor();
    const t1 = await page.evaluate(() => Number(document.getElementById('main').dataset.rendered));
    t.push(t1 - t0);
  }
  const rows = await page.locator('table.devices tbody tr').count();
  assert(rows === 50, `first page of the big project shows 50 rows (got ${rows})`);
  const best = Math.min(...t);
  log(`first page of 100000 devices rendered in ${t.map((x) => x.toFixed(0)).join(', ')} ms`);
  writeFileSync(path.join(DIR, 'render-ms'), `${t.map((x) => x.toFixed(1)).join(' ')}\n`);
  assert(t.every((x) => x < 1000), `first page under 1000 ms (got ${t.map((x) => x.toFixed(0)).join(', ')}; best ${best.toFixed(0)})`);
  // paging forward with the cursor and back
  await page.getByRole('button', { name: 'Next →' }).click();
  await page.getByText('Page 2', { exact: true }).waitFor();
  await page.getByRole('button', { name: '← Previous' }).click();
  await page.getByText('Page 1', { exact: true }).waitFor();
  // filter and search
  await page.getByLabel('Status').selectOption('pending');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('table.devices tbody tr').first().getByText('pending').waitFor();
  assert(await page.locator('table.devices tbody td:nth-child(3)').evaluateAll((tds) => tds.every((td) => td.textContent === 'pending')), 'status filter');
  await check('devices-100k');

  // ---- a narrow window
  await page.setViewportSize({ width: 390, height: 844 });
  await go('#/p/ui/devices', 'Devices of ui');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert(overflow <= 1, `no horizontal page scroll at 390 px (overflow ${overflow} px)`);
  await check('devices-narrow');
  await page.setViewportSize({ width: 1280, height: 900 });

  // ---- session expiry: back to the login form, with a message
  // the devices page's poll (also while the cookies are being cleared),
  // the certificates page and the session check may each meet the 401 first
  expect('GET', /^\/api\/v1\//, 401, 10);
  await browser.clearCookies();
  await page.evaluate(() => { location.hash = '#/p/ui/certificates'; });
  await page.getByText('Your session has expired or was ended. Please log in again.').waitFor();
  await page.getByRole('heading', { name: 'Log in to quarklink' }).waitFor();
  await check('login-expired');
  failIfProblems('the session expiry');

  // ---- an operator: devices can be handled, project settings only read
  // (the API lets only admins change a project)
  await page.getByLabel('User name').fill('oper');
  await page.getByLabel('Password').fill(env('QL_PASSWORD'));
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Projects' }).waitFor();
  await go('#/p/ui/settings', 'Settings of ui');
  await page.getByText('Only admins change a project\'s settings.').waitFor();
  assert(await page.getByRole('button', { name: 'Save' }).count() === 0, 'no Save button for an operator');
  assert(await page.getByLabel('TPM attestation').isDisabled(), 'the policy is read-only for an operator');
  assert(await page.getByRole('button', { name: 'Delete project…' }).count() === 0, 'no Delete for an operator');
  await check('settings-operator');
  failIfProblems('the operator');
  assert(writes.length >= 8, `the run made changes through the API (${writes.length})`);
  writeFileSync(path.join(DIR, 'done'), JSON.stringify({ axe: axeResults, writes: writes.length }, null, 1));
  log(`done: ${Object.keys(axeResults).length} pages checked, ${writes.length} changes with CSRF token`);
} catch (e) {
  await t.fail(e);
}
await browser.close();
