// enroll.js: enrollment tokens (created and shown once with the exact
// ql-agent command line, listed, revoked) and the allowlist (pasted or
// uploaded as CSV, listed, entries removed).
import { api, enc, qs } from '../api.js';
import { h, field, errorSlot, showError, onSubmit, table, fmtTime, pageHeader, section, secretBox, copyButton, confirmDialog, clear, notice, badge } from '../dom.js';
import { canWrite } from '../app.js';

const ID_RE = /\b[a-z2-7]{32}\b/g;

// The device listener's address comes from the server (device.url, or its
// listener as bound): the browser only knows the admin listener's, whose
// host and port need not be the devices' (GET /api/v1/installation).
export function agentCommand(project, token, install) {
  const base = install.device_url || 'https://DEVICE-LISTENER-ADDRESS';
  const conf = [
    '# /etc/ql-agent.conf',
    `est_url = ${install.est_url || `${base}/.well-known/est`}`,
    `device_url = ${base}`,
    'root_ca = /etc/ql-agent/root.pem',
    `project = ${project}`,
  ].join('\n');
  const cmd = `ql-agent -c /etc/ql-agent.conf enroll --token '${token.replace(/'/g, "'\\''")}'`;
  return { conf, cmd };
}

export function parseIds(text) {
  return [...new Set((text.toLowerCase().match(ID_RE) || []))];
}

function tokenState(t) {
  if (t.revoked_at) return badge('revoked');
  if (new Date(t.expires_at) < new Date()) return badge('expired');
  if (t.uses >= t.max_uses) return badge('used up', 'expired');
  return badge('active');
}

