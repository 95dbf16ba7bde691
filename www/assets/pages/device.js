// device.js: one device: its state, its TPM attestation (tampered
// measurements accepted here), tags (edited in place), actions, its
// certificates (revocable here) and its update history (the deployments it
// is a target of, polled while shown).
import { api, enc, qs } from '../api.js';
import { h, field, errorSlot, showError, onSubmit, table, fmtTime, fmtAgo, badge, pageHeader, section, notice, clear, link, actionButton, confirmDialog } from '../dom.js';
import { canWrite, isAdmin, every } from '../app.js';
import { deviceActions } from './devices.js';
import { revokeButton } from './cert.js';

let historyTimer = null;	// one poll, also after a re-render (revoke, tags)

export async function render(main, { project, device }) {
  clearInterval(historyTimer);
  const path = `/projects/${enc(project)}/devices/${enc(device)}`;
  const d = await api('GET', path);
  const err = errorSlot();
  const info = h('dl', { class: 'facts' },
    h('dt', {}, 'Device ID'), h('dd', { class: 'mono' }, d.device_id),
    h('dt', {}, 'Label'), h('dd', {}, d.label || '—'),
    h('dt', {}, 'Status'), h('dd', {}, badge(d.status)),
    h('dt', {}, 'Enrolled'), h('dd', {}, fmtTime(d.created_at)),
    h('dt', {}, 'Last seen'), h('dd', {}, fmtAgo(d.last_seen)),
    h('dt', {}, 'Installed version'), h('dd', {}, d.installed_version || '—'),
    h('dt', {}, 'Current certificate'), h('dd', { class: 'mono' }, d.certificate
      ? h('a', { href: `#/p/${enc(project)}/certificates/${d.certificate.serial}` }, d.certificate.serial) : '—'));
  const reload = async () => { main.replaceChildren(); await render(main, { project, device }); };
  main.append(pageHeader(`Device ${d.device_id}`, deviceActions(project, d, reload, err)), err, section('Device', info));
  if (d.attestation && d.attestation.state !== 'none') main.append(attestation(path, d.attestation, reload));

  const terr = errorSlot();
  const saved = h('div', { 'aria-live': 'polite' });
  const tags = h('input', { name: 'tags', value: d.tags.join(', '), autocomplete: 'off', disabled: !canWrite() });
  const tform = h('form', { class: 'inline' }, field('Tags', tags, 'Comma-separated; letters, digits and . _ : -'), terr, saved,
    canWrite() ? h('button', { type: 'submit' }, 'Save tags') : null);
  onSubmit(tform, terr, async (fd) => {
    const list = String(fd.get('tags')).split(',').map((s) => s.trim()).filter(Boolean);
    const r = await api('PUT', `${path}/tags`, { tags: list });
    tags.value = r.tags.join(', ');
    saved.replaceChildren(notice('Tags saved.', 'ok'));
  });
  main.append(section('Tags', tform));

  const certs = await api('GET', `${path}/certificates${qs({ limit: 100 })}`);
  const cerr = errorSlot();
  main.append(section('Certificates', cerr, table([
    { label: 'Serial', value: (c) => h('a', { href: `#/p/${enc(project)}/certificates/${c.serial}`, class: 'mono' }, c.serial) },
    { label: 'Valid from', value: (c) => fmtTime(c.not_before) },
    { label: 'Expires', value: (c) => fmtTime(c.not_after) },
    { label: 'Revoked', value: (c) => (c.revoked_at ? [fmtTime(c.revoked_at), ` (${c.revocation_reason})`] : 'no') },
    { label: 'Actions', value: (c) => (c.revoked_at || !canWrite() ? null : revokeButton(project, c.serial, reload, cerr)) },
  ], certs.items, { empty: 'No certificates.' })));

  const herr = errorSlot();
  const history = h('div');
  main.append(section('Update history', herr, history));
  let lastHistory = '';
  const loadHistory = async () => {
    const r = await api('GET', `${path}/deployments${qs({ limit: 100 })}`);
    const key = JSON.stringify(r.items);
    if (key === lastHistory) return;
    lastHistory = key;
    clear(history).append(table([
      { label: 'Deployment', value: (x) => link(`#/p/${enc(project)}/deployments/${x.deployment}`, `#${x.deployment}`) },
      { label: 'Image', value: (x) => `${x.image.name} ${x.image.version}` },
      { label: 'Target', value: (x) => (x.target === 'all' ? 'all devices' : `tag ${x.target.tag}`) },
      { label: 'Rollout', value: (x) => badge(x.deployment_status) },
      { label: 'This device', value: (x) => badge(x.state) },
      { label: 'Progress', value: (x) => (x.progress === null ? '—' : h('progress', { max: 100, value: x.progress, 'aria-label': `Progress of deployment ${x.deployment}` })) },
      { label: 'Detail', value: (x) => x.detail || '' },
      { label: 'Finished', value: (x) => (x.finished_at ? fmtTime(x.finished_at) : '—') },
    ], r.items, { caption: 'Deployments of this device, newest first (last 100)', empty: 'This device was not the target of any deployment yet.' }));
  };
  await loadHistory().catch((e) => showError(herr, e));
  historyTimer = every(5000, () => loadHistory().then(() => showError(herr, null), (e) => showError(herr, e)));
}

// What the TPM attestation and the quotes left; a tampered device's last
// quoted values can be accepted as its reference (admins only, as the API).
function attestation(path, a, reload) {
  const aerr = errorSlot();
  const facts = h('dl', { class: 'facts' },
    h('dt', {}, 'State'), h('dd', {}, badge(a.state)),
    h('dt', {}, 'EK certificate SHA-256'), h('dd', { class: 'mono' }, a.ek_sha256 || '—'),
    h('dt', {}, 'AK name'), h('dd', { class: 'mono' }, a.ak_name || '—'),
    h('dt', {}, 'Attested'), h('dd', {}, fmtTime(a.attested_at)),
    h('dt', {}, 'Last quote'), h('dd', {}, a.last_quote_at ? fmtTime(a.last_quote_at) : 'none yet'),
    h('dt', {}, 'Differing PCRs'), h('dd', {}, a.differ.length ? a.differ.join(', ') : 'none'));
  const tampered = a.state === 'tampered';
  return section('Attestation', facts,
    tampered ? notice(`Its last quote differs from the reference${a.differ.length ? ` in PCR ${a.differ.join(', ')}` : ''}. If the change is expected (e.g. a firmware update), accept the current measurements as the new reference.`, 'bad') : null,
    aerr,
    tampered && isAdmin() ? actionButton('Accept current measurements', async () => {
      if (!await confirmDialog('Accept current measurements?',
        'The last quoted PCR values become this device\'s reference and it is trusted again: its updates and re-enrollment are served.',
        { confirm: 'Accept' })) return;
      await api('POST', `${path}/attestation/accept`);
      await reload();
    }, { class: 'primary', slot: aerr }) : null);
}
