#!/usr/bin/env python3
"""A stand-in for quarklinkd's attestation and EST endpoints, for
t_agent_attest_tpm.sh: it checks nothing itself, it makes the server's
answers (the credential with tpm2_makecredential -T none, the reference
implementation, not ours) and saves what the agent sent so the test can
check it with tpm2-tools and openssl.  HTTPS on 127.0.0.1 with a
certificate from the test CA; client certificates are asked for (not
required) so the device API calls use the TPM-held key for TLS.  The file
MODE (read on every request) picks the answers:
  required      the project requires attestation (default)
  refuse-proof  the proof is refused with 403 and a reason
  tampered      quotes are judged tampered and the update poll refused
  other-name    the credential is made for another key's Name than the AK's
  bad-blob      credential_blob is not a TPM2B_ID_OBJECT
  many-pcrs     quotes over PCRs 0..15 and 23 (more than one PCR_Read answers)
  bad-pcrs      a quote challenge asking for PCR 24
Prints its port on stdout.  Usage: attest_server.py CERT KEY ISSUER_CERT ISSUER_KEY ROOT_CERT DIR"""
import base64
import datetime
import hashlib
import http.server
import json
import os
import secrets
import ssl
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

CERT, KEY, CA_CERT, CA_KEY, ROOT_CERT, DIR = sys.argv[1:7]
with open(CA_CERT, "rb") as f:
    CA = x509.load_pem_x509_certificate(f.read())
with open(CA_KEY, "rb") as f:
    CAKEY = serialization.load_pem_private_key(f.read(), None)
with open(ROOT_CERT, "rb") as f:
    ROOT = x509.load_pem_x509_certificate(f.read())
PCRS = list(range(8))