export async function render(main, { project }) {
  const p = `/projects/${enc(project)}`;
  main.append(pageHeader(`Enrollment in ${project}`));
  const [proj, install] = await Promise.all([api('GET', p), api('GET', '/installation')]);
  main.append(notice(`Policy: ${['token', 'allowlist', 'approval', 'tpm'].filter((k) => proj.policy[k]).join(', ')}. Change it in Settings.`, 'info'));

  // ---- tokens
  const terr = errorSlot();
  const shown = h('div');
  const tlist = h('div');
  const loadTokens = async () => {
    const r = await api('GET', `${p}/enrollment-tokens${qs({ limit: 1000 })}`);
    clear(tlist).append(table([
      { label: 'Name', value: (t) => t.name || '—' },
      { label: 'State', value: tokenState },
      { label: 'Uses', value: (t) => `${t.uses} / ${t.max_uses}`, class: 'num' },
      { label: 'Expires', value: (t) => fmtTime(t.expires_at) },
      { label: 'Created', value: (t) => fmtTime(t.created_at) },
      { label: 'Actions', value: (t) => (t.revoked_at || !canWrite() ? null : h('button', {
        type: 'button', class: 'small danger', 'aria-label': `Revoke token ${t.name || t.id}`,
        on: { click: async () => {
          if (!await confirmDialog('Revoke token?', `Devices can no longer enroll with "${t.name || t.id}".`, { confirm: 'Revoke', danger: true })) return;
          showError(terr, null);
          try { await api('DELETE', `${p}/enrollment-tokens/${t.id}`); await loadTokens(); } catch (e) { showError(terr, e); }
        } },
      }, 'Revoke')) },
    ], r.items, { caption: 'Enrollment tokens', empty: 'No tokens yet.' }));
  };
  const tsec = section('Enrollment tokens', terr, shown, tlist);
  if (canWrite()) {
    const ferr = errorSlot();
    const name = h('input', { name: 'name', maxlength: 128, autocomplete: 'off', placeholder: 'e.g. factory line 3' });
    const uses = h('input', { name: 'uses', type: 'number', min: 1, max: 100000000, value: '1000', required: true });
    const days = h('input', { name: 'days', type: 'number', min: 1, max: 3650, value: '30', required: true });
    const form = h('form', { class: 'grid' }, field('Name', name), field('Maximum uses', uses), field('Valid for (days)', days), ferr,
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Create token')));
    onSubmit(form, ferr, async (fd) => {
      const body = { max_uses: Number(fd.get('uses')), valid_days: Number(fd.get('days')) };
      if (fd.get('name')) body.name = fd.get('name');
      const t = await api('POST', `${p}/enrollment-tokens`, body);
      const { conf, cmd } = agentCommand(project, t.token, install);
      clear(shown).append(secretBox(`Token "${t.name || t.id}"`, t.token,
        h('div', { class: 'howto' },
          install.device_url ? null : notice('This server has no device listener and device.url is not set in quarklinkd.conf: put the devices\' address in place of DEVICE-LISTENER-ADDRESS.', 'bad'),
          h('p', {}, 'On the device, with the root certificate (', h('a', { href: install.root_ca_url, download: 'root.crt' }, 'root.crt'),
            ', DER; openssl x509 -inform DER -in root.crt -out /etc/ql-agent/root.pem) in /etc/ql-agent/root.pem and this configuration:'),
          h('pre', { class: 'cmd', tabindex: '0', 'aria-label': 'Agent configuration' }, conf), copyButton(conf, 'Copy configuration'),
          h('p', {}, 'enroll and print the device ID:'),
          h('pre', { class: 'cmd', tabindex: '0', 'aria-label': 'Enroll command', dataset: { cmd: 'enroll' } }, cmd), copyButton(cmd, 'Copy command'),
          h('p', { class: 'hint' }, 'A token on the command line is visible in the process list; ql-agent also takes --token-file FILE.'))));
      form.reset();
      await loadTokens();
    });
    tsec.append(h('h3', {}, 'New token'), form);
  }
  main.append(tsec);
  await loadTokens();

  // ---- allowlist
  const aerr = errorSlot();
  const alist = h('div');
  const apager = h('nav', { class: 'pager', 'aria-label': 'Allowlist pages' });
  let cursors = [null];
  let page = 0;
  const loadAllow = async () => {
    const r = await api('GET', `${p}/allowlist${qs({ limit: 100, after: cursors[page] })}`);
    clear(alist).append(table([
      { label: 'Device ID', value: (e) => h('span', { class: 'mono' }, e.device_id) },
      { label: 'Added', value: (e) => fmtTime(e.created_at) },
      { label: 'Actions', value: (e) => (!canWrite() ? null : h('button', {
        type: 'button', class: 'small', 'aria-label': `Remove ${e.device_id} from the allowlist`,
        on: { click: async () => {
          showError(aerr, null);
          try { await api('DELETE', `${p}/allowlist/${e.device_id}`); await loadAllow(); } catch (x) { showError(aerr, x); }
        } },
      }, 'Remove')) },
    ], r.items, { caption: `Allowlist, page ${page + 1}`, empty: 'The allowlist is empty.' }));
    clear(apager).append(
      h('button', { type: 'button', disabled: page === 0, on: { click: () => { page -= 1; loadAllow(); } } }, '← Previous'),
      h('button', { type: 'button', disabled: !r.next, on: { click: () => { cursors[page + 1] = r.next; page += 1; loadAllow(); } } }, 'Next →'));
  };
  const asec = section('Allowlist', aerr);
  if (canWrite()) {
    const ferr = errorSlot();
    const result = h('div', { 'aria-live': 'polite' });
    const text = h('textarea', { name: 'ids', rows: 4, spellcheck: 'false', placeholder: 'one device ID per line, or CSV' });
    const file = h('input', { name: 'file', type: 'file', accept: '.csv,text/csv,text/plain' });
    const form = h('form', { class: 'grid' }, field('Device IDs', text, 'Paste IDs (any separator) or choose a CSV file: every 32-character device ID in it is added.'),
      field('CSV file', file), ferr, result, h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Add to allowlist')));
    onSubmit(form, ferr, async () => {
      let all = String(text.value);
      if (file.files[0]) {
        if (file.files[0].size > 16 * 1024 * 1024) throw new Error('the CSV file is larger than 16 MiB');
        all += `\n${await file.files[0].text()}`;
      }
      const ids = parseIds(all);
      if (ids.length === 0) throw new Error('no device IDs found (32 characters of a-z and 2-7)');
      let added = 0;
      let present = 0;
      for (let i = 0; i < ids.length; i += 10000) {
        const r = await api('POST', `${p}/allowlist`, ids.slice(i, i + 10000));
        added += r.added;
        present += r.already_present;
        result.replaceChildren(notice(`Added ${added}, already present ${present} (${Math.min(i + 10000, ids.length)} of ${ids.length}).`, 'ok'));
      }
      form.reset();
      cursors = [null];
      page = 0;
      await loadAllow();
    });
    asec.append(form);
  }
  asec.append(alist, apager);
  main.append(asec);
  await loadAllow();
}
