// dom.js: building DOM without innerHTML (the CSP forbids inline code, and
// text from the API is never parsed as markup), and small shared widgets.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

let uid = 0;
export function nextId(prefix) { uid += 1; return `${prefix || 'f'}-${uid}`; }

// A labelled form field: label, control, optional hint, and a slot for the
// error the API reported about it.
export function field(label, control, hint) {
  if (!control.id) control.id = nextId('f');
  const parts = [h('label', { for: control.id }, label), control];
  if (hint) {
    const hid = nextId('hint');
    control.setAttribute('aria-describedby', hid);
    parts.push(h('small', { id: hid, class: 'hint' }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

export function checkbox(label, checked, attrs) {
  const input = h('input', { type: 'checkbox', id: nextId('c'), ...(attrs || {}) });
  input.checked = !!checked;
  return h('div', { class: 'check' }, input, h('label', { for: input.id }, label));
}

// Error next to what caused it: a live region that announces itself.
export function errorSlot() {
  return h('p', { class: 'error', role: 'alert', hidden: true });
}
export function showError(slot, err) {
  if (!err) { slot.hidden = true; slot.textContent = ''; return; }
  slot.textContent = err.message || String(err);
  slot.hidden = false;
}

export function notice(text, kind) {
  return h('p', { class: `notice ${kind || ''}`, role: 'status' }, text);
}

// A button that runs an async action, disabled while it runs, with any
// error shown in slot (or next to the button).
export function actionButton(label, fn, attrs) {
  const slot = attrs?.slot || null;
  const b = h('button', { type: 'button', ...(attrs || {}), slot: null });
  b.textContent = label;
  b.addEventListener('click', async () => {
    b.disabled = true;
    b.setAttribute('aria-busy', 'true');
    try {
      if (slot) showError(slot, null);
      await fn(b);
    } catch (e) {
      if (slot) showError(slot, e); else b.after(errorFor(e));
    } finally {
      b.disabled = false;
      b.removeAttribute('aria-busy');
    }
  });
  return b;
}

function errorFor(e) {
  const p = errorSlot();
  showError(p, e);
  setTimeout(() => p.remove(), 15000);
  return p;
}

// Submit handler for a form: disables it while the request runs and shows
// the API's message in the form's error slot.
export function onSubmit(form, slot, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const buttons = form.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    showError(slot, null);
    try {
      await fn(new FormData(form));
    } catch (e) {
      showError(slot, e);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
}

// A modal confirmation (<dialog>, keyboard and screen-reader friendly).
// body: extra controls (e.g. a reason select); resolves true/false.
export function confirmDialog(title, text, { confirm = 'Confirm', danger = false, body = null } = {}) {
  return new Promise((resolve) => {
    const tid = nextId('dlg');
    const ok = h('button', { type: 'submit', value: 'ok', class: danger ? 'danger' : 'primary' }, confirm);
    const cancel = h('button', { type: 'submit', value: 'cancel' }, 'Cancel');
    const d = h('dialog', { 'aria-labelledby': tid },
      h('form', { method: 'dialog' },
        h('h2', { id: tid }, title), h('p', {}, text), body,
        h('div', { class: 'buttons' }, cancel, ok)));
    d.addEventListener('close', () => { d.remove(); resolve(d.returnValue === 'ok'); });
    document.body.append(d);
    d.showModal();
    cancel.focus();
  });
}

export function copyButton(text, label) {
  const b = h('button', { type: 'button', class: 'copy' }, label || 'Copy');
  const status = h('span', { class: 'copied', role: 'status' });
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = 'Copied';
    } catch {
      status.textContent = 'Select the text and copy it (clipboard not available)';
    }
  });
  return h('span', {}, b, status);
}

// A shown-once secret: a read-only field, a copy button and a warning.
export function secretBox(title, secret, extra) {
  const id = nextId('secret');
  const input = h('input', { id, type: 'text', readonly: true, value: secret, class: 'secret', spellcheck: 'false' });
  return h('section', { class: 'secretbox', 'aria-live': 'polite' },
    h('h3', {}, title),
    h('p', {}, 'Shown once: copy it now, it cannot be read again.'),
    h('label', { for: id, class: 'sr-only' }, title), input, copyButton(secret), extra);
}

// A table from column specs {label, value(row) -> node|string, class}.
export function table(columns, rows, { caption, empty = 'Nothing here yet.' } = {}) {
  const t = h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))));
  const tb = h('tbody');
  if (rows.length === 0) {
    tb.append(h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, empty)));
  }
  for (const r of rows) tb.append(h('tr', {}, columns.map((c) => h('td', { class: c.class }, c.value(r)))));
  t.append(tb);
  // A wide table scrolls inside its box: focusable, so the keyboard can too.
  return h('div', { class: 'tablewrap', tabindex: '0', role: 'region', 'aria-label': caption || columns.map((c) => c.label).join(', ') }, t);
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const t = h('time', { datetime: d.toISOString(), title: d.toISOString() });
  t.textContent = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  return t;
}

export function fmtAgo(iso) {
  if (!iso) return 'never';
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  const t = h('time', { datetime: iso, title: new Date(iso).toISOString() });
  t.textContent = s < 60 ? 'just now' : s < 3600 ? `${Math.floor(s / 60)} min ago`
    : s < 86400 ? `${Math.floor(s / 3600)} h ago` : `${Math.floor(s / 86400)} d ago`;
  return t;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
}

export function fmtDuration(s) {
  if (!Number.isFinite(s) || s < 0) return '—';
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.ceil(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function badge(text, kind) {
  return h('span', { class: `badge ${kind || text}` }, text);
}

export function link(href, text, attrs) { return h('a', { href, ...(attrs || {}) }, text); }

// A page heading plus a place for the page's own actions.
export function pageHeader(title, ...actions) {
  return h('header', { class: 'pagehead' }, h('h1', { tabindex: '-1' }, title), h('div', { class: 'actions' }, actions));
}

export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), children);
}
