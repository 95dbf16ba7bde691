// audit.js: the audit log (filters, keyset paging) and the result of the
// hash-chain verification against the latest signed checkpoint.
import { api, qs } from '../api.js';
import { h, field, errorSlot, showError, table, fmtTime, pageHeader, section, clear, notice, actionButton } from '../dom.js';

const CHECKPOINT = {
  none: 'no signed checkpoint yet',
  ok: 'consistent with the latest signed checkpoint',
  short: 'SHORTER than the latest signed checkpoint: rows were removed',
  differs: 'DIFFERS from the latest signed checkpoint: rows were rewritten',
  forged: 'the latest checkpoint\'s signature does NOT verify',
};

export async function render(main) {
  main.append(pageHeader('Audit log'));
  const verr = errorSlot();
  const vres = h('div', { 'aria-live': 'polite', id: 'verify-result' });
  const verify = async () => {
    const v = await api('GET', '/audit/verify');
    const good = v.ok;
    vres.replaceChildren(notice(good
      ? `Chain verified: ${v.rows} rows intact; ${CHECKPOINT[v.checkpoint] || v.checkpoint}.`
      : `Chain BROKEN at row ${v.first_broken_id ?? '?'} (${v.rows} rows checked); ${CHECKPOINT[v.checkpoint] || v.checkpoint}.`, good ? 'ok' : 'bad'));
  };
  main.append(section('Chain verification', verr, vres, actionButton('Verify again', verify, { slot: verr })));
  verify().catch((e) => showError(verr, e));

  const err = errorSlot();
  const actor = h('input', { name: 'actor', maxlength: 256, autocomplete: 'off', placeholder: 'user:alice' });
  const action = h('input', { name: 'action', maxlength: 256, autocomplete: 'off', placeholder: 'device.' });
  const project = h('input', { name: 'project', maxlength: 63, autocomplete: 'off' });
  const since = h('input', { name: 'since', type: 'datetime-local' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the audit log' },
    field('Actor', actor), field('Action starts with', action), field('Project', project), field('Since', since),
    h('button', { type: 'submit' }, 'Apply'));
  const body = h('div');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Audit pages' });
  main.append(section('Entries', form, err, body, pager));
  let cursors = [null];
  let page = 0;
  const load = async () => {
    showError(err, null);
    try {
      const r = await api('GET', `/audit${qs({
        limit: 100, after: cursors[page], actor: actor.value.trim(), action: action.value.trim(),
        project: project.value.trim(), since: since.value ? new Date(since.value).toISOString() : '',
      })}`);
      clear(body).append(table([
        { label: 'Time', value: (e) => fmtTime(e.at) },
        { label: 'Actor', value: (e) => e.actor },
        { label: 'Action', value: (e) => e.action },
        { label: 'Object', value: (e) => h('span', { class: 'mono' }, e.object || '—') },
        { label: 'Project', value: (e) => e.project || '—' },
        { label: 'Result', value: (e) => h('span', { class: `badge ${e.result}` }, e.result) },
        { label: 'Detail', value: (e) => e.detail || '' },
      ], r.items, { caption: `Audit entries, page ${page + 1}`, empty: 'No entries match.' }));
      clear(pager).append(
        h('button', { type: 'button', disabled: page === 0, on: { click: () => { page -= 1; load(); } } }, '← Previous'),
        h('button', { type: 'button', disabled: !r.next, on: { click: () => { cursors[page + 1] = r.next; page += 1; load(); } } }, 'Next →'));
    } catch (e) { showError(err, e); }
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); cursors = [null]; page = 0; load(); });
  await load();
}
