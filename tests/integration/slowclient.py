#!/usr/bin/env python3
"""Hostile HTTP clients for the integration tests (standard library only).

  slowclient.py MODE --port P [--tls CAFILE] [-n N] [--every S] [--max S] ...

MODE:
  header  slowloris: a request line, then one header byte every --every s
  body    a complete header with Content-Length, then one body byte every --every s
  idle    connect (TLS handshake if --tls) and send nothing
  noread  pipeline --requests GETs of --path, never read (small receive buffer)

header/body/idle keep going until the server closes each connection or --max
seconds pass, then print one line:
  opened=N closed=C open=O max_close_s=X median_close_s=Y
raw     send stdin as it is on one connection and print what comes back
        until the server closes or --max s pass ("TIMEOUT" then)
noread and idle with --hold keep the connections until the file --release
exists (or --max s), printing "holding N" once all are open, then close them.
"""
import argparse
import os
import selectors
import socket
import ssl
import statistics
import sys
import time


def connect(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.mode == "noread":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect((args.host, args.port))
    if args.tls:
        ctx = ssl.create_default_context(cafile=args.tls)
        ctx.check_hostname = False
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.setblocking(False)
    return s


def first_bytes(args):
    host = "Host: 127.0.0.1\r\n"
    if args.mode == "header":
        return ("GET %s HTTP/1.1\r\n%sX-Slow: " % (args.path, host)).encode()
    if args.mode == "body":
        return ("POST %s HTTP/1.1\r\n%sContent-Type: application/ocsp-request\r\n"
                "Content-Length: 100000\r\n\r\n" % (args.path, host)).encode()
    if args.mode == "noread":
        req = "GET %s HTTP/1.1\r\n%s\r\n" % (args.path, host)
        return (req * args.requests).encode()
    return b""


def send_some(s, data):
    try:
        s.send(data)
        return True
    except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
        return True
    except OSError:
        return False


def is_closed(s):
    """The server closed (EOF or reset); reads and drops any reply."""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return False
    except OSError:
        return True


def released(args, start):
    if time.monotonic() - start > args.max:
        return True
    return bool(args.release) and os.path.exists(args.release)


def hold(args, socks, start):
    print("holding %d" % len(socks), flush=True)
    while not released(args, start):
        time.sleep(0.05)  # a client pacing itself, not synchronisation
    for s in socks:
        s.close()


def trickle(args, socks, start):
    sel = selectors.DefaultSelector()
    born = {}
    for s, t in socks:
        sel.register(s, selectors.EVENT_READ)
        born[s] = t
    socks = [s for s, _ in socks]
    closed = []
    next_send = time.monotonic() + args.every
    while born and time.monotonic() - start < args.max:
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            if s in born and is_closed(s):
                closed.append(time.monotonic() - born.pop(s))
                sel.unregister(s)
                s.close()
        if args.mode != "idle" and time.monotonic() >= next_send:
            for s in list(born):
                send_some(s, b"x")
            next_send += args.every
    for s in born:
        s.close()
    print("opened=%d closed=%d open=%d max_close_s=%.2f median_close_s=%.2f" % (
        len(socks), len(closed), len(born), max(closed, default=0),
        statistics.median(closed) if closed else 0), flush=True)


def raw(args):
    s = socket.create_connection((args.host, args.port), timeout=10)
    if args.tls:
        ctx = ssl.create_default_context(cafile=args.tls)
        ctx.check_hostname = False
        s = ctx.wrap_socket(s)
    s.sendall(sys.stdin.buffer.read())
    s.settimeout(0.05)
    start = time.monotonic()
    got = b""
    while time.monotonic() - start < args.max:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not d:
            break
        got += d
    else:
        got += b"\nTIMEOUT\n"
    sys.stdout.buffer.write(got)
    s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["header", "body", "idle", "noread", "raw"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", help="CA file: speak TLS")
    p.add_argument("-n", type=int, default=10)
    p.add_argument("--every", type=float, default=0.5)
    p.add_argument("--max", type=float, default=30)
    p.add_argument("--path", default="/")
    p.add_argument("--requests", type=int, default=1)
    p.add_argument("--release", help="hold until this file exists")
    p.add_argument("--hold", action="store_true")
    args = p.parse_args()

    if args.mode == "raw":
        raw(args)
        return
    socks = []
    start = time.monotonic()
    for _ in range(args.n):
        try:
            s = connect(args)
        except OSError as e:
            print("connect failed after %d: %s" % (len(socks), e), file=sys.stderr)
            break
        data = first_bytes(args)
        if data and not send_some(s, data):
            s.close()
            continue
        socks.append((s, time.monotonic()))
    if args.mode == "noread" or args.hold:
        hold(args, [s for s, _ in socks], start)
    else:
        trickle(args, socks, start)


if __name__ == "__main__":
    main()
