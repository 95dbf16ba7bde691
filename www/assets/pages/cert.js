// cert.js: one certificate (parsed fields, PEM) and revocation with a
// reason, confirmed in a dialog.
import { api, enc } from '../api.js';
import { h, fmtTime, pageHeader, section, confirmDialog, field, errorSlot, showError, copyButton, badge } from '../dom.js';
import { canWrite } from '../app.js';

const REASONS = ['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded',
  'cessationOfOperation', 'privilegeWithdrawn', 'aACompromise'];

export function revokeButton(project, serial, onDone, slot) {
  const b = h('button', { type: 'button', class: 'small danger', 'aria-label': `Revoke certificate ${serial}` }, 'Revoke…');
  b.addEventListener('click', async () => {
    const reason = h('select', { name: 'reason' }, REASONS.map((r) => h('option', { value: r }, r)));
    const ok = await confirmDialog('Revoke certificate?', `Certificate ${serial} will be revoked at once (CRL and OCSP). Revocation is final.`,
      { confirm: 'Revoke', danger: true, body: field('Reason', reason) });
    if (!ok) return;
    showError(slot, null);
    try {
      await api('POST', `/projects/${enc(project)}/certificates/${serial}/revoke`, { reason: reason.value });
      await onDone();
    } catch (e) {
      showError(slot, new Error(`Revoke ${serial}: ${e.message}`));
    }
  });
  return b;
}

export function certState(c) {
  if (c.revoked_at) return badge('revoked');
  return new Date(c.not_after) < new Date() ? badge('expired') : badge('valid');
}

export async function render(main, { project, serial }) {
  const c = await api('GET', `/projects/${enc(project)}/certificates/${enc(serial)}`);
  const err = errorSlot();
  const reload = async () => { main.replaceChildren(); await render(main, { project, serial }); };
  const facts = h('dl', { class: 'facts' },
    h('dt', {}, 'State'), h('dd', {}, certState(c), c.revoked_at ? [' ', fmtTime(c.revoked_at), ` (${c.revocation_reason})`] : null),
    h('dt', {}, 'Serial'), h('dd', { class: 'mono' }, c.serial),
    h('dt', {}, 'Subject'), h('dd', {}, c.subject),
    h('dt', {}, 'Issuer'), h('dd', {}, c.issuer || '—'),
    h('dt', {}, 'Device'), h('dd', { class: 'mono' }, c.device_id ? h('a', { href: `#/p/${enc(project)}/devices/${c.device_id}` }, c.device_id) : '—'),
    h('dt', {}, 'Valid from'), h('dd', {}, fmtTime(c.not_before)),
    h('dt', {}, 'Expires'), h('dd', {}, fmtTime(c.not_after)),
    h('dt', {}, 'Key'), h('dd', {}, c.key ? `${c.key.type} ${c.key.bits} bits${c.key.curve ? ` (${c.key.curve})` : ''}` : '—'),
    h('dt', {}, 'Key usage'), h('dd', {}, (c.key_usage || []).join(', ') || '—'),
    h('dt', {}, 'Extended key usage'), h('dd', {}, (c.extended_key_usage || []).join(', ') || '—'),
    h('dt', {}, 'SAN URIs'), h('dd', {}, (c.san_uris || []).join(', ') || '—'));
  main.append(pageHeader(`Certificate ${c.serial}`, !c.revoked_at && canWrite() ? revokeButton(project, c.serial, reload, err) : null),
    err, section('Certificate', facts));
  if (c.pem) {
    const pre = h('pre', { class: 'pem', tabindex: '0', 'aria-label': 'Certificate PEM' }, c.pem);
    main.append(section('PEM', pre, copyButton(c.pem, 'Copy PEM')));
  }
  showError(err, null);
}
