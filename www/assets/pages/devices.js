// devices.js: the device table: status, tag and ID/label search filters,
// keyset paging with the API's cursor (fast at any depth), approve /
// reject / disable / enable in place, and new devices appearing without a
// reload (the first page is polled while shown).
import { api, enc, qs } from '../api.js';
import { h, field, errorSlot, showError, fmtAgo, fmtTime, badge, link, pageHeader, clear, nextId } from '../dom.js';
import { every, canWrite } from '../app.js';

const PAGE = 50;
const STATUSES = ['pending', 'approved', 'active', 'rejected', 'disabled', 'revoked'];

export function deviceActions(project, d, onDone, slot) {
  if (!canWrite()) return null;
  const act = (verb, label, cls) => {
    const b = h('button', { type: 'button', class: `small ${cls || ''}`, 'aria-label': `${label} ${d.device_id}` }, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      showError(slot, null);
      try {
        await api('POST', `/projects/${enc(project)}/devices/${d.device_id}/${verb}`);
        await onDone();
      } catch (e) {
        showError(slot, new Error(`${label} ${d.device_id}: ${e.message}`));
        b.disabled = false;
      }
    });
    return b;
  };
  const out = [];
  if (d.status === 'pending') out.push(act('approve', 'Approve', 'primary'), act('reject', 'Reject', 'danger'));
  if (d.status === 'active' || d.status === 'approved') out.push(act('disable', 'Disable'));
  if (d.status === 'disabled') out.push(act('enable', 'Enable'));
  return h('span', { class: 'rowactions' }, out);
}

// Only tampered stands out in the list: it is the state an operator must act
// on (the device page has the rest). From the row itself, no request per row.
function tamperedBadge(d) {
  return d.attestation?.state === 'tampered' ? [' ', badge('tampered')] : null;
}

function expiry(cert) {
  if (!cert) return '—';
  const days = (new Date(cert.not_after) - Date.now()) / 86400000;
  const t = fmtTime(cert.not_after);
  return days < 0 ? h('span', { class: 'bad' }, t, ' (expired)') : days < 30 ? h('span', { class: 'warn' }, t) : t;
}

export async function render(main, { project }) {
  const base = `/projects/${enc(project)}/devices`;
  const err = errorSlot();
  const status = h('select', { name: 'status' }, h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s }, s)));
  const tag = h('input', { name: 'tag', maxlength: 64, autocomplete: 'off', placeholder: 'e.g. line-3' });
  const q = h('input', { name: 'q', type: 'search', maxlength: 64, autocomplete: 'off', placeholder: 'device ID or label prefix' });
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter devices' },
    field('Status', status), field('Tag', tag), field('Search', q),
    h('button', { type: 'submit' }, 'Apply'));
  const countId = nextId('count');
  const body = h('div', { class: 'tablewrap' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Device pages' });
  const live = h('p', { class: 'sr-only', 'aria-live': 'polite', id: countId });
  main.append(pageHeader(`Devices of ${project}`, link(`#/p/${enc(project)}/enrollment`, 'Enroll devices')), filters, err, live, body, pager);

  // cursors[i] is the `after` of page i (null for the first page).
  let cursors = [null];
  let page = 0;
  let last = '';
  let next = null;

  const params = () => ({ limit: PAGE, status: status.value, tag: tag.value.trim(), q: q.value.trim().toLowerCase() });

  function rows(items) {
    const t = h('table', { class: 'devices' },
      h('caption', {}, `Devices, page ${page + 1}`),
      h('thead', {}, h('tr', {}, ['Device ID', 'Label', 'Status', 'Tags', 'Last seen', 'Certificate expires', 'Version', 'Actions']
        .map((c) => h('th', { scope: 'col' }, c)))));
    const tb = h('tbody');
    if (items.length === 0) tb.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No devices match.')));
    for (const d of items) {
      tb.append(h('tr', { dataset: { device: d.device_id } },
        h('td', { class: 'mono' }, link(`#/p/${enc(project)}/devices/${d.device_id}`, d.device_id)),
        h('td', {}, d.label || '—'),
        h('td', {}, badge(d.status), tamperedBadge(d)),
        h('td', {}, d.tags.length ? d.tags.map((x) => h('span', { class: 'tag' }, x)) : '—'),
        h('td', {}, fmtAgo(d.last_seen)),
        h('td', {}, expiry(d.certificate)),
        h('td', {}, d.installed_version || '—'),
        h('td', {}, deviceActions(project, d, () => load(true), err))));
    }
    t.append(tb);
    return t;
  }

  async function load(force) {
    const r = await api('GET', `${base}${qs({ ...params(), after: cursors[page] })}`);
    const key = JSON.stringify(r);
    if (!force && key === last) return;
    last = key;
    next = r.next;
    // Keep keyboard focus on the same device's row across a refresh.
    const focusedRow = document.activeElement?.closest?.('tr[data-device]')?.dataset.device;
    clear(body).append(rows(r.items));
    if (focusedRow) body.querySelector(`tr[data-device="${focusedRow}"] a`)?.focus();
    live.textContent = `${r.items.length} devices shown on page ${page + 1}`;
    clear(pager).append(
      h('button', { type: 'button', disabled: page === 0, on: { click: () => go(page - 1) } }, '← Previous'),
      h('span', {}, `Page ${page + 1}`),
      h('button', { type: 'button', disabled: !next, on: { click: () => go(page + 1) } }, 'Next →'));
  }

  async function go(p) {
    if (p > page) cursors[p] = next;
    page = p;
    try { showError(err, null); await load(true); } catch (e) { showError(err, e); }
  }

  filters.addEventListener('submit', (ev) => {
    ev.preventDefault();
    cursors = [null];
    go(0);
  });
  await load(true);
  main.dataset.rendered = String(performance.now());
  // New devices appear on the first page without a reload.
  every(3000, async () => {
    if (page !== 0) return;
    try { await load(false); } catch (e) { showError(err, e); }
  });
}
