// overview.js: a project at a glance: devices by status, enrollments per
// day (last 30 days, from the audit log) and certificate expiry per day
// (next 90 days) as small charts.
import { api, enc, qs } from '../api.js';
import { h, pageHeader, section, errorSlot, showError, link } from '../dom.js';
import { barChart, dayBuckets } from '../charts.js';

async function collect(path, params, max) {
  const out = [];
  let after = null;
  do {
    const r = await api('GET', `${path}${qs({ ...params, limit: 1000, after })}`);
    out.push(...r.items);
    after = r.next;
  } while (after && out.length < max);
  return { items: out, truncated: Boolean(after) };
}

export async function render(main, { project }) {
  const p = await api('GET', `/projects/${enc(project)}`);
  main.append(pageHeader(`Project ${p.name}`, link(`#/p/${enc(project)}/devices`, `${p.devices} devices`)));
  const err = errorSlot();
  const charts = h('div', { class: 'charts' });
  main.append(err, section('Activity', charts));
  const now = Date.now();
  try {
    const since = new Date(now - 29 * 86400000);
    since.setUTCHours(0, 0, 0, 0);
    const enr = await collect('/audit', { action: 'device.enroll', project, since: since.toISOString() }, 20000);
    const xs = dayBuckets(since.getTime(), 30);
    const ys = xs.map(() => 0);
    for (const e of enr.items) {
      const i = Math.floor((new Date(e.at).getTime() - since.getTime()) / 86400000);
      if (i >= 0 && i < 30 && e.result === 'ok') ys[i] += 1;
    }
    charts.append(await barChart('Enrollments per day, last 30 days', xs, ys, { label: 'enrollments' }));

    const certs = await collect(`/projects/${enc(project)}/certificates`, { valid: true, expiring_within: 90 }, 20000);
    const xs2 = dayBuckets(now, 90);
    const ys2 = xs2.map(() => 0);
    for (const c of certs.items) {
      const i = Math.floor((new Date(c.not_after).getTime() - xs2[0] * 1000) / 86400000);
      if (i >= 0 && i < 90) ys2[i] += 1;
    }
    charts.append(await barChart('Certificates expiring per day, next 90 days', xs2, ys2, { label: 'certificates' }));
    if (enr.truncated || certs.truncated) charts.append(h('p', { class: 'hint' }, 'Counted from the first 20,000 entries.'));
  } catch (e) {
    showError(err, e);
  }
}
