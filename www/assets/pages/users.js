// users.js (admins): users (create, role, projects, disable, password
// reset) and API tokens (created with the secret shown once, revoked).
import { api, qs } from '../api.js';
import { h, field, errorSlot, showError, onSubmit, table, fmtTime, pageHeader, section, secretBox, confirmDialog, clear, badge } from '../dom.js';

const ROLES = ['viewer', 'operator', 'admin'];
const roleSelect = (name, value, label) => h('select', { name, 'aria-label': label }, ROLES.map((r) => h('option', { value: r, selected: r === value }, r)));
const projectList = (s) => (s.trim() === '' ? null : s.split(',').map((x) => x.trim()).filter(Boolean));

export async function render(main) {
  main.append(pageHeader('Users and API tokens'));
  const uerr = errorSlot();
  const ulist = h('div');
  const loadUsers = async () => {
    const r = await api('GET', `/users${qs({ limit: 1000 })}`);
    clear(ulist).append(table([
      { label: 'Name', value: (u) => u.name },
      { label: 'Role', value: (u) => {
        const s = roleSelect('role', u.role, `Role of ${u.name}`);
        s.addEventListener('change', async () => {
          showError(uerr, null);
          try { await api('PATCH', `/users/${encodeURIComponent(u.name)}`, { role: s.value }); } catch (e) { showError(uerr, e); s.value = u.role; }
        });
        return s;
      } },
      { label: 'Projects', value: (u) => (u.projects ? u.projects.join(', ') : 'all') },
      { label: 'State', value: (u) => badge(u.disabled ? 'disabled' : 'active') },
      { label: 'Created', value: (u) => fmtTime(u.created_at) },
      { label: 'Actions', value: (u) => h('button', {
        type: 'button', class: 'small', 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.name}`,
        on: { click: async () => {
          showError(uerr, null);
          try { await api('PATCH', `/users/${encodeURIComponent(u.name)}`, { disabled: !u.disabled }); await loadUsers(); } catch (e) { showError(uerr, e); }
        } },
      }, u.disabled ? 'Enable' : 'Disable') },
    ], r.items, { caption: 'Users' }));
  };
  const ferr = errorSlot();
  const uform = h('form', { class: 'grid' },
    field('User name', h('input', { name: 'name', required: true, pattern: '[A-Za-z0-9._@\\-]{1,64}', autocomplete: 'off' })),
    field('Password', h('input', { name: 'password', type: 'password', required: true, minlength: 12, autocomplete: 'new-password' }), 'At least 12 characters.'),
    field('Role', roleSelect('role', 'viewer')),
    field('Projects', h('input', { name: 'projects', autocomplete: 'off' }), 'Comma-separated project names; empty for every project.'),
    ferr, h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Create user')));
  onSubmit(uform, ferr, async (fd) => {
    await api('POST', '/users', { name: fd.get('name'), password: fd.get('password'), role: fd.get('role'), projects: projectList(String(fd.get('projects'))) });
    uform.reset();
    await loadUsers();
  });
  main.append(section('Users', uerr, ulist, h('h3', {}, 'New user'), uform));
  await loadUsers();

  const terr = errorSlot();
  const shown = h('div');
  const tlist = h('div');
  const loadTokens = async () => {
    const r = await api('GET', `/api-tokens${qs({ limit: 1000 })}`);
    clear(tlist).append(table([
      { label: 'Name', value: (t) => t.name },
      { label: 'Role', value: (t) => t.role },
      { label: 'Project', value: (t) => t.project || 'all' },
      { label: 'Expires', value: (t) => (t.expires_at ? fmtTime(t.expires_at) : 'never') },
      { label: 'Last used', value: (t) => fmtTime(t.last_used) },
      { label: 'State', value: (t) => badge(t.revoked_at ? 'revoked' : 'active') },
      { label: 'Actions', value: (t) => (t.revoked_at ? null : h('button', {
        type: 'button', class: 'small danger', 'aria-label': `Revoke API token ${t.name}`,
        on: { click: async () => {
          if (!await confirmDialog('Revoke API token?', `Requests with "${t.name}" will be refused.`, { confirm: 'Revoke', danger: true })) return;
          showError(terr, null);
          try { await api('DELETE', `/api-tokens/${t.id}`); await loadTokens(); } catch (e) { showError(terr, e); }
        } },
      }, 'Revoke')) },
    ], r.items, { caption: 'API tokens', empty: 'No API tokens.' }));
  };
  const tferr = errorSlot();
  const tform = h('form', { class: 'grid' },
    field('Name', h('input', { name: 'name', required: true, maxlength: 128, autocomplete: 'off' })),
    field('Role', roleSelect('role', 'viewer')),
    field('Project', h('input', { name: 'project', autocomplete: 'off' }), 'Empty for every project.'),
    field('Expires in (days)', h('input', { name: 'days', type: 'number', min: 1, max: 3650 }), 'Empty: does not expire.'),
    tferr, h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Create API token')));
  onSubmit(tform, tferr, async (fd) => {
    const body = { name: fd.get('name'), role: fd.get('role') };
    if (fd.get('project')) body.project = fd.get('project');
    if (fd.get('days')) body.expires_in_days = Number(fd.get('days'));
    const t = await api('POST', '/api-tokens', body);
    clear(shown).append(secretBox(`API token "${t.name}"`, t.token, h('p', { class: 'hint' }, 'Send it as "Authorization: Bearer TOKEN".')));
    tform.reset();
    await loadTokens();
  });
  main.append(section('API tokens', terr, shown, tlist, h('h3', {}, 'New API token'), tform));
  await loadTokens();
}
