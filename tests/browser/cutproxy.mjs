// cutproxy.mjs: a TLS proxy between the browser and the admin listener
// that can cut a request on the wire: close both connections after N bytes
// of its body went to the server, or after the whole body went and before
// the server's reply reaches the browser. It terminates TLS (the browser
// ignores certificate errors; the server's side is verified against the
// test CA) because only the plain bytes show where a PATCH body is.
//
// Every request gets its own connection (the proxy asks the server for
// Connection: close): Chromium silently sends a request again when a
// reused keep-alive connection fails before the reply, which would hide a
// cut from the page and from tus-js-client.
import tls from 'node:tls';

const HEAD_MAX = 65536;

// The head of a request or reply: first line and headers (names lower case).
function parseHead(text) {
  const [first, ...lines] = text.split('\r\n');
  const headers = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { first, headers };
}

// The request head as sent upstream: Connection: close, no keep-alive.
function closingHead(text) {
  const lines = text.split('\r\n').filter((l, i) => i === 0 || !/^(connection|keep-alive)\s*:/i.test(l));
  return `${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`;
}

// cutProxy({ cert, key, ca, host, port, decide }): listens on 127.0.0.1
// (a free port) and forwards to host:port. decide(req) is awaited before
// a request goes upstream; req is { method, path, headers, length } and
// the answer one of
//   undefined                pass it through
//   { cutAfter: N, afterCut } cut once N bytes of the body went upstream,
//                            then call afterCut() if given
//   { hold: async () => {} } send the whole body, keep the reply from the
//                            browser, cut when hold() resolves
// Each request's outcome is passed to note(text), what went wrong to
// problem(text). Returns { port, close }.
export async function cutProxy({ cert, key, ca, host, port, decide, note, problem }) {
  const conns = new Set();
  const server = tls.createServer({ cert, key }, (client) => {
    conns.add(client);
    client.on('close', () => conns.delete(client));
    let head = Buffer.alloc(0);
    let up = null;
    let isCut = false;
    const cut = () => { isCut = true; client.destroy(); up?.destroy(); };
    // Chromium resets a connection it is done with: the browser reports
    // its own failures (lib.mjs).
    client.on('error', () => up?.destroy());
    const onHead = (data) => {
      head = Buffer.concat([head, data]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > HEAD_MAX) cut();
        return;
      }
      client.off('data', onHead);
      client.pause();
      const text = head.subarray(0, end).toString('latin1');
      const rest = head.subarray(end + 4);
      const { first, headers } = parseHead(text);
      const [method, path] = first.split(' ');
      if (headers['transfer-encoding']) throw new Error(`cutproxy: ${method} ${path} has a chunked body`);
      const req = { method, path, headers, length: Number(headers['content-length'] || 0) };
      Promise.resolve(decide(req)).then((plan) => forward(req, text, rest, plan || {}), (e) => { cut(); throw e; });
    };
    client.on('data', onHead);

    const forward = (req, text, rest, plan) => {
      up = tls.connect({ host, port, ca });
      up.on('error', (e) => { if (!isCut) problem(`proxy: ${req.method} ${req.path} to the server: ${e.message}`); client.destroy(); });
      client.on('close', () => up.destroy());
      let sent = 0; // body bytes written upstream
      let reply = null; // the reply's status and Upload-Offset
      let replyHead = Buffer.alloc(0);
      const off = req.headers['upload-offset'];
      const what = `${req.method} ${req.path}${off !== undefined ? ` at ${off}` : ''}`;
      up.on('data', (d) => {
        if (reply === null) {
          replyHead = Buffer.concat([replyHead, d]);
          const e = replyHead.indexOf('\r\n\r\n');
          if (e >= 0) {
            const r = parseHead(replyHead.subarray(0, e).toString('latin1'));
            const o = r.headers['upload-offset'];
            reply = `${r.first.split(' ')[1]}${o !== undefined ? ` ${o}` : ''}`;
            if (!plan.hold) note(`${what} -> ${reply}`);
          }
        }
        if (!plan.hold) client.write(d);
      });
      up.on('end', () => { if (!plan.hold) client.end(); });
      // The cut, once the last bytes meant for the server are with the
      // kernel: the server gets them, then the end of the connection; the
      // browser, still sending or waiting for the reply, a reset.
      const finish = () => {
        if (plan.cutAfter !== undefined) {
          note(`${what}: cut after ${sent} of ${req.length} body bytes`);
          cut();
          plan.afterCut?.();
          return;
        }
        plan.hold().then(() => {
          note(`${what}: cut after the whole body, reply ${reply === null ? 'not yet sent' : `${reply} withheld`}`);
          cut();
        }, (e) => { cut(); throw e; });
      };
      const body = (d) => {
        if (sent === req.length) return; // one request per connection
        let chunk = d;
        if (plan.cutAfter !== undefined && sent + d.length >= plan.cutAfter) chunk = d.subarray(0, plan.cutAfter - sent);
        sent += chunk.length;
        const done = (plan.cutAfter !== undefined && sent === plan.cutAfter) || (plan.hold && sent === req.length);
        if (done) {
          client.off('data', body);
          client.pause();
          up.write(chunk, finish);
        } else if (!up.write(chunk)) {
          client.pause();
          up.once('drain', () => client.resume());
        }
      };
      up.write(closingHead(text));
      client.on('data', body);
      if (rest.length) body(rest);
      if (sent < req.length || req.length === 0) client.resume();
    };
  });
  server.on('tlsClientError', (e) => problem(`proxy: TLS handshake with the browser: ${e.message}`));
  await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  return {
    port: server.address().port,
    close: () => { for (const c of conns) c.destroy(); server.close(); },
  };
}
