#!/usr/bin/python3
"""attest_client.py: an independent device side of quarklink's TPM
attestation (quarklink-attest(7), the "Issue 15 contract"), to test the
server with something other than ql-agent.

The TPM is driven with ESAPI (python3-tpm2-pytss) over any TCTI: "swtpm:..."
talks to swtpm directly, with no resource manager, so every transient
object and session is flushed after use (the TPM has three or so slots);
"tabrmd:..." goes through tpm2-abrmd, which a TPM shared with ql-agent and
with the tpm2-openssl provider needs.  The keys this client makes are
primaries (EK, AK, SRK: deterministic from the hierarchy seeds, so a later
run gets the same AK back) and one identity key persisted at --key-handle
for OpenSSL (the CSR and the TLS client key).  HTTPS without a client
certificate with Python's ssl module; with one, through
"openssl s_client -provider tpm2" because the private key stays in the TPM.

Every subcommand prints one JSON object on stdout: the HTTP step that
ended the flow ("step"), its "status", the problem "detail" if any, and
what the test needs to check ("device_id", "ek_sha256", ...).  Refusals
are results, not errors: the exit status is 0 when the flow ran to its
end or to a refusal, 2 when this client or its TPM failed.

Subcommands (the hostile ones are the refusals of issue 15):
  info                 GET /device/v1/attest/{project}
  export-ek DIR        write this TPM's EK certificate and TPM2B_PUBLIC to DIR
  enroll OUTDIR        the whole flow: challenge, ActivateCredential,
                       Certify, proof, CSR (key in the TPM), simpleenroll
  ek-mismatch FILE     challenge with this TPM's EK certificate and the EK
                       public of another TPM (FILE, from export-ek)
  other-tpm DIR        challenge with another TPM's EK (DIR, from export-ek)
                       and this TPM's AK; this TPM cannot activate the
                       credential; send what it has
  ak-unrestricted      challenge with an AK that is not restricted
  replay-proof         a good proof, then the same proof again
  retry-proof          a proof with a wrong secret, then the right one
                       (any attempt uses the session up)
  wrong-project P2     a session of --project, proven to project P2
  not-fixedtpm {import,created}
                       certify an identity key that is not fixedTPM: a
                       software key brought in with TPM2_Import, or a key
                       made in the TPM with fixedTPM (and fixedParent) clear
  csr-mismatch         proof for TPM key K1, simpleenroll with a CSR of a
                       software key K2
  quote CERT KEY       mTLS quote challenge and quote with the AK
       [--hostile other-ak|other-pcrs|replay|bad-values]
  mtls METHOD PATH CERT KEY [--body JSON]
                       one request with the TPM-held client key
"""

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import urllib.parse

# The ESAPI logs a warning for every TPM error answer, expected ones too
# (NV indexes that are not defined, the refused activation): quiet by default.
os.environ.setdefault("TSS2_LOG", "all+NONE")

from tpm2_pytss import ESAPI, TSS2_Exception
from tpm2_pytss.types import (
    TPM2B_DATA,
    TPM2B_ENCRYPTED_SECRET,
    TPM2B_ID_OBJECT,
    TPM2B_PUBLIC,
    TPM2B_SENSITIVE,
    TPM2B_SENSITIVE_CREATE,
    TPML_PCR_SELECTION,
    TPMT_SIG_SCHEME,
    TPMT_SYM_DEF,
    TPMT_SYM_DEF_OBJECT,
    TPMU_SYM_KEY_BITS,
    TPMU_SYM_MODE,
)
from tpm2_pytss.constants import (
    ESYS_TR,
    TPM2_ALG,
    TPM2_ECC,
    TPM2_SE,
    TPMA_OBJECT,
)
from tpm2_pytss.utils import NVReadEK, create_ek_template, wrap

EK_CERT_INDEX = 0x01C00002
BODY_MAX = 1 << 20


class ClientError(Exception):
    """This client or its TPM failed (exit status 2)."""


class Refused(Exception):
    """The server ended the flow; carries the result to print."""

    def __init__(self, result):
        super().__init__(result.get("detail", ""))
        self.result = result


@contextlib.contextmanager
def annotate(**extra):
    """A refusal inside the block carries extra (what came before it)."""
    try:
        yield
    except Refused as r:
        r.result.update(extra)
        raise


def b64(data):
    return base64.b64encode(bytes(data)).decode()


