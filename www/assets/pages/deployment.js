// deployment.js: one deployment live: a bar per rollout group with its
// state counts, the automatic pause and its reason, pause / resume /
// cancel, and the per-device table (polled while shown).
import { api, enc, qs } from '../api.js';
import { h, errorSlot, showError, table, fmtTime, fmtAgo, pageHeader, section, clear, badge, confirmDialog, link } from '../dom.js';
import { canWrite, every } from '../app.js';
import { lineChart } from '../charts.js';

const STATES = ['installed', 'installing', 'downloading', 'pending', 'failed', 'cancelled'];

function bar(counts, label) {
  const total = counts.total || 0;
  const segs = STATES.filter((s) => counts[s] > 0).map((s) => {
    const seg = h('span', { class: `seg ${s}`, title: `${s}: ${counts[s]}` });
    seg.style.width = `${(counts[s] * 100) / total}%`;
    return seg;
  });
  const text = STATES.filter((s) => counts[s] > 0).map((s) => `${s} ${counts[s]}`).join(', ') || 'no devices';
  return h('div', { class: 'rollout' },
    h('div', { class: 'barlabel' }, h('strong', {}, label), ` — ${total} device${total === 1 ? '' : 's'}: ${text}`),
    h('div', { class: 'bar', role: 'img', 'aria-label': `${label}: ${text}` }, segs));
}

export async function render(main, { project, deployment }) {
  const base = `/projects/${enc(project)}/deployments/${enc(deployment)}`;
  const err = errorSlot();
  const head = h('div');
  const groups = h('div');
  const devices = h('div');
  const filter = h('select', { 'aria-label': 'Device state' }, h('option', { value: '' }, 'every state'), STATES.map((s) => h('option', { value: s }, s)));
  const outcomes = h('div');
  main.append(head, err, section('Rollout', groups, outcomes), section('Devices', filter, devices));

  // Update outcomes per hour since the deployment started (from the
  // per-device finish times of the first 1000 devices).
  let lastOutcome = '';
  async function drawOutcomes(d) {
    const r = await api('GET', `${base}/devices${qs({ limit: 1000 })}`);
    const start = Math.floor(new Date(d.created_at).getTime() / 3600000);
    const hours = Math.min(72, Math.max(2, Math.floor(Date.now() / 3600000) - start + 1));
    const xs = Array.from({ length: hours }, (_, i) => (start + i) * 3600);
    const inst = xs.map(() => 0);
    const fail = xs.map(() => 0);
    for (const x of r.items) {
      if (!x.finished_at || (x.state !== 'installed' && x.state !== 'failed')) continue;
      const i = Math.floor(new Date(x.finished_at).getTime() / 3600000) - start;
      if (i >= 0 && i < hours) (x.state === 'installed' ? inst : fail)[i] += 1;
    }
    const key = JSON.stringify([inst, fail]);
    if (key === lastOutcome) return;
    lastOutcome = key;
    clear(outcomes).append(await lineChart('Update outcomes per hour', xs,
      [{ label: 'installed', values: inst, color: '#2e8b57' }, { label: 'failed', values: fail, color: '#c0392b' }]));
  }

  const act = (verb, label, cls, confirmText) => h('button', {
    type: 'button', class: cls,
    on: { click: async () => {
      if (confirmText && !await confirmDialog(`${label} deployment #${deployment}?`, confirmText, { confirm: label, danger: true })) return;
      showError(err, null);
      try { await api('POST', `${base}/${verb}`); await refresh(); } catch (e) { showError(err, new Error(`${label}: ${e.message}`)); }
    } },
  }, label);

  let lastKey = '';
  async function refresh() {
    const d = await api('GET', base);
    const key = JSON.stringify(d);
    if (key !== lastKey) {
      lastKey = key;
      const buttons = !canWrite() ? [] : [
        d.status === 'active' ? act('pause', 'Pause') : null,
        d.status === 'paused' ? act('resume', 'Resume', 'primary') : null,
        d.status === 'active' || d.status === 'paused' ? act('cancel', 'Cancel', 'danger', 'Devices that have not started are left alone; this cannot be undone.') : null,
      ];
      clear(head).append(pageHeader(`Deployment #${d.id}: ${d.image.name} ${d.image.version}`, buttons),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Status'), h('dd', {}, badge(d.status)),
          d.pause_reason ? [h('dt', {}, 'Paused because'), h('dd', { class: 'warn', role: 'status' }, d.pause_reason)] : null,
          h('dt', {}, 'Target'), h('dd', {}, d.target === 'all' ? 'all devices' : `tag ${d.target.tag}`),
          h('dt', {}, 'Thresholds'), h('dd', {}, `next group at ${d.success_threshold} % installed; pause above ${d.error_threshold} % failed`),
          h('dt', {}, 'Current group'), h('dd', {}, `${d.current_group} of ${d.groups.length}`),
          h('dt', {}, 'Created'), h('dd', {}, fmtTime(d.created_at), ` by ${d.created_by}`)));
      clear(groups).append(bar(d.counts, 'All groups'), ...d.groups.map((g) => bar(g.counts,
        `Group ${g.index} (${g.count !== undefined ? `${g.count} device${g.count === 1 ? '' : 's'}` : `${g.percent} %`})${g.started_at ? '' : ', not started'}`)));
    }
    await drawOutcomes(d);
    const r = await api('GET', `${base}/devices${qs({ limit: 100, state: filter.value })}`);
    clear(devices).append(table([
      { label: 'Device', value: (x) => link(`#/p/${enc(project)}/devices/${x.device_id}`, x.device_id, { class: 'mono' }) },
      { label: 'Group', value: (x) => String(x.group), class: 'num' },
      { label: 'State', value: (x) => badge(x.state) },
      { label: 'Progress', value: (x) => (x.progress === null || x.progress === undefined ? '—' : h('progress', { max: 100, value: x.progress, 'aria-label': `Progress of ${x.device_id}` })) },
      { label: 'Detail', value: (x) => x.detail || '' },
      { label: 'Updated', value: (x) => fmtAgo(x.updated_at) },
    ], r.items, { caption: 'Devices of this deployment (first 100)', empty: 'No devices in this state.' }));
  }
  filter.addEventListener('change', () => refresh().catch((e) => showError(err, e)));
  await refresh();
  every(3000, () => refresh().catch((e) => showError(err, e)));
}
