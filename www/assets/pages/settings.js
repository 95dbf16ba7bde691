// settings.js: a project's enrollment policy, certificate validity, name,
// and deletion (confirmed).
import { api, enc } from '../api.js';
import { h, field, checkbox, errorSlot, onSubmit, notice, pageHeader, section, confirmDialog, actionButton } from '../dom.js';
import { navigate, canWrite } from '../app.js';

export async function render(main, { project }) {
  const p = await api('GET', `/projects/${enc(project)}`);
  main.append(pageHeader(`Settings of ${p.name}`));
  const err = errorSlot();
  const saved = h('div', { 'aria-live': 'polite' });
  const ro = !canWrite();
  const name = h('input', { name: 'name', value: p.name, required: true, pattern: '[a-z0-9][a-z0-9\\-]{0,62}', disabled: ro });
  const days = h('input', { name: 'days', type: 'number', min: 1, max: 3650, value: String(p.cert_validity_days), required: true, disabled: ro });
  const form = h('form', { class: 'grid' },
    field('Name', name, 'Certificates name the project by a fixed id, so renaming is safe.'),
    field('Certificate validity (days)', days),
    h('fieldset', { disabled: ro }, h('legend', {}, 'Enrollment policy'),
      checkbox('Enrollment tokens', p.policy.token, { name: 'token' }),
      checkbox('Allowlist of device IDs', p.policy.allowlist, { name: 'allowlist' }),
      checkbox('Manual approval of unknown devices', p.policy.approval, { name: 'approval' })),
    err, saved, ro ? null : h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Save')));
  onSubmit(form, err, async (fd) => {
    // The API refuses this on create; say so before a change too.
    if (!fd.has('token') && !fd.has('allowlist') && !fd.has('approval')) {
      throw new Error('at least one enrollment policy must be on');
    }
    const body = {
      cert_validity_days: Number(fd.get('days')),
      policy: { token: fd.has('token'), allowlist: fd.has('allowlist'), approval: fd.has('approval') },
    };
    if (fd.get('name') !== p.name) body.name = fd.get('name');
    const r = await api('PATCH', `/projects/${enc(p.name)}`, body);
    saved.replaceChildren(notice('Saved.', 'ok'));
    if (r.name !== p.name) navigate(`#/p/${enc(r.name)}/settings`);
  });
  main.append(section('Project', form));
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
