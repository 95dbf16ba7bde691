#!/usr/bin/python3
"""Decode an encrypted quarklink image (man/quarklink-image.5) with nothing
of quarklink's code: python3-cryptography's AES-GCM only.

usage: stream_decode.py KEYFILE ENCRYPTED OUTPUT
KEYFILE holds the 32-byte content key. Exit 0 when every segment
authenticates and the last one carries the last-segment flag; 1 otherwise
(OUTPUT is then removed)."""
import os
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HEADER = 24
TAG = 16


def decode(key, data, out):
    if len(key) != 32 or len(data) < HEADER + TAG:
        raise ValueError("short key or input")
    hdr = data[:HEADER]
    magic, version, alg, seg, prefix, reserved = struct.unpack(">8sBBI7s3s", hdr)
    if magic != b"QLSTREAM" or version != 1 or alg != 1 or reserved != b"\0\0\0":
        raise ValueError("not a version 1 AES-256-GCM stream")
    if seg == 0 or seg > 1 << 24:
        raise ValueError("bad segment size")
    aead = AESGCM(key)
    off, counter = HEADER, 0
    while True:
        n = min(seg + TAG, len(data) - off)
        last = off + n == len(data)
        if n < TAG:
            raise ValueError("truncated segment")
        nonce = prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")
        out.write(aead.decrypt(nonce, data[off:off + n], hdr))
        off += n
        counter += 1
        if last:
            return


def main():
    key = open(sys.argv[1], "rb").read()
    data = open(sys.argv[2], "rb").read()
    try:
        with open(sys.argv[3], "wb") as out:
            decode(key, data, out)
    except (ValueError, InvalidTag) as e:
        os.unlink(sys.argv[3])
        print("stream_decode: %s" % (e.__class__.__name__ if not str(e) else e),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
