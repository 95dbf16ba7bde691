// vendor.js: the npm libraries the build copied into /vendor under
// content-hashed names (cached as immutable); vendor.json, revalidated on
// every load, maps plain names to them. Loaded only by pages that need them.
let manifest = null;
const loaded = new Map();

async function names() {
  if (!manifest) {
    const r = await fetch('/vendor/vendor.json', { credentials: 'same-origin' });
    if (!r.ok) throw new Error('the UI\'s libraries are not installed (www/vendor: run npm ci, then make)');
    manifest = await r.json();
  }
  return manifest;
}

function add(tag, attrs) {
  return new Promise((resolve, reject) => {
    const el = document.createElement(tag);
    Object.assign(el, attrs);
    el.onload = resolve;
    el.onerror = () => reject(new Error(`cannot load ${attrs.src || attrs.href}`));
    document.head.append(el);
  });
}

// load('uPlot') -> window.uPlot; load('tus') -> window.tus.
export async function load(lib) {
  if (!loaded.has(lib)) {
    loaded.set(lib, (async () => {
      const m = await names();
      if (m[`${lib}.css`]) await add('link', { rel: 'stylesheet', href: `/vendor/${m[`${lib}.css`]}` });
      await add('script', { src: `/vendor/${m[`${lib}.js`]}` });
      return window[lib];
    })());
  }
  try { return await loaded.get(lib); } catch (e) { loaded.delete(lib); throw e; }
}
