// deployments.js: a project's deployments, and creating one: a signed
// image, a target (all devices or a tag), rollout groups (a count or a
// percentage each) and the success and error thresholds.
import { api, enc, qs } from '../api.js';
import { h, field, errorSlot, showError, onSubmit, table, fmtTime, pageHeader, section, clear, badge, link } from '../dom.js';
import { canWrite, navigate } from '../app.js';

export function statusBadge(d) { return badge(d.status); }

function groupRow(list, kind = 'percent', amount = 100) {
  const i = list.children.length + 1;
  const k = h('select', { name: 'kind', 'aria-label': `Group ${i}: kind` }, h('option', { value: 'count', selected: kind === 'count' }, 'devices'), h('option', { value: 'percent', selected: kind === 'percent' }, '% of targets'));
  const a = h('input', { name: 'amount', type: 'number', min: 1, max: 1000000, value: String(amount), required: true, 'aria-label': `Group ${i}: amount` });
  const rm = h('button', { type: 'button', class: 'small', 'aria-label': `Remove group ${i}` }, 'Remove');
  const row = h('li', {}, h('span', {}, `Group ${i}: `), a, k, rm);
  rm.addEventListener('click', () => { if (list.children.length > 1) row.remove(); });
  list.append(row);
}

export async function render(main, { project }) {
  const base = `/projects/${enc(project)}/deployments`;
  main.append(pageHeader(`Deployments of ${project}`));
  const err = errorSlot();
  const list = h('div');
  main.append(section('Deployments', err, list));
  try {
    const r = await api('GET', `${base}${qs({ limit: 100 })}`);
    list.append(table([
      { label: 'ID', value: (d) => link(`#/p/${enc(project)}/deployments/${d.id}`, `#${d.id}`) },
      { label: 'Image', value: (d) => `${d.image.name} ${d.image.version}` },
      { label: 'Target', value: (d) => (d.target === 'all' ? 'all devices' : `tag ${d.target.tag}`) },
      { label: 'Status', value: (d) => [statusBadge(d), d.pause_reason ? h('small', {}, ` ${d.pause_reason}`) : null] },
      { label: 'Installed', value: (d) => `${d.counts.installed} / ${d.counts.total}`, class: 'num' },
      { label: 'Failed', value: (d) => String(d.counts.failed), class: 'num' },
      { label: 'Created', value: (d) => [fmtTime(d.created_at), ` by ${d.created_by}`] },
    ], r.items, { caption: 'Deployments', empty: 'No deployments yet.' }));
  } catch (e) {
    showError(err, e.status === 404 ? new Error('This server has no deployments API yet (404).') : e);
  }
  if (!canWrite()) return;

  const ferr = errorSlot();
  const image = h('select', { name: 'image', required: true }, h('option', { value: '' }, '— signed images —'));
  try {
    const imgs = await api('GET', `/projects/${enc(project)}/images${qs({ limit: 1000 })}`);
    for (const i of imgs.items.filter((x) => x.status === 'signed')) image.append(h('option', { value: String(i.id) }, `${i.name} ${i.version}`));
  } catch (e) { showError(ferr, new Error(`images: ${e.message}`)); }
  const tag = h('input', { name: 'tag', autocomplete: 'off', pattern: '[A-Za-z0-9._:\\-]{1,64}', placeholder: 'empty: all devices' });
  const groups = h('ol', { class: 'groups' });
  groupRow(groups, 'count', 1);
  groupRow(groups, 'percent', 100);
  const add = h('button', { type: 'button', class: 'small', on: { click: () => groupRow(groups) } }, 'Add group');
  const success = h('input', { name: 'success', type: 'number', min: 1, max: 100, value: '100', required: true });
  const error = h('input', { name: 'error', type: 'number', min: 0, max: 100, value: '50', required: true });
  const form = h('form', { class: 'grid' },
    field('Image', image), field('Target tag', tag, 'Devices with this tag; empty for every device of the project.'),
    h('fieldset', {}, h('legend', {}, 'Rollout groups, in order'), groups, add),
    field('Success threshold (%)', success, 'A group this far installed starts the next one.'),
    field('Error threshold (%)', error, 'Failures in a group past this pause the rollout automatically.'),
    ferr, h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Create deployment')));
  onSubmit(form, ferr, async (fd) => {
    const gs = [...groups.children].map((li) => {
      const kind = li.querySelector('select').value;
      return { [kind]: Number(li.querySelector('input').value) };
    });
    const body = {
      image: Number(fd.get('image')),
      target: fd.get('tag') ? { tag: fd.get('tag') } : 'all',
      groups: gs,
      success_threshold: Number(fd.get('success')),
      error_threshold: Number(fd.get('error')),
    };
    const d = await api('POST', base, body);
    navigate(`#/p/${enc(project)}/deployments/${d.id}`);
  });
  main.append(section('New deployment', form));
}
