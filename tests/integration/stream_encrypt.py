#!/usr/bin/env python3
"""The encrypted form of quarklink-image(5), written independently of the
C code for t_agent_hostile.sh: 24-byte header "QLSTREAM" 1 1 S(BE32)
prefix(7) 000, then 64 KiB segments sealed with AES-256-GCM, nonce =
prefix || counter(BE32) || last flag, the header as associated data.
Usage: stream_encrypt.py KEYFILE(32 bytes) IN OUT"""
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEG = 65536
key = open(sys.argv[1], "rb").read()
data = open(sys.argv[2], "rb").read()
prefix = os.urandom(7)
hdr = b"QLSTREAM" + bytes([1, 1]) + struct.pack(">I", SEG) + prefix + b"\0\0\0"
aead = AESGCM(key)
n = max(1, (len(data) + SEG - 1) // SEG)
with open(sys.argv[3], "wb") as out:
    out.write(hdr)
    for i in range(n):
        nonce = prefix + struct.pack(">I", i) + bytes([1 if i == n - 1 else 0])
        out.write(aead.encrypt(nonce, data[i * SEG:(i + 1) * SEG], hdr))
