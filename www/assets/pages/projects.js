// projects.js: the projects in scope, and creating one (admins of every
// project only; the API says so when not).
import { api, enc, qs } from '../api.js';
import { h, field, checkbox, errorSlot, onSubmit, table, fmtTime, link, pageHeader, section } from '../dom.js';
import { navigate, canWrite } from '../app.js';

export function policyText(p) {
  return ['token', 'allowlist', 'approval'].filter((k) => p[k]).join(', ') || 'none';
}

export async function render(main) {
  const list = h('div');
  main.append(pageHeader('Projects'), list);
  const items = [];
  let after = null;
  do {
    const r = await api('GET', `/projects${qs({ limit: 1000, after })}`);
    items.push(...r.items);
    after = r.next;
  } while (after && items.length < 10000);
  list.append(table([
    { label: 'Name', value: (p) => link(`#/p/${enc(p.name)}/devices`, p.name) },
    { label: 'Devices', value: (p) => String(p.devices), class: 'num' },
    { label: 'Enrollment policy', value: (p) => policyText(p.policy) },
    { label: 'Certificate validity', value: (p) => `${p.cert_validity_days} days` },
    { label: 'Created', value: (p) => fmtTime(p.created_at) },
    { label: '', value: (p) => link(`#/p/${enc(p.name)}/settings`, 'Settings', { 'aria-label': `Settings of ${p.name}` }) },
  ], items, { caption: `${items.length} project${items.length === 1 ? '' : 's'}`, empty: 'No projects yet: create one below.' }));
  if (!canWrite()) return;

  const err = errorSlot();
  const name = h('input', { name: 'name', required: true, pattern: '[a-z0-9][a-z0-9\\-]{0,62}', maxlength: 63, autocomplete: 'off' });
  const days = h('input', { name: 'days', type: 'number', min: 1, max: 3650, value: '365', required: true });
  const tok = checkbox('Enrollment tokens', true, { name: 'token' });
  const allow = checkbox('Allowlist of device IDs', false, { name: 'allowlist' });
  const appr = checkbox('Manual approval of unknown devices', false, { name: 'approval' });
  const form = h('form', { class: 'grid' },
    field('Name', name, 'Lower-case letters, digits and "-"; "root" is reserved.'),
    field('Certificate validity (days)', days),
    h('fieldset', {}, h('legend', {}, 'Enrollment policy'), tok, allow, appr),
    err, h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Create project')));
  onSubmit(form, err, async (fd) => {
    const p = await api('POST', '/projects', {
      name: fd.get('name'),
      cert_validity_days: Number(fd.get('days')),
      policy: { token: fd.has('token'), allowlist: fd.has('allowlist'), approval: fd.has('approval') },
    });
    navigate(`#/p/${enc(p.name)}/devices`);
  });
  main.append(section('New project', form));
}
