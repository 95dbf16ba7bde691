// app.js: the single-page shell. Hash routes (#/p/PROJECT/devices ...) so
// the server needs no fallback for client paths; a session check at start;
// an expired session sends the user back to the login form with a message.
import { api, setCsrf, enc } from './api.js';
import { h, clear, link } from './dom.js';

const pages = {
  login: () => import('./pages/login.js'),
  projects: () => import('./pages/projects.js'),
  settings: () => import('./pages/settings.js'),
  overview: () => import('./pages/overview.js'),
  devices: () => import('./pages/devices.js'),
  device: () => import('./pages/device.js'),
  enroll: () => import('./pages/enroll.js'),
  certs: () => import('./pages/certs.js'),
  cert: () => import('./pages/cert.js'),
  images: () => import('./pages/images.js'),
  deployments: () => import('./pages/deployments.js'),
  deployment: () => import('./pages/deployment.js'),
  users: () => import('./pages/users.js'),
  audit: () => import('./pages/audit.js'),
};

// [pattern, page]: first match wins; :name captures one segment.
const routes = [
  ['/login', 'login'],
  ['/projects', 'projects'],
  ['/users', 'users'],
  ['/audit', 'audit'],
  ['/p/:project', 'overview'],
  ['/p/:project/settings', 'settings'],
  ['/p/:project/devices', 'devices'],
  ['/p/:project/devices/:device', 'device'],
  ['/p/:project/enrollment', 'enroll'],
  ['/p/:project/certificates', 'certs'],
  ['/p/:project/certificates/:serial', 'cert'],
  ['/p/:project/images', 'images'],
  ['/p/:project/deployments', 'deployments'],
  ['/p/:project/deployments/:deployment', 'deployment'],
];

function match(path) {
  const segs = path.split('/').filter(Boolean);
  for (const [pat, page] of routes) {
    const ps = pat.split('/').filter(Boolean);
    if (ps.length !== segs.length) continue;
    const params = {};
    let ok = true;
    ps.forEach((p, i) => {
      if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(segs[i]);
      else if (p !== segs[i]) ok = false;
    });
    if (ok) return { page, params };
  }
  return null;
}

const state = { session: null, cleanup: null, loginMessage: null, seq: 0 };

export function session() { return state.session; }
export function navigate(hash) { if (location.hash === hash) route(); else location.hash = hash; }
export function isAdmin() { return state.session?.role === 'admin'; }
export function canWrite() { return state.session && state.session.role !== 'viewer'; }

// Pages call this to run fn every ms while they are shown (polling for new
// devices, rollout progress); stopped when the page changes.
const timers = new Set();
export function every(ms, fn) {
  const t = setInterval(() => { if (!document.hidden) fn(); }, ms);
  timers.add(t);
  return t;
}

function stopTimers() { for (const t of timers) clearInterval(t); timers.clear(); }

async function loadSession() {
  try {
    const s = await api('GET', '/session', undefined, { quiet401: true });
    state.session = s;
    setCsrf(s.csrf_token || null);
  } catch (e) {
    state.session = null;
    if (e.status !== 401) state.loginMessage = e.message;
  }
}

export async function loggedIn() {
  state.loginMessage = null;
  await loadSession();
  navigate('#/projects');
}

export async function logout() {
  try { await api('POST', '/logout'); } catch { /* the session is gone either way */ }
  state.session = null;
  setCsrf(null);
  state.loginMessage = 'You have logged out.';
  navigate('#/login');
}

window.addEventListener('ql-session-expired', () => {
  if (!state.session) return;
  state.session = null;
  setCsrf(null);
  state.loginMessage = 'Your session has expired or was ended. Please log in again.';
  navigate('#/login');
});

// Kept until the next login: a page's poll may meet the 401 first and show
// the login form, and the user may navigate before logging in again.
export function loginMessage() { return state.loginMessage; }

function nav(project) {
  const cur = location.hash;
  const item = (href, text, exact) => h('li', {}, link(href, text,
    cur === href || (!exact && cur.startsWith(`${href}/`)) ? { 'aria-current': 'page' } : {}));
  const p = project ? `#/p/${enc(project)}` : null;
  return h('nav', { 'aria-label': 'Main' },
    h('ul', {},
      item('#/projects', 'Projects'),
      p ? [item(p, 'Overview', true), item(`${p}/devices`, 'Devices'), item(`${p}/enrollment`, 'Enrollment'),
        item(`${p}/certificates`, 'Certificates'), item(`${p}/images`, 'Images'),
        item(`${p}/deployments`, 'Deployments'), item(`${p}/settings`, 'Settings')] : null,
      isAdmin() ? item('#/users', 'Users & tokens') : null,
      item('#/audit', 'Audit log')));
}

function shell(project, main) {
  const s = state.session;
  const user = s.actor.replace(/^user:/, '');
  return [
    h('a', { href: '#main', class: 'skip' }, 'Skip to content'),
    h('header', { class: 'top' },
      h('a', { href: '#/projects', class: 'brand' }, 'quarklink'),
      project ? h('span', { class: 'project', 'aria-label': 'Project' }, project) : null,
      h('span', { class: 'who' }, `${user} (${s.role})`),
      h('button', { type: 'button', class: 'link', on: { click: logout } }, 'Log out')),
    h('div', { class: 'layout' }, nav(project), main),
  ];
}

async function route() {
  const seq = ++state.seq;
  stopTimers();
  const path = location.hash.replace(/^#/, '') || '/projects';
  const m = match(path);
  if (state.session === null && m?.page !== 'login') await loadSession();
  if (seq !== state.seq) return;
  const app = document.getElementById('app');
  if (!state.session && m?.page !== 'login') { navigate('#/login'); return; }
  if (state.session && m?.page === 'login') { navigate('#/projects'); return; }
  const main = h('main', { id: 'main', tabindex: '-1' });
  if (!m) {
    main.append(h('h1', {}, 'Not found'), h('p', {}, `No page ${path}. `), link('#/projects', 'Projects'));
  }
  clear(app);
  if (m?.page === 'login') app.append(main);
  else app.append(...shell(m?.params.project, main));
  if (!m) return;
  try {
    const mod = await pages[m.page]();
    if (seq !== state.seq) return;
    await mod.render(main, m.params);
  } catch (e) {
    if (seq !== state.seq) return;
    main.append(h('p', { class: 'error', role: 'alert' }, e.message || String(e)));
  }
  if (seq !== state.seq) return;
  const h1 = main.querySelector('h1');
  document.title = h1 ? `${h1.textContent} · quarklink` : 'quarklink';
  if (document.activeElement === document.body || !main.contains(document.activeElement)) {
    (m.page === 'login' ? main.querySelector('input') : h1)?.focus({ preventScroll: true });
  }
}

window.addEventListener('hashchange', route);
route();
