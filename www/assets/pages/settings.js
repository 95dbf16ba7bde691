// settings.js: a project's enrollment policy, TPM attestation (the PCRs
// quoted, whether a tampered device is refused, the trusted TPM
// manufacturer CAs), certificate validity, name, and deletion (confirmed).
// The CAs live here rather than on the enrollment page: they are trust
// anchors that only admins change, like the rest of this page, and they
// mean something only next to the tpm policy they serve.
import { api, enc, qs } from '../api.js';
import { h, field, checkbox, errorSlot, showError, onSubmit, notice, pageHeader, section, confirmDialog, actionButton, table, fmtTime, clear } from '../dom.js';
import { navigate, isAdmin } from '../app.js';

const POLICIES = ['token', 'allowlist', 'approval', 'tpm'];
const PCR_MAX = 23;

// "0-7, 10" -> [0..7, 10]; a range or number outside 0-23 or any other
// text is refused here, so the message names what was typed.
export function parsePcrs(text) {
  const out = new Set();
  for (const part of String(text).split(/[\s,]+/).filter(Boolean)) {
    const m = /^(\d{1,2})(?:-(\d{1,2}))?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m && m[2] !== undefined ? Number(m[2]) : lo;
    if (!m || hi > PCR_MAX || lo > hi) {
      throw new Error(`PCRs: "${part}" is not a PCR number 0-${PCR_MAX} or a range like 0-7`);
    }
    for (let i = lo; i <= hi; i += 1) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

// [0..7, 10] -> "0-7, 10": the form shows what the server stored.
export function fmtPcrs(list) {
  const s = [...list].sort((a, b) => a - b);
  const out = [];
  for (let i = 0; i < s.length; i += 1) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j += 1;
    out.push(j > i ? `${s[i]}-${s[j]}` : String(s[i]));
    i = j;
  }
  return out.join(', ');
}

export async function render(main, { project }) {
  const p = await api('GET', `/projects/${enc(project)}`);
  main.append(pageHeader(`Settings of ${p.name}`));
  const err = errorSlot();
  const saved = h('div', { 'aria-live': 'polite' });
  // The API lets only admins change or delete a project.
  const ro = !isAdmin();
  const name = h('input', { name: 'name', value: p.name, required: true, pattern: '[a-z0-9][a-z0-9\\-]{0,62}', disabled: ro });
  const days = h('input', { name: 'days', type: 'number', min: 1, max: 3650, value: String(p.cert_validity_days), required: true, disabled: ro });
  const pcrs = h('input', { name: 'pcrs', value: fmtPcrs(p.attestation.pcrs), autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. 0-7', disabled: ro });
  const form = h('form', { class: 'grid' },
    field('Name', name, 'Certificates name the project by a fixed id, so renaming is safe.'),
    field('Certificate validity (days)', days),
    h('fieldset', { disabled: ro }, h('legend', {}, 'Enrollment policy'),
      checkbox('Enrollment tokens', p.policy.token, { name: 'token' }),
      checkbox('Allowlist of device IDs', p.policy.allowlist, { name: 'allowlist' }),
      checkbox('Manual approval of unknown devices', p.policy.approval, { name: 'approval' }),
      checkbox('TPM attestation', p.policy.tpm, { name: 'tpm' }),
      h('small', { class: 'hint' }, 'TPM attestation is a gate on top of the others: with it on, every device must also prove its TPM; alone it lets any device with a trusted TPM enroll.')),
    h('fieldset', { disabled: ro }, h('legend', {}, 'Attestation'),
      field('PCRs quoted', pcrs, 'SHA-256 bank, numbers 0-23 and ranges, comma-separated; empty: devices are asked for no quotes.'),
      checkbox('Refuse updates and re-enrollment to tampered devices', p.attestation.refuse_tampered, { name: 'refuse' })),
    err, saved, ro ? null : h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Save')));
  onSubmit(form, err, async (fd) => {
    saved.replaceChildren();
    // The API refuses this too (422); say so before the request.
    if (!POLICIES.some((k) => fd.has(k))) throw new Error('at least one enrollment policy must be on');
    const body = {
      cert_validity_days: Number(fd.get('days')),
      policy: Object.fromEntries(POLICIES.map((k) => [k, fd.has(k)])),
      attestation: { pcrs: parsePcrs(fd.get('pcrs')), refuse_tampered: fd.has('refuse') },
    };
    if (fd.get('name') !== p.name) body.name = fd.get('name');
    const r = await api('PATCH', `/projects/${enc(p.name)}`, body);
    pcrs.value = fmtPcrs(r.attestation.pcrs);
    saved.replaceChildren(notice('Saved.', 'ok'));
    if (r.name !== p.name) navigate(`#/p/${enc(r.name)}/settings`);
  });
  form.addEventListener('input', () => saved.replaceChildren());
  main.append(section('Project', ro ? notice('Only admins change a project\'s settings.', 'info') : null, form));
  main.append(await tpmCas(p.name));
  if (ro) return;
  const derr = errorSlot();
  main.append(section('Delete project',
    h('p', {}, 'Deleting a project removes its devices, certificates, tokens and images. The API refuses while it still has devices.'),
    derr,
    actionButton('Delete project…', async () => {
      if (!await confirmDialog(`Delete ${p.name}?`, 'This cannot be undone.', { confirm: 'Delete', danger: true })) return;
      await api('DELETE', `/projects/${enc(p.name)}`);
      navigate('#/projects');
    }, { class: 'danger', slot: derr })));
}

// The project's TPM manufacturer CAs: listed for everyone, added (pasted
// or from a file) and deleted by admins (the API's roles).
async function tpmCas(project) {
  const base = `/projects/${enc(project)}/tpm-cas`;
  const lerr = errorSlot();
  const list = h('div');
  const load = async () => {
    const r = await api('GET', `${base}${qs({ limit: 100 })}`);	// at most 64 per project
    clear(list).append(table([
      { label: 'Subject', value: (c) => c.subject },
      { label: 'SHA-256', value: (c) => h('span', { class: 'mono' }, c.sha256) },
      { label: 'Added', value: (c) => fmtTime(c.created_at) },
      { label: 'Actions', value: (c) => (isAdmin() ? deleteCa(base, c, load, lerr) : null) },
    ], r.items, { caption: 'TPM manufacturer CAs of this project', empty: 'No CAs of this project (the installation\'s, [attest] manufacturer_cas, are trusted too).' }));
  };
  const sec = section('TPM manufacturer CAs',
    h('p', {}, 'With TPM attestation on, a device\'s EK certificate must chain to one of these or to the installation\'s CAs.'),
    lerr, list);
  if (isAdmin()) sec.append(addCaForm(base, load));
  await load().catch((e) => showError(lerr, e));
  return sec;
}

function deleteCa(base, c, load, slot) {
  return actionButton('Delete', async () => {
    if (!await confirmDialog('Stop trusting this CA?', `EK certificates will no longer chain to "${c.subject}"; devices already attested stay attested.`,
      { confirm: 'Delete', danger: true })) return;
    await api('DELETE', `${base}/${c.id}`);
    await load();
  }, { class: 'small danger', slot, 'aria-label': `Delete CA ${c.subject}` });
}

function addCaForm(base, load) {
  const ferr = errorSlot();
  const result = h('div', { 'aria-live': 'polite' });
  const text = h('textarea', { name: 'pem', rows: 5, spellcheck: 'false', placeholder: '-----BEGIN CERTIFICATE-----' });
  const file = h('input', { name: 'file', type: 'file', accept: '.pem,.crt,.cer,application/x-pem-file' });
  const form = h('form', { class: 'grid' },
    field('CA certificate (PEM)', text, 'One CA certificate: paste it or choose a file.'),
    field('Certificate file', file), ferr, result,
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Add CA')));
  onSubmit(form, ferr, async () => {
    result.replaceChildren();
    const f = file.files[0];
    if (f && text.value.trim()) throw new Error('paste a certificate or choose a file, not both');
    if (f && f.size > 64 * 1024) throw new Error('the file is larger than 64 KiB, the server\'s limit for one certificate');
    const pem = f ? await f.text() : text.value;
    if (!pem.trim()) throw new Error('paste a PEM certificate or choose a file');
    const c = await api('POST', base, pem, { type: 'application/x-pem-file' });
    form.reset();
    result.replaceChildren(notice(`Added ${c.subject}.`, 'ok'));
    await load();
  });
  return h('div', {}, h('h3', {}, 'Add a CA'), form);
}
