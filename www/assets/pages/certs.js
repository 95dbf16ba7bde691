// certs.js: the project's certificates, filtered (valid, expiring soon,
// revoked), with keyset paging and revocation.
import { api, enc, qs } from '../api.js';
import { h, errorSlot, showError, table, fmtTime, pageHeader, clear, link } from '../dom.js';
import { canWrite } from '../app.js';
import { revokeButton, certState } from './cert.js';

const FILTERS = [
  ['all', 'All', {}],
  ['valid', 'Valid', { valid: true }],
  ['expiring', 'Expiring within 30 days', { valid: true, expiring_within: 30 }],
  ['revoked', 'Revoked', { revoked: true }],
];

export async function render(main, { project }) {
  const base = `/projects/${enc(project)}/certificates`;
  const err = errorSlot();
  const body = h('div');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Certificate pages' });
  let filter = FILTERS[0];
  let cursors = [null];
  let page = 0;
  let next = null;
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Filter certificates' },
    FILTERS.map((f) => {
      const b = h('button', { type: 'button', 'aria-pressed': f === filter ? 'true' : 'false', dataset: { filter: f[0] } }, f[1]);
      b.addEventListener('click', () => {
        filter = f;
        tabs.querySelectorAll('button').forEach((x) => x.setAttribute('aria-pressed', x === b ? 'true' : 'false'));
        cursors = [null];
        page = 0;
        load();
      });
      return b;
    }));
  main.append(pageHeader(`Certificates of ${project}`), tabs, err, body, pager);

  async function load() {
    showError(err, null);
    try {
      const r = await api('GET', `${base}${qs({ limit: 50, after: cursors[page], ...filter[2] })}`);
      next = r.next;
      clear(body).append(table([
        { label: 'Serial', value: (c) => link(`#/p/${enc(project)}/certificates/${c.serial}`, c.serial, { class: 'mono' }) },
        { label: 'Device', value: (c) => (c.device_id ? link(`#/p/${enc(project)}/devices/${c.device_id}`, c.device_id, { class: 'mono' }) : '—') },
        { label: 'State', value: certState },
        { label: 'Expires', value: (c) => fmtTime(c.not_after) },
        { label: 'Revoked', value: (c) => (c.revoked_at ? [fmtTime(c.revoked_at), ` (${c.revocation_reason})`] : '—') },
        { label: 'Actions', value: (c) => (c.revoked_at || !canWrite() ? null : revokeButton(project, c.serial, load, err)) },
      ], r.items, { caption: `${filter[1]} certificates, page ${page + 1}`, empty: 'No certificates match.' }));
      clear(pager).append(
        h('button', { type: 'button', disabled: page === 0, on: { click: () => { page -= 1; load(); } } }, '← Previous'),
        h('span', {}, `Page ${page + 1}`),
        h('button', { type: 'button', disabled: !next, on: { click: () => { cursors[page + 1] = next; page += 1; load(); } } }, 'Next →'));
    } catch (e) { showError(err, e); }
  }
  await load();
}
