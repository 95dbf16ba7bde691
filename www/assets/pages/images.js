// images.js: upload an image with tus (resumable: after a network drop it
// retries, after a page reload choosing the same file again continues
// where the server stopped), in chunks of the server's advertised maximum
// PATCH size, with a progress bar, speed and time left; the image list,
// signing (confirmed) and downloading the signature and manifest.
import { api, enc, qs, csrfToken, download } from '../api.js';
import { h, field, checkbox, errorSlot, showError, onSubmit, table, fmtTime, fmtBytes, fmtDuration, pageHeader, section, confirmDialog, clear, notice, badge } from '../dom.js';
import { canWrite } from '../app.js';
import { load } from '../vendor.js';

const ENDPOINT = '/api/v1/uploads/';
const DEFAULT_CHUNK = 32 * 1024 * 1024;

// The largest PATCH body the server takes (Quarklink-Max-Chunk-Size on
// OPTIONS), so no chunk is refused with 413.
async function serverLimits() {
  // The API takes the CSRF token on every method but GET and HEAD.
  const r = await fetch(ENDPOINT, { method: 'OPTIONS', credentials: 'same-origin', headers: { 'Tus-Resumable': '1.0.0', 'X-CSRF-Token': csrfToken() || '' } });
  const chunk = Number(r.headers.get('Quarklink-Max-Chunk-Size')) || DEFAULT_CHUNK;
  const max = Number(r.headers.get('Tus-Max-Size')) || 0;
  return { chunk, max, ok: r.ok, status: r.status };
}

function pendingUploads(project) {
  const out = [];
  for (let i = 0; i < localStorage.length; i += 1) {
    const k = localStorage.key(i);
    if (!k.startsWith(`tus::ql:${project}:`)) continue;
    try { out.push(JSON.parse(localStorage.getItem(k))); } catch { /* not ours */ }
  }
  return out;
}