def unb64(text, what):
    try:
        return base64.b64decode(text, validate=True)
    except (TypeError, ValueError) as e:
        raise ClientError(f"{what} is not base64: {e}") from e


# ------------------------------------------------------------------ HTTP


class Server:
    def __init__(self, args):
        u = urllib.parse.urlsplit(args.url)
        self.host, self.port = u.hostname, u.port or 443
        self.cacert = args.cacert
        self.project = args.project
        self.tcti = args.tcti
        self.token = args.token
        self._ctx = None

    @property
    def ctx(self):
        if self._ctx is None:
            self._ctx = ssl.create_default_context(cafile=self.cacert)
        return self._ctx

    def request(self, method, path, body=None, ctype="application/json", headers=None):
        """One request without a client certificate: (status, headers, bytes)."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        h = dict(headers or {})
        if body is not None:
            h["Content-Type"] = ctype
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read(BODY_MAX + 1)
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data[:BODY_MAX]
        finally:
            conn.close()

    def request_mtls(self, method, path, body, cert, key):
        """One request with a TPM-held client key, through openssl s_client
        and the tpm2 provider (TPM2OPENSSL_TCTI = this client's TCTI)."""
        payload = json.dumps(body).encode() if body is not None else b""
        req = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + payload
        cmd = [
            "openssl", "s_client", "-quiet", "-verify_return_error",
            "-connect", f"{self.host}:{self.port}", "-verify_ip", self.host,
            "-CAfile", self.cacert, "-cert", cert, "-key", key,
            "-provider", "tpm2", "-provider", "default", "-propquery", "?provider=tpm2",
        ]
        env = dict(os.environ, TPM2OPENSSL_TCTI=self.tcti)
        p = subprocess.run(cmd, input=req, capture_output=True, env=env, timeout=60)
        raw = p.stdout
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ClientError(f"s_client: no HTTP response (rc {p.returncode}): "
                              f"{p.stderr.decode(errors='replace')[-500:]}")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            rest = rest[: int(hdrs["content-length"])]
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while rest:
                size_line, _, rest = rest.partition(b"\r\n")
                n = int(size_line.split(b";")[0], 16)
                if n == 0:
                    break
                out += rest[:n]
                rest = rest[n + 2:]
            rest = out
        return status, hdrs, rest

    def json_call(self, step, method, path, body=None, want=(200, 201), mtls=None):
        if mtls:
            status, hdrs, data = self.request_mtls(method, path, body, *mtls)
        else:
            payload = json.dumps(body).encode() if body is not None else None
            status, hdrs, data = self.request(method, path, payload)
        parsed = None
        if data:
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = None
        result = {"step": step, "status": status, "content_type": hdrs.get("content-type", "")}
        if isinstance(parsed, dict) and "detail" in parsed:
            result["detail"] = parsed["detail"]
        if status not in want:
            if parsed is None and data:
                result["body"] = data[:500].decode(errors="replace")
            raise Refused(result)
        return status, parsed, result

    def attest_path(self, what="", project=None):
        p = urllib.parse.quote(project or self.project, safe="")
        return f"/device/v1/attest/{p}{what}"


# ------------------------------------------------------------------ TPM


def sym_aes128cfb():
    return TPMT_SYM_DEF(
        algorithm=TPM2_ALG.AES,
        keyBits=TPMU_SYM_KEY_BITS(aes=128),
        mode=TPMU_SYM_MODE(aes=TPM2_ALG.CFB),
    )


AK_ATTRS = (TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.SIGN_ENCRYPT | TPMA_OBJECT.FIXEDTPM
            | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN
            | TPMA_OBJECT.USERWITHAUTH)
ID_ATTRS = (TPMA_OBJECT.SIGN_ENCRYPT | TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT
            | TPMA_OBJECT.SENSITIVEDATAORIGIN | TPMA_OBJECT.USERWITHAUTH)
SRK_ATTRS = (TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.DECRYPT | TPMA_OBJECT.FIXEDTPM
             | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN
             | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.NODA)


class Tpm:
    """An ESAPI context whose transient objects and sessions are flushed
    when it closes (a direct swtpm connection has no resource manager)."""

    def __init__(self, tcti):
        self.tcti = tcti
        self.ectx = None
        self.transients = []

    def __enter__(self):
        try:
            self.ectx = ESAPI(self.tcti)
        except TSS2_Exception as e:
            raise ClientError(f"cannot open the TPM at {self.tcti}: {e}") from e
        return self

    def __exit__(self, *exc):
        for h in reversed(self.transients):
            try:
                self.ectx.flush_context(h)
            except TSS2_Exception:
                pass
        self.transients = []
        self.ectx.close()
        self.ectx = None

    def track(self, handle):
        self.transients.append(handle)
        return handle

    def flush(self, handle):
        self.transients.remove(handle)
        self.ectx.flush_context(handle)

    def ek(self):
        """The TCG default RSA 2048 EK (template and unique from NV as the EK
        credential profile says) and its certificate: (handle, TPM2B_PUBLIC, DER)."""
        cert, templ = create_ek_template("EK-RSA2048", NVReadEK(self.ectx))
        if not cert:
            raise ClientError("this TPM has no RSA EK certificate at 0x01c00002")
        h, pub, _, _, _ = self.ectx.create_primary(
            None, templ, ESYS_TR.ENDORSEMENT)
        self.track(h)
        return h, pub, bytes(cert)

    def ak(self, alg="ecc", label=b"quarklink-ak", attrs=AK_ATTRS):
        """A restricted signing primary in the endorsement hierarchy; the
        same label gives the same key again, another label another AK."""
        if alg == "rsa":
            templ = TPM2B_PUBLIC.parse("rsa2048:rsassa-sha256:null", attrs)
            templ.publicArea.unique.rsa = hashlib.sha256(label).digest() * 8
        else:
            templ = TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256:null", attrs)
            templ.publicArea.unique.ecc.x = hashlib.sha256(label).digest()
            templ.publicArea.unique.ecc.y = b""
        h, pub, _, _, _ = self.ectx.create_primary(None, templ, ESYS_TR.ENDORSEMENT)
        self.track(h)
        return h, pub

    def ak_persistent(self, handle):
        h = self.ectx.tr_from_tpmpublic(handle)
        pub, _, _ = self.ectx.read_public(h)
        return h, pub

    def srk(self):
        templ = TPM2B_PUBLIC.parse("ecc256:aes128cfb", SRK_ATTRS)
        h, pub, _, _, _ = self.ectx.create_primary(None, templ, ESYS_TR.OWNER)
        self.track(h)
        return h, pub

    def identity_key(self, srk, attrs=ID_ATTRS):
        templ = TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256", attrs)
        priv, pub, _, _, _ = self.ectx.create(srk, TPM2B_SENSITIVE_CREATE(), templ)
        h = self.track(self.ectx.load(srk, priv, pub))
        return h, pub

    def imported_key(self, srk, srk_pub):
        """A P-256 key made in software (cryptography) and brought into
        the TPM with TPM2_Import: it cannot be fixedTPM."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        sk = ec.generate_private_key(ec.SECP256R1())
        pem = sk.private_bytes(serialization.Encoding.PEM,
                               serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
        pub = TPM2B_PUBLIC.from_pem(pem, objectAttributes=(
            TPMA_OBJECT.SIGN_ENCRYPT | TPMA_OBJECT.USERWITHAUTH), scheme="ecdsa-sha256")
        sens = TPM2B_SENSITIVE.from_pem(pem)
        symdef = TPMT_SYM_DEF_OBJECT(algorithm=TPM2_ALG.NULL)
        enckey, dup, seed = wrap(srk_pub.publicArea, pub, sens, None, symdef)
        priv = self.ectx.import_(srk, enckey, pub, dup, seed, symdef)
        h = self.track(self.ectx.load(srk, priv, pub))
        return h, pub

    def persist(self, handle, persistent):
        """Make handle persistent at persistent, evicting what was there
        (reading a persistent object takes an object slot too)."""
        try:
            old = self.ectx.tr_from_tpmpublic(persistent)
        except TSS2_Exception as e:
            if e.rc & 0xFF != 0x8B:  # TPM_RC_HANDLE: nothing there
                raise
        else:
            self.ectx.evict_control(ESYS_TR.OWNER, old, persistent)
        self.ectx.evict_control(ESYS_TR.OWNER, handle, persistent)

    def activate(self, ak, ek, blob, enc):
        """TPM2_ActivateCredential; the EK's policy is PolicySecret(endorsement)."""
        sess = self.track(self.ectx.start_auth_session(
            ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.POLICY, sym_aes128cfb(), TPM2_ALG.SHA256))
        try:
            self.ectx.policy_secret(ESYS_TR.ENDORSEMENT, sess, b"", b"", b"", 0)
            cblob, _ = TPM2B_ID_OBJECT.unmarshal(blob)
            csec, _ = TPM2B_ENCRYPTED_SECRET.unmarshal(enc)
            out = self.ectx.activate_credential(ak, ek, cblob, csec,
                                                session1=ESYS_TR.PASSWORD, session2=sess)
            return bytes(out)
        finally:
            try:
                self.flush(sess)
            except (TSS2_Exception, ValueError):
                pass  # a policy session used by a failing command may be gone

    def certify(self, key, ak, nonce):
        info, sig = self.ectx.certify(key, ak, TPM2B_DATA(nonce),
                                      TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL))
        return info.marshal(), sig.marshal()

    def quote(self, ak, pcrs, nonce):
        sel = TPML_PCR_SELECTION.parse("sha256:" + ",".join(str(p) for p in pcrs))
        quoted, sig = self.ectx.quote(ak, sel, TPM2B_DATA(nonce),
                                      TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL))
        values = {}
        todo = list(pcrs)
        while todo:
            chunk, todo = todo[:8], todo[8:]
            _, got_sel, digests = self.ectx.pcr_read(
                TPML_PCR_SELECTION.parse("sha256:" + ",".join(str(p) for p in chunk)))
            got = [p for s in got_sel for p in range(s.sizeofSelect * 8)
                   if s.pcrSelect[p // 8] & (1 << (p % 8))]
            for p, d in zip(got, digests):
                values[p] = bytes(d)
        return quoted.marshal(), sig.marshal(), values


# ------------------------------------------------------------------ flows


def spki_sha256_of_public(pub):
    from cryptography.hazmat.primitives import serialization
    der = serialization.load_pem_public_key(pub.to_pem()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def device_id_of_public(pub):
    """The contract's device ID: base32 (lowercase, no padding) of the
    first 20 bytes of SHA-256 of the DER SubjectPublicKeyInfo."""
    return base64.b32encode(spki_sha256_of_public(pub)[:20]).decode().lower().rstrip("=")


def challenge(srv, ek_cert, ek_pub, ak_pub, project=None):
    body = {"ek_cert": b64(ek_cert), "ek_public": b64(ek_pub.marshal()),
            "ak_public": b64(ak_pub.marshal())}
    _, c, _ = srv.json_call("challenge", "POST", srv.attest_path("/challenge", project), body,
                            want=(201,))
    for k in ("session", "credential_blob", "encrypted_secret", "nonce", "expires_in"):
        if k not in c:
            raise ClientError(f"challenge answer has no {k}: {c}")
    c["blob"] = unb64(c["credential_blob"], "credential_blob")
    c["enc"] = unb64(c["encrypted_secret"], "encrypted_secret")
    c["nonce_raw"] = unb64(c["nonce"], "nonce")
    if len(c["nonce_raw"]) != 32:
        raise ClientError(f"nonce of {len(c['nonce_raw'])} bytes")
    return c


def proof(srv, c, secret, key_pub, info, sig, project=None, want=(200,)):
    body = {"session": c["session"], "secret": b64(secret), "key_public": b64(key_pub.marshal()),
            "certify_info": b64(info), "certify_signature": b64(sig)}
    status, p, result = srv.json_call("proof", "POST", srv.attest_path("/proof", project), body,
                                      want=want)
    return body, p, result


def attest_once(srv, tpm, args, make_key=None, persist=None):
    """Challenge, activation, certify of a new identity key (made by
    make_key(tpm, srk, srk_pub), default a fixedTPM one): the proof body
    parts.  Returns (c, secret, key_pub, info, sig, ek_cert)."""
    ek, ek_pub, ek_cert = tpm.ek()
    ak, ak_pub = tpm.ak(args.ak_alg)
    c = challenge(srv, ek_cert, ek_pub, ak_pub)
    secret = tpm.activate(ak, ek, c["blob"], c["enc"])
    tpm.flush(ek)
    srk, srk_pub = tpm.srk()
    key, key_pub = (make_key or (lambda t, h, _: t.identity_key(h)))(tpm, srk, srk_pub)
    tpm.flush(srk)
    info, sig = tpm.certify(key, ak, c["nonce_raw"])
    if persist is not None:
        tpm.persist(key, persist)
    return c, secret, key_pub, info, sig, ek_cert


def est_enroll(srv, csr_der, outdir, name):
    headers = {}
    if srv.token:
        headers["Authorization"] = "Basic " + b64(f"token:{srv.token}".encode())
    path = f"/.well-known/est/{urllib.parse.quote(srv.project, safe='')}/simpleenroll"
    status, hdrs, data = srv.request("POST", path, base64.encodebytes(csr_der),
                                     "application/pkcs10", headers)
    result = {"step": "simpleenroll", "status": status,
              "content_type": hdrs.get("content-type", "")}
    if status != 200:
        try:
            result["detail"] = json.loads(data).get("detail", "")
        except (ValueError, AttributeError):
            result["body"] = data[:500].decode(errors="replace")
        raise Refused(result)
    p7 = os.path.join(outdir, f"{name}.p7.der")
    with open(p7, "wb") as f:
        f.write(base64.b64decode(data))
    cert = os.path.join(outdir, f"{name}.crt")
    run(["openssl", "pkcs7", "-inform", "DER", "-in", p7, "-print_certs", "-out", cert])
    result["cert"] = cert
    return result


def run(cmd, env=None, inp=None):
    p = subprocess.run(cmd, capture_output=True, env=env, input=inp)
    if p.returncode != 0:
        raise ClientError(f"{cmd[0]} {cmd[1]} failed: {p.stderr.decode(errors='replace')[-800:]}")
    return p.stdout


def tpm_csr(srv, handle, subject):
    env = dict(os.environ, TPM2OPENSSL_TCTI=srv.tcti)
    return run(["openssl", "req", "-new", "-provider", "tpm2", "-provider", "default",
                "-key", f"handle:0x{handle:08x}", "-subj", subject, "-outform", "DER"], env=env)


def cmd_info(srv, args):
    _, j, result = srv.json_call("info", "GET", srv.attest_path(), want=(200,))
    result.update(j)
    return result


def cmd_export_ek(srv, args):
    os.makedirs(args.dir, exist_ok=True)
    with Tpm(srv.tcti) as tpm:
        _, ek_pub, ek_cert = tpm.ek()
    with open(os.path.join(args.dir, "ek_cert.der"), "wb") as f:
        f.write(ek_cert)
    with open(os.path.join(args.dir, "ek_public.bin"), "wb") as f:
        f.write(ek_pub.marshal())
    return {"step": "export-ek", "ek_sha256": hashlib.sha256(ek_cert).hexdigest()}


def cmd_enroll(srv, args):
    os.makedirs(args.outdir, exist_ok=True)
    with Tpm(srv.tcti) as tpm:
        c, secret, key_pub, info, sig, ek_cert = attest_once(srv, tpm, args,
                                                             persist=args.key_handle)
        ak_name = bytes(tpm.ak(args.ak_alg)[1].get_name()).hex()
    _, p, _ = proof(srv, c, secret, key_pub, info, sig)
    want_id = device_id_of_public(key_pub)
    if p.get("device_id") != want_id:
        raise ClientError(f"proof answered device_id {p.get('device_id')}, expected {want_id}")
    csr = tpm_csr(srv, args.key_handle, f"/CN={args.cn}")
    result = est_enroll(srv, csr, args.outdir, "device")
    result.update(device_id=want_id, ek_sha256=hashlib.sha256(ek_cert).hexdigest(),
                  ak_name=ak_name, key=f"handle:0x{args.key_handle:08x}",
                  proof_expires_in=p.get("expires_in"))
    return result


def cmd_ek_mismatch(srv, args):
    with open(args.file, "rb") as f:
        other, _ = TPM2B_PUBLIC.unmarshal(f.read())
    with Tpm(srv.tcti) as tpm:
        _, _, ek_cert = tpm.ek()
        _, ak_pub = tpm.ak(args.ak_alg)
    challenge(srv, ek_cert, other, ak_pub)
    return {"step": "challenge", "status": 201, "detail": "accepted a foreign EK public"}


def cmd_ak_unrestricted(srv, args):
    with Tpm(srv.tcti) as tpm:
        _, ek_pub, ek_cert = tpm.ek()
        _, ak_pub = tpm.ak(args.ak_alg, label=b"quarklink-unrestricted",
                           attrs=AK_ATTRS & ~TPMA_OBJECT.RESTRICTED)
    challenge(srv, ek_cert, ek_pub, ak_pub)
    return {"step": "challenge", "status": 201, "detail": "accepted an unrestricted AK"}


def cmd_other_tpm(srv, args):
    with open(os.path.join(args.dir, "ek_cert.der"), "rb") as f:
        other_cert = f.read()
    with open(os.path.join(args.dir, "ek_public.bin"), "rb") as f:
        other_pub, _ = TPM2B_PUBLIC.unmarshal(f.read())
    with Tpm(srv.tcti) as tpm:
        ek, _, _ = tpm.ek()
        ak, ak_pub = tpm.ak(args.ak_alg)
        c = challenge(srv, other_cert, other_pub, ak_pub)
        try:
            secret = tpm.activate(ak, ek, c["blob"], c["enc"])
            activated = True
        except TSS2_Exception as e:
            secret, activated = secrets.token_bytes(32), str(e)
        tpm.flush(ek)
        srk, _ = tpm.srk()
        key, key_pub = tpm.identity_key(srk)
        tpm.flush(srk)
        info, sig = tpm.certify(key, ak, c["nonce_raw"])
    with annotate(activation=activated):
        proof(srv, c, secret, key_pub, info, sig)
    return {"step": "proof", "status": 200, "detail": "proof accepted", "activation": activated}


def cmd_replay_proof(srv, args):
    with Tpm(srv.tcti) as tpm:
        c, secret, key_pub, info, sig, _ = attest_once(srv, tpm, args)
    _, p, _ = proof(srv, c, secret, key_pub, info, sig)
    first = {"device_id": p.get("device_id")}
    with annotate(first=first):
        proof(srv, c, secret, key_pub, info, sig)
    return {"step": "proof", "status": 200, "detail": "replayed proof accepted", "first": first}


def cmd_retry_proof(srv, args):
    with Tpm(srv.tcti) as tpm:
        c, secret, key_pub, info, sig, _ = attest_once(srv, tpm, args)
    wrong = bytes(b ^ 0x5A for b in secret)
    try:
        proof(srv, c, wrong, key_pub, info, sig)
        return {"step": "proof", "status": 200, "detail": "accepted a wrong secret"}
    except Refused as r:
        first = r.result
    with annotate(first=first):
        proof(srv, c, secret, key_pub, info, sig)
    return {"step": "proof", "status": 200, "detail": "second try accepted", "first": first}


def cmd_wrong_project(srv, args):
    with Tpm(srv.tcti) as tpm:
        c, secret, key_pub, info, sig, _ = attest_once(srv, tpm, args)
    proof(srv, c, secret, key_pub, info, sig, project=args.other)
    return {"step": "proof", "status": 200, "detail": "proof accepted by another project"}


def cmd_not_fixedtpm(srv, args):
    if args.variant == "import":
        def make_key(tpm, srk, srk_pub):
            return tpm.imported_key(srk, srk_pub)
    else:
        def make_key(tpm, srk, _):
            return tpm.identity_key(srk, TPMA_OBJECT.SIGN_ENCRYPT
                                    | TPMA_OBJECT.SENSITIVEDATAORIGIN | TPMA_OBJECT.USERWITHAUTH)
    with Tpm(srv.tcti) as tpm:
        c, secret, key_pub, info, sig, _ = attest_once(srv, tpm, args, make_key)
    with annotate(key_attributes=f"0x{int(key_pub.publicArea.objectAttributes):08x}"):
        proof(srv, c, secret, key_pub, info, sig)
    return {"step": "proof", "status": 200, "detail": "a key that is not fixedTPM was accepted"}


def cmd_csr_mismatch(srv, args):
    with Tpm(srv.tcti) as tpm:
        c, secret, key_pub, info, sig, _ = attest_once(srv, tpm, args)
    _, p, _ = proof(srv, c, secret, key_pub, info, sig)
    with tempfile.TemporaryDirectory() as d:
        k2 = os.path.join(d, "k2.pem")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", k2])
        csr = run(["openssl", "req", "-new", "-key", k2, "-subj", "/CN=k2", "-outform", "DER"])
        k2_id = base64.b32encode(hashlib.sha256(run(
            ["openssl", "pkey", "-in", k2, "-pubout", "-outform", "DER"])).digest()[:20]
        ).decode().lower().rstrip("=")
        with annotate(proven_device_id=p.get("device_id"), csr_device_id=k2_id):
            result = est_enroll(srv, csr, d, "k2")
    result.update(detail="a CSR of another key was enrolled", csr_device_id=k2_id)
    return result


def cmd_quote(srv, args):
    mtls = (args.cert, args.key)
    status, ch, result = srv.json_call("quote-challenge", "POST", "/device/v1/quote/challenge",
                                       {}, want=(200, 204), mtls=mtls)
    if status == 204:
        result["detail"] = "no quote asked"
        return result
    nonce = unb64(ch["nonce"], "nonce")
    pcrs = list(ch["pcrs"])
    if ch.get("bank") != "sha256":
        raise ClientError(f"bank {ch.get('bank')}")
    quote_pcrs = pcrs
    if args.hostile == "other-pcrs":
        quote_pcrs = [p for p in pcrs if p != pcrs[-1]] if len(pcrs) > 1 else [pcrs[0] + 1]
    with Tpm(srv.tcti) as tpm:
        if args.hostile == "other-ak":
            ak, _ = tpm.ak(args.ak_alg, label=b"quarklink-other-ak")
        elif args.ak_handle is not None:
            ak, _ = tpm.ak_persistent(args.ak_handle)
        else:
            ak, _ = tpm.ak(args.ak_alg)
        quoted, sig, values = tpm.quote(ak, quote_pcrs, nonce)
    body = {"nonce": ch["nonce"], "quote": b64(quoted), "signature": b64(sig),
            "pcrs": {str(p): values[p].hex() for p in quote_pcrs}}
    if args.hostile == "bad-values":
        p0 = str(quote_pcrs[0])
        body["pcrs"][p0] = hashlib.sha256(bytes.fromhex(body["pcrs"][p0])).hexdigest()
    _, q, result = srv.json_call("quote", "POST", "/device/v1/quote", body, want=(200,),
                                 mtls=mtls)
    result.update(q)
    result["pcrs"] = body["pcrs"]
    if args.hostile == "replay":
        with annotate(first=dict(result)):
            srv.json_call("quote", "POST", "/device/v1/quote", body, want=(200,), mtls=mtls)
        result = {"step": "quote", "status": 200, "detail": "replayed quote accepted"}
    return result


def cmd_mtls(srv, args):
    body = json.loads(args.body) if args.body is not None else None
    status, parsed, result = srv.json_call(f"{args.method} {args.path}", args.method, args.path,
                                           body, want=range(100, 600),
                                           mtls=(args.cert, args.key))
    if isinstance(parsed, dict):
        result["json"] = parsed
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tcti", required=True, help="swtpm:host=...,port=... or tabrmd:...")
    ap.add_argument("--url", required=True, help="https://127.0.0.1:PORT (device listener)")
    ap.add_argument("--cacert", required=True, help="the installation root (PEM)")
    ap.add_argument("--project", default="p1")
    ap.add_argument("--token", help="EST enrollment token, if the policy also asks for one")
    ap.add_argument("--ak-alg", choices=("ecc", "rsa"), default="ecc")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info")
    s = sub.add_parser("export-ek")
    s.add_argument("dir")
    s = sub.add_parser("enroll")
    s.add_argument("outdir")
    s.add_argument("--key-handle", type=lambda v: int(v, 0), default=0x81000012)
    s.add_argument("--cn", default="attest-client")
    s = sub.add_parser("ek-mismatch")
    s.add_argument("file")
    s = sub.add_parser("other-tpm")
    s.add_argument("dir")
    sub.add_parser("ak-unrestricted")
    sub.add_parser("replay-proof")
    sub.add_parser("retry-proof")
    s = sub.add_parser("wrong-project")
    s.add_argument("other")
    s = sub.add_parser("not-fixedtpm")
    s.add_argument("variant", choices=("import", "created"))
    sub.add_parser("csr-mismatch")
    s = sub.add_parser("quote")
    s.add_argument("cert")
    s.add_argument("key", help="the client key for OpenSSL: handle:0x... or a TSS2 PEM file")
    s.add_argument("--ak-handle", type=lambda v: int(v, 0))
    s.add_argument("--hostile", choices=("other-ak", "other-pcrs", "replay", "bad-values"))
    s = sub.add_parser("mtls")
    s.add_argument("method")
    s.add_argument("path")
    s.add_argument("cert")
    s.add_argument("key")
    s.add_argument("--body")
    args = ap.parse_args()
    srv = Server(args)
    fn = globals()["cmd_" + args.cmd.replace("-", "_")]
    try:
        result = fn(srv, args)
    except Refused as r:
        result = r.result
    except (ClientError, TSS2_Exception, OSError, subprocess.SubprocessError) as e:
        print(f"attest_client: {args.cmd}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
