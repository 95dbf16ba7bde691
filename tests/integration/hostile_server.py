#!/usr/bin/env python3
"""A hostile device API for t_agent_hostile.sh: HTTPS on 127.0.0.1, a
certificate from the test CA, and answers chosen by the file MODE (read on
every request) that a well-behaved quarklinkd never gives: redirects,
oversized or malformed JSON, URLs to other hosts, a download cut short.
Prints its port on stdout.  Usage: hostile_server.py CERT KEY DIR"""
import http.server
import os
import ssl
import sys

CERT, KEY, DIR = sys.argv[1:4]


def mode():
    with open(os.path.join(DIR, "MODE")) as f:
        return f.read().strip()


def asset(name):
    with open(os.path.join(DIR, name), "rb") as f:
        return f.read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        with open(os.path.join(DIR, "requests.log"), "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Range", "-")))

    def reply(self, status, body=b"", ctype="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        if self.path == "/device/v1/status":
            with open(os.path.join(DIR, "reports.log"), "ab") as f:
                f.write(data + b"\n")
            self.reply(204)
        else:
            self.reply(404)

    def do_GET(self):
        m = mode()
        if self.path == "/device/v1/update":
            if m == "redirect":
                self.reply(302, b"", headers=[("Location", "https://evil.example/device/v1/update")])
            elif m == "huge":
                self.reply(200, b'{"x":"' + b"a" * (2 * 1024 * 1024) + b'"}')
            elif m == "badjson":
                self.reply(200, b'{"deployment": 1, "image": ')
            elif m == "dupkeys":
                self.reply(200, b'{"deployment": 1, "deployment": 2}')
            elif m == "nul":
                self.reply(200, b'{"deployment": 1}\x00{"deployment": 2}')
            else:
                self.reply(200, asset("update-" + m + ".json"), headers=[("ETag", '"' + m + '"')])
            return
        if self.path == "/device/v1/images/1/signature":
            self.reply(200, asset("image.sig"), ctype="application/pkcs7-signature")
            return
        if self.path == "/device/v1/images/1":
            img = asset("image.served")
            rng = self.headers.get("Range")
            start = 0
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
            part = img[start:]
            status = 206 if start else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("ETag", '"img1"')
            if start:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(img) - 1, len(img)))
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            if m == "truncate":
                # Half of what was announced, then the connection drops.
                self.wfile.write(part[: len(part) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(part)
            return
        self.reply(404)


srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
