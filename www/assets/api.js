// api.js: the one way the UI talks to quarklinkd: the public /api/v1/ with
// the session cookie, the CSRF token on every change, problem+json turned
// into an Error whose message is the server's one-line detail.

let csrf = null;
export function setCsrf(t) { csrf = t; }

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${detail}` : `${status} ${title || ''}`.trim());
    this.status = status;
    this.title = title;
  }
}

const WRITE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

export function enc(s) { return encodeURIComponent(s); }

// api(method, path, body, {raw, quiet401, type}): JSON in, JSON out (null
// on 204). With type, body is a string sent as it is with that Content-Type
// (a PEM certificate is not JSON).
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json, application/problem+json' };
  if (body !== undefined) headers['Content-Type'] = opts.type || 'application/json';
  if (WRITE.has(method) && csrf) headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method, headers, credentials: 'same-origin',
      body: body === undefined || opts.type ? body : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'Network error', `cannot reach the server (${e.message})`);
  }
  if (res.status === 401 && !opts.quiet401) {
    window.dispatchEvent(new CustomEvent('ql-session-expired'));
  }
  if (opts.raw && res.ok) return res;
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  if (type.includes('json')) {
    try { data = await res.json(); } catch { data = null; }
  }
  if (!res.ok) {
    throw new ApiError(res.status, data?.title || res.statusText, data?.detail);
  }
  return data;
}

// Download an authenticated binary (e.g. a signature) as a file.
export async function download(path, filename) {
  const res = await api('GET', path, undefined, { raw: true });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function csrfToken() { return csrf; }