function uploader(project, onDone) {
  const err = errorSlot();
  const name = h('input', { name: 'name', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}', autocomplete: 'off' });
  const version = h('input', { name: 'version', required: true, pattern: '[0-9]{1,9}(\\.[0-9]{1,9}){0,3}', autocomplete: 'off', placeholder: '1.2.3' });
  const hardware = h('input', { name: 'hardware', autocomplete: 'off', placeholder: 'gw-a,gw-b' });
  const file = h('input', { name: 'file', type: 'file', required: true });
  const encrypt = checkbox('Encrypt the image (a key per device)', false, { name: 'encrypt' });
  const bar = h('progress', { max: 100, value: 0, 'aria-label': 'Upload progress' });
  const stats = h('p', { class: 'stats', 'aria-live': 'polite' });
  const progress = h('div', { class: 'progress', hidden: true }, bar, stats);
  const start = h('button', { type: 'submit', class: 'primary' }, 'Upload');
  const pause = h('button', { type: 'button', hidden: true }, 'Pause');
  const pending = pendingUploads(project);
  const form = h('form', { class: 'grid' },
    field('Image name', name), field('Version', version, 'Newer than every version of this name.'),
    field('Compatible hardware', hardware, 'Comma-separated names a device\'s agent must match.'),
    field('Image file', file), encrypt,
    pending.length ? notice(`Unfinished upload${pending.length > 1 ? 's' : ''}: ${pending.map((u) => `${u.metadata?.name} ${u.metadata?.version} (${u.metadata?.filename})`).join(', ')}. Choose the same file with the same name and version to continue.`, 'info') : null,
    err, progress, h('div', { class: 'buttons' }, start, pause));
  let upload = null;
  let paused = false;
  pause.addEventListener('click', () => {
    if (!upload) return;
    if (paused) { paused = false; pause.textContent = 'Pause'; upload.start(); } else { paused = true; pause.textContent = 'Resume'; upload.abort(); }
  });
  onSubmit(form, err, async (fd) => {
    const tus = await load('tus');
    const limits = await serverLimits();
    if (!limits.ok) throw new Error(`the upload endpoint answered ${limits.status} to OPTIONS`);
    const f = file.files[0];
    if (!f) throw new Error('choose a file');
    if (limits.max && f.size > limits.max) throw new Error(`the file is ${fmtBytes(f.size)}, over the server's maximum of ${fmtBytes(limits.max)}`);
    const meta = { project, name: fd.get('name'), version: fd.get('version'), encrypt: fd.has('encrypt') ? 'true' : 'false', filename: f.name };
    if (fd.get('hardware')) meta.hardware = String(fd.get('hardware')).split(',').map((s) => s.trim()).filter(Boolean).join(',');
    progress.hidden = false;
    const t0 = performance.now();
    let samples = [];
    await new Promise((resolve, reject) => {
      upload = new tus.Upload(f, {
        endpoint: ENDPOINT,
        chunkSize: limits.chunk,
        retryDelays: [0, 1000, 2000, 5000, 10000, 20000, 30000],
        metadata: meta,
        headers: { 'X-CSRF-Token': csrfToken() || '' },
        storeFingerprintForResuming: true,
        removeFingerprintOnSuccess: true,
        fingerprint: async (file2) => ['ql', project, meta.name, meta.version, file2.name, file2.size, file2.lastModified].join(':'),
        onProgress(sent, total) {
          const now = performance.now();
          samples.push([now, sent]);
          samples = samples.filter(([t]) => now - t < 5000);
          const [t1, s1] = samples[0];
          const speed = now > t1 ? ((sent - s1) * 1000) / (now - t1) : 0;
          bar.value = total ? (sent * 100) / total : 0;
          stats.textContent = `${fmtBytes(sent)} of ${fmtBytes(total)} (${bar.value.toFixed(1)} %), ${fmtBytes(speed)}/s, ${speed > 0 ? fmtDuration((total - sent) / speed) : '—'} left`;
        },
        onShouldRetry(e) {
          const st = e?.originalResponse?.getStatus?.();
          stats.textContent = `connection problem (${st || e.message}); retrying…`;
          return !st || st >= 500 || st === 409 || st === 423;
        },
        onSuccess() { resolve(); },
        onError(e) {
          const body = e?.originalResponse?.getBody?.();
          let detail = e.message;
          try { detail = JSON.parse(body).detail || detail; } catch { /* not problem+json */ }
          reject(new Error(`upload failed: ${detail}`));
        },
      });
      upload.findPreviousUploads().then((prev) => {
        if (prev.length) upload.resumeFromPreviousUpload(prev[0]);
        pause.hidden = false;
        upload.start();
      }, reject);
    }).finally(() => { pause.hidden = true; });
    stats.textContent = `Uploaded ${fmtBytes(f.size)} in ${fmtDuration((performance.now() - t0) / 1000)}.`;
    form.reset();
    await onDone();
  });
  return form;
}

export async function render(main, { project }) {
  const base = `/projects/${enc(project)}/images`;
  main.append(pageHeader(`Images of ${project}`));
  const err = errorSlot();
  const list = h('div');
  const loadList = async () => {
    showError(err, null);
    try {
      const r = await api('GET', `${base}${qs({ limit: 1000 })}`);
      clear(list).append(table([
        { label: 'Name', value: (i) => i.name },
        { label: 'Version', value: (i) => i.version },
        { label: 'Size', value: (i) => fmtBytes(i.size), class: 'num' },
        { label: 'SHA-256', value: (i) => h('span', { class: 'mono', title: i.sha256 }, `${i.sha256.slice(0, 16)}…`) },
        { label: 'Status', value: (i) => badge(i.status) },
        { label: 'Encrypted', value: (i) => (i.encrypt ? 'yes' : 'no') },
        { label: 'Uploaded', value: (i) => [fmtTime(i.created_at), ` by ${i.uploaded_by}`] },
        { label: 'Actions', value: (i) => actions(i) },
      ], r.items, { caption: 'Images', empty: 'No images yet.' }));
    } catch (e) {
      showError(err, e.status === 404 ? new Error('This server has no images API yet (404).') : e);
    }
  };
  const actions = (i) => {
    const out = [];
    if (i.status !== 'signed' && canWrite()) {
      out.push(h('button', {
        type: 'button', class: 'small primary', 'aria-label': `Sign ${i.name} ${i.version}`,
        on: { click: async () => {
          if (!await confirmDialog(`Sign ${i.name} ${i.version}?`, `The project's code-signing key signs ${fmtBytes(i.size)} with SHA-256 ${i.sha256}. Devices install only signed images.`, { confirm: 'Sign' })) return;
          showError(err, null);
          try { await api('POST', `${base}/${i.id}/sign`, {}); await loadList(); } catch (e) { showError(err, new Error(`Sign ${i.name} ${i.version}: ${e.message}`)); }
        } },
      }, 'Sign…'));
    }
    if (i.status === 'signed') {
      const dl = (what, ext, label) => h('button', {
        type: 'button', class: 'small', 'aria-label': `${label} of ${i.name} ${i.version}`,
        on: { click: async () => { try { await download(`${base}/${i.id}/${what}`, `${i.name}-${i.version}.${ext}`); } catch (e) { showError(err, e); } } },
      }, label);
      out.push(dl('signature', 'p7s', 'Signature'), dl('manifest', 'manifest.p7m', 'Manifest'));
    }
    return h('span', { class: 'rowactions' }, out);
  };
  main.append(section('Images', err, list,
    h('p', { class: 'hint' }, 'Verify a signature with the root certificate (', h('a', { href: '/api/v1/pki/root.crt', download: 'root.crt' }, 'root.crt'),
      ', DER; openssl x509 -inform DER -in root.crt -out root.pem): openssl cms -verify -binary -inform DER -in IMAGE.p7s -content IMAGE -CAfile root.pem -purpose any')));
  if (canWrite()) main.append(section('Upload an image', uploader(project, loadList)));
  await loadList();
}