def mode():
    try:
        with open(os.path.join(DIR, "MODE")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return "required"


def save(name, data):
    with open(os.path.join(DIR, name), "wb") as f:
        f.write(data)


def load(name):
    with open(os.path.join(DIR, name), "rb") as f:
        return f.read()


def b64(data):
    return base64.b64encode(data).decode()


def name_of(tpm2b_public):
    """TPM Name: nameAlg (SHA-256) || SHA-256 of the TPMT_PUBLIC."""
    return b"\x00\x0b" + hashlib.sha256(tpm2b_public[2:]).digest()


def ecc_point(tpm2b_public):
    """x, y of an ECC TPM2B_PUBLIC (no symmetric, any scheme, no kdf)."""
    p = tpm2b_public[2:]
    off = 2 + 2 + 4
    off += 2 + int.from_bytes(p[off:off + 2], "big")       # authPolicy
    for _ in range(2):                                       # symmetric, scheme
        alg = int.from_bytes(p[off:off + 2], "big")
        off += 2 if alg == 0x0010 else (6 if _ == 0 else 4)
    off += 2                                                 # curveID
    alg = int.from_bytes(p[off:off + 2], "big")
    off += 2 if alg == 0x0010 else 4                         # kdf
    n = int.from_bytes(p[off:off + 2], "big")
    x = p[off + 2:off + 2 + n]
    off += 2 + n
    n = int.from_bytes(p[off:off + 2], "big")
    y = p[off + 2:off + 2 + n]
    return int.from_bytes(x, "big"), int.from_bytes(y, "big")


def device_id(tpm2b_public):
    x, y = ecc_point(tpm2b_public)
    key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b32encode(hashlib.sha256(spki).digest()[:20]).decode().lower().rstrip("=")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        with open(os.path.join(DIR, "requests.log"), "a") as f:
            f.write("%s %s\n" % (self.command, self.path))

    def reply(self, status, body=b"", ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def problem(self, status, detail):
        self.reply(status, {"title": "refused", "status": status, "detail": detail},
                   "application/problem+json")

    def do_GET(self):
        if self.path == "/device/v1/attest/p1":
            self.reply(200, {"required": mode() != "not-required", "bank": "sha256",
                             "pcrs": PCRS})
        elif self.path == "/.well-known/est/p1/cacerts":
            self.reply(200, base64.encodebytes(pkcs7.serialize_certificates(
                [CA, ROOT], serialization.Encoding.DER)), "application/pkcs7-mime")
        elif self.path == "/device/v1/update":
            if mode() == "tampered":
                self.problem(403, "device failed attestation: PCR values differ from the"
                                  " reference; an admin must accept them")
            else:
                self.reply(204)
        else:
            self.reply(404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        if self.path == "/device/v1/attest/p1/challenge":
            self.challenge(data)
        elif self.path == "/device/v1/attest/p1/proof":
            save("proof.json", data)
            doc = json.loads(data)
            if mode() == "refuse-proof":
                self.problem(403, "credential was not activated by the TPM holding this EK")
            elif doc.get("session") != load("session").decode():
                self.problem(403, "attestation session unknown, used or expired")
            else:
                self.reply(200, {"device_id": device_id(base64.b64decode(doc["key_public"])),
                                 "expires_in": 300})
        elif self.path in ("/.well-known/est/p1/simpleenroll",
                           "/.well-known/est/p1/simplereenroll"):
            self.enroll(data)
        elif self.path == "/device/v1/quote/challenge":
            nonce = secrets.token_bytes(32)
            save("quote-nonce.bin", nonce)
            pcrs = {"many-pcrs": list(range(16)) + [23], "bad-pcrs": [0, 24]}.get(mode(), PCRS)
            self.reply(200, {"nonce": b64(nonce), "bank": "sha256", "pcrs": pcrs,
                             "expires_in": 300})
        elif self.path == "/device/v1/quote":
            save("quote.json", data)
            # Who authenticated the TLS connection (the TPM-held key's certificate).
            peer = self.connection.getpeercert() or {}
            cn = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
            save("quote-peer", (cn[0] if cn else "").encode())
            if mode() == "tampered":
                self.reply(200, {"state": "tampered", "reference": "differs", "differ": [7]})
            else:
                self.reply(200, {"state": "trusted", "reference": "recorded", "differ": []})
        elif self.path == "/device/v1/status":
            self.reply(204)
        else:
            self.reply(404)

    def challenge(self, data):
        save("challenge.json", data)
        doc = json.loads(data)
        ek = base64.b64decode(doc["ek_public"])
        ak = base64.b64decode(doc["ak_public"])
        save("ek.pub", ek)
        secret = secrets.token_bytes(32)
        save("secret.bin", secret)
        name = name_of(ak)
        if mode() == "other-name":
            name = b"\x00\x0b" + secrets.token_bytes(32)
        out = os.path.join(DIR, "cred.out")
        subprocess.run(["tpm2_makecredential", "-T", "none", "-u", os.path.join(DIR, "ek.pub"),
                        "-s", os.path.join(DIR, "secret.bin"), "-n", name.hex(),
                        "-o", out], check=True, capture_output=True)
        # tpm2-tools' file: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
        cred = load("cred.out")[8:]
        n = 2 + int.from_bytes(cred[:2], "big")
        session = secrets.token_hex(16)
        save("session", session.encode())
        nonce = secrets.token_bytes(32)
        save("nonce.bin", nonce)
        blob = cred[:n]
        if mode() == "bad-blob":
            blob = b"\x00\x10" + secrets.token_bytes(8)
        self.reply(201, {"session": session, "credential_blob": b64(blob),
                         "encrypted_secret": b64(cred[n:]), "nonce": b64(nonce),
                         "expires_in": 300})

    def enroll(self, data):
        der = base64.b64decode(data)
        save("csr.der", der)
        csr = x509.load_der_x509_csr(der)
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(CA.subject)
                .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(CAKEY, hashes.SHA256()))
        self.reply(200, base64.encodebytes(pkcs7.serialize_certificates(
            [cert], serialization.Encoding.DER)), "application/pkcs7-mime")


srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
ctx.load_verify_locations(ROOT_CERT)
ctx.verify_mode = ssl.CERT_OPTIONAL
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
