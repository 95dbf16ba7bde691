/* agent_tpm.c: EK, AK, identity key, credential activation, certification
 * and quotes with libtss2-esys. The keys are persistent objects, made once
 * and found again by handle on later runs; the TPM (or its resource
 * manager) keeps nothing else of ours after a call: transient objects and
 * sessions are flushed on every way out. Authorisation is the empty
 * password everywhere, as provisioned by the factory, except the EK, whose
 * TCG policy is PolicySecret(endorsement hierarchy). */
#include "agent_tpm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "agent.h"
#include "agent_conf.h"

#define AGENT_TPM_EK_CERT_NV	0x01c00002	/* TCG: RSA 2048 EK certificate */
#define AGENT_TPM_CERT_MAX	8192
#define AGENT_TPM_NV_CHUNK	512		/* below every TPM's NV buffer */
#define AGENT_TPM_DEFAULT_TCTI	"device:/dev/tpmrm0"
#define AGENT_TPM_DEFAULT_KEY	0x81000002
/* A TPM that has not answered in this long will not: the agent gives up
 * rather than hang (RSA key generation of an EK takes seconds to a
 * minute on discrete TPMs). */
#define AGENT_TPM_TIMEOUT_MS	(300 * 1000)

struct agent_tpm {
	TSS2_TCTI_CONTEXT	*tcti;
	ESYS_CONTEXT		*esys;
	unsigned		 ek, ak, srk, key;	/* persistent handles */
	ESYS_TR			 ek_tr, ak_tr, key_tr;	/* ESYS_TR_NONE until ensured */
};

/* TCG EK Credential Profile 2.0, template L-1: RSA 2048, AES-128-CFB,
 * policy PolicySecret(TPM_RH_ENDORSEMENT), unique 256 zero bytes. The key
 * is derived from the endorsement seed, so this template gives back the
 * key the manufacturer certified. */
static const TPM2B_PUBLIC agent_tpm_ek_template = {
	.publicArea = {
		.type = TPM2_ALG_RSA,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
		    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
		    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT,
		.authPolicy = { 32, {
			0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
			0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
			0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa } },
		.parameters.rsaDetail = {
			.symmetric = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128,
			    .mode.aes = TPM2_ALG_CFB },
			.scheme = { .scheme = TPM2_ALG_NULL },
			.keyBits = 2048,
			.exponent = 0,
		},
		.unique.rsa = { .size = 256 },
	},
};

/* The AK: a restricted signing key (it signs only TPM-made structures,
 * so a quote or a certification cannot be forged through it), ECDSA
 * P-256 with SHA-256. */
static const TPM2B_PUBLIC agent_tpm_ak_template = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
		    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
		    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH,
		.parameters.eccDetail = {
			.symmetric = { .algorithm = TPM2_ALG_NULL },
			.scheme = { .scheme = TPM2_ALG_ECDSA,
			    .details.ecdsa.hashAlg = TPM2_ALG_SHA256 },
			.curveID = TPM2_ECC_NIST_P256,
			.kdf = { .scheme = TPM2_ALG_NULL },
		},
	},
};

/* TCG TPM v2.0 Provisioning Guidance: the ECC P-256 storage root key. */
static const TPM2B_PUBLIC agent_tpm_srk_template = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
		    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
		    TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT,
		.parameters.eccDetail = {
			.symmetric = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128,
			    .mode.aes = TPM2_ALG_CFB },
			.scheme = { .scheme = TPM2_ALG_NULL },
			.curveID = TPM2_ECC_NIST_P256,
			.kdf = { .scheme = TPM2_ALG_NULL },
		},
	},
};

/* The identity key (the CSR's, the TLS client key): generated inside the
 * TPM and bound to it (fixedTPM, fixedParent), which TPM2_Certify lets the
 * server see. No scheme fixed, so TLS may pick its hash. */
static const TPM2B_PUBLIC agent_tpm_key_template = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
		    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
		    TPMA_OBJECT_USERWITHAUTH,
		.parameters.eccDetail = {
			.symmetric = { .algorithm = TPM2_ALG_NULL },
			.scheme = { .scheme = TPM2_ALG_NULL },
			.curveID = TPM2_ECC_NIST_P256,
			.kdf = { .scheme = TPM2_ALG_NULL },
		},
	},
};

static int agent_tpm_fail(TSS2_RC, const char *, ...) __attribute__((format(printf, 2, 3)));

/* One line: what failed and the TSS's decoding of the response code. */
static int
agent_tpm_fail(TSS2_RC rc, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	agent_err("TPM: %s: %s", what, Tss2_RC_Decode(rc));
	return -1;
}

static void
agent_tpm_flush(struct agent_tpm *t, ESYS_TR *tr)
{
	if (*tr != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, *tr);
	*tr = ESYS_TR_NONE;
}

void
agent_tpm_buf_free(struct agent_tpm_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

static int
agent_tpm_buf_set(struct agent_tpm_buf *b, const void *p, size_t len)
{
	if ((b->p = malloc(len > 0 ? len : 1)) == NULL) {
		agent_err("out of memory");
		return -1;
	}
	memcpy(b->p, p, len);
	b->len = len;
	return 0;
}

/* The wire form of each structure handed out, in a fresh buffer. */
#define AGENT_TPM_PUT(name, type)						\
static int									\
agent_tpm_put_##name(const type *v, struct agent_tpm_buf *out)			\
{										\
	unsigned char buf[sizeof(*v)];						\
	size_t off = 0;								\
	TSS2_RC rc;								\
										\
	if ((rc = Tss2_MU_##type##_Marshal(v, buf, sizeof(buf), &off)) != TSS2_RC_SUCCESS) \
		return agent_tpm_fail(rc, "marshalling a " #type);		\
	return agent_tpm_buf_set(out, buf, off);				\
}
AGENT_TPM_PUT(public, TPM2B_PUBLIC)
AGENT_TPM_PUT(attest, TPM2B_ATTEST)
AGENT_TPM_PUT(signature, TPMT_SIGNATURE)

int
agent_tpm_identity_handle(const struct agent_conf *c, unsigned *handle)
{
	unsigned long h;
	char *end;

	if (c->tpm2_key[0] == '\0') {
		*handle = AGENT_TPM_DEFAULT_KEY;
		return 0;
	}
	errno = 0;
	if (strncmp(c->tpm2_key, "handle:", 7) == 0) {
		h = strtoul(c->tpm2_key + 7, &end, 16);
		if (errno == 0 && *end == '\0' && h >= 0x81000000UL && h <= 0x81ffffffUL) {
			*handle = (unsigned)h;
			return 0;
		}
	}
	agent_err("tpm2_key %s: TPM attestation needs the identity key at a persistent"
	    " handle (handle:0x81000000 to handle:0x81ffffff)", c->tpm2_key);
	return -1;
}

struct agent_tpm *
agent_tpm_open(const struct agent_conf *c)
{
	const char *tcti = c->tpm2_tcti[0] != '\0' ? c->tpm2_tcti : AGENT_TPM_DEFAULT_TCTI;
	struct agent_tpm *t;
	TSS2_RC rc;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		agent_err("out of memory");
		return NULL;
	}
	t->ek = (unsigned)c->tpm2_ek_handle;
	t->ak = (unsigned)c->tpm2_ak_handle;
	t->srk = (unsigned)c->tpm2_srk_handle;
	t->ek_tr = t->ak_tr = t->key_tr = ESYS_TR_NONE;
	if (agent_tpm_identity_handle(c, &t->key) == -1)
		goto fail;
	/* The TSS writes its own log lines to stderr; ours say it once. */
	(void)setenv("TSS2_LOG", "all+none", 0);
	if ((rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti)) != TSS2_RC_SUCCESS) {
		agent_err("tpm2_tcti %s: cannot reach the TPM: %s", tcti, Tss2_RC_Decode(rc));
		goto fail;
	}
	if ((rc = Esys_Initialize(&t->esys, t->tcti, NULL)) != TSS2_RC_SUCCESS) {
		agent_err("tpm2_tcti %s: %s", tcti, Tss2_RC_Decode(rc));
		goto fail;
	}
	if ((rc = Esys_SetTimeout(t->esys, AGENT_TPM_TIMEOUT_MS)) != TSS2_RC_SUCCESS) {
		agent_err("tpm2_tcti %s: cannot set a timeout: %s", tcti, Tss2_RC_Decode(rc));
		goto fail;
	}
	return t;
fail:
	agent_tpm_close(t);
	return NULL;
}

void
agent_tpm_close(struct agent_tpm *t)
{
	if (t == NULL)
		return;
	/* Persistent objects stay; closing only drops ESYS's bookkeeping. */
	if (t->esys != NULL)
		Esys_Finalize(&t->esys);
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
	free(t);
}

/* 1 with *tr when a persistent object is at handle, 0 when none is. */
static int
agent_tpm_find(struct agent_tpm *t, unsigned handle, ESYS_TR *tr)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	TSS2_RC rc;
	int found;

	rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	    TPM2_CAP_HANDLES, handle, 1, &more, &cap);
	if (rc != TSS2_RC_SUCCESS)
		return agent_tpm_fail(rc, "listing persistent handles");
	found = cap->data.handles.count > 0 && cap->data.handles.handle[0] == handle;
	Esys_Free(cap);
	if (!found)
		return 0;
	rc = Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, tr);
	if (rc != TSS2_RC_SUCCESS)
		return agent_tpm_fail(rc, "opening a persistent object");
	return 1;
}

/* Make the transient object persistent at handle (owner authorisation)
 * and flush the transient copy. */
static int
agent_tpm_persist(struct agent_tpm *t, ESYS_TR *obj, unsigned handle, ESYS_TR *out,
    const char *what)
{
	TSS2_RC rc;

	rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, *obj, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, handle, out);
	agent_tpm_flush(t, obj);
	if (rc != TSS2_RC_SUCCESS)
		return agent_tpm_fail(rc, "persisting the %s at 0x%08x", what, handle);
	agent_info("TPM: made the %s, persistent at 0x%08x", what, handle);
	return 0;
}

/* A primary key of hierarchy from template, persisted at handle. */
static int
agent_tpm_primary(struct agent_tpm *t, ESYS_TR hierarchy, const TPM2B_PUBLIC *template,
    unsigned handle, ESYS_TR *out, const char *what)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	ESYS_TR obj = ESYS_TR_NONE;
	TSS2_RC rc;

	rc = Esys_CreatePrimary(t->esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	    &sens, template, &outside, &pcrs, &obj, NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return agent_tpm_fail(rc, "making the %s", what);
	return agent_tpm_persist(t, &obj, handle, out, what);
}

/* A policy session satisfying the EK's policy: PolicySecret(endorsement). */
static int
agent_tpm_ek_session(struct agent_tpm *t, ESYS_TR *s)
{
	TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
	TSS2_RC rc;

	*s = ESYS_TR_NONE;
	rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, s);
	if (rc != TSS2_RC_SUCCESS)
		return agent_tpm_fail(rc, "starting a policy session");
	rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, *s, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		agent_tpm_flush(t, s);
		return agent_tpm_fail(rc, "PolicySecret(endorsement) for the EK");
	}
	return 0;
}

/* A child key of parent from template, loaded and persisted at handle.
 * is_ek_parent: the parent is the EK, authorised by its policy. */
static int
agent_tpm_child(struct agent_tpm *t, ESYS_TR parent, int is_ek_parent,
    const TPM2B_PUBLIC *template, unsigned handle, ESYS_TR *out, const char *what)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *pub = NULL;
	ESYS_TR s = ESYS_TR_PASSWORD, obj = ESYS_TR_NONE;
	TSS2_RC rc;
	int ret = -1;

	if (is_ek_parent && agent_tpm_ek_session(t, &s) == -1)
		return -1;
	rc = Esys_Create(t->esys, parent, s, ESYS_TR_NONE, ESYS_TR_NONE, &sens, template,
	    &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
	if (is_ek_parent)
		agent_tpm_flush(t, &s);
	if (rc != TSS2_RC_SUCCESS) {
		agent_tpm_fail(rc, "making the %s", what);
		goto out;
	}
	/* A policy session is spent by the command it authorised. */
	s = ESYS_TR_PASSWORD;
	if (is_ek_parent && agent_tpm_ek_session(t, &s) == -1)
		goto out;
	rc = Esys_Load(t->esys, parent, s, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &obj);
	if (is_ek_parent)
		agent_tpm_flush(t, &s);
	if (rc != TSS2_RC_SUCCESS) {
		agent_tpm_fail(rc, "making the %s", what);
		goto out;
	}
	ret = agent_tpm_persist(t, &obj, handle, out, what);
out:
	Esys_Free(priv);
	Esys_Free(pub);
	return ret;
}

static int
agent_tpm_public(struct agent_tpm *t, ESYS_TR obj, struct agent_tpm_buf *out)
{
	TPM2B_PUBLIC *pub = NULL;
	TSS2_RC rc;
	int ret;

	rc = Esys_ReadPublic(t->esys, obj, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub,
	    NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return agent_tpm_fail(rc, "reading a public key");
	ret = agent_tpm_put_public(pub, out);
	Esys_Free(pub);
	return ret;
}

/* The EK certificate the manufacturer stored in NV. */
static int
agent_tpm_ek_cert(struct agent_tpm *t, struct agent_tpm_buf *out)
{
	TPM2B_NV_PUBLIC *pub = NULL;
	TPM2B_MAX_NV_BUFFER *data = NULL;
	ESYS_TR nv = ESYS_TR_NONE, auth;
	unsigned char *buf = NULL;
	UINT16 size, off, n;
	TSS2_RC rc;
	int found, ret = -1;

	if ((found = agent_tpm_find(t, AGENT_TPM_EK_CERT_NV, &nv)) != 1) {
		if (found == 0)
			agent_err("TPM: no EK certificate at NV index 0x%08x (the TPM's"
			    " manufacturer did not provision one)", AGENT_TPM_EK_CERT_NV);
		return -1;
	}
	rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		agent_tpm_fail(rc, "reading the EK certificate's NV index");
		goto out;
	}
	size = pub->nvPublic.dataSize;
	/* The index's own (empty) authorisation where it allows it: an owner
	 * password set on the device does not stop the read then. */
	auth = (pub->nvPublic.attributes & TPMA_NV_AUTHREAD) ? nv : ESYS_TR_RH_OWNER;
	if (size == 0 || size > AGENT_TPM_CERT_MAX) {
		agent_err("TPM: the EK certificate at NV 0x%08x is %u bytes", AGENT_TPM_EK_CERT_NV,
		    (unsigned)size);
		goto out;
	}
	if ((buf = malloc(size)) == NULL)
		goto out;
	for (off = 0; off < size; off += n) {
		n = size - off > AGENT_TPM_NV_CHUNK ? AGENT_TPM_NV_CHUNK : size - off;
		rc = Esys_NV_Read(t->esys, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		    n, off, &data);
		if (rc != TSS2_RC_SUCCESS) {
			agent_tpm_fail(rc, "reading the EK certificate");
			goto out;
		}
		if (data->size != n) {
			agent_err("TPM: short read of the EK certificate");
			goto out;
		}
		memcpy(buf + off, data->buffer, n);
		Esys_Free(data);
		data = NULL;
	}
	/* Some manufacturers pad the index after the DER certificate. */
	if (size >= 4 && buf[0] == 0x30 && buf[1] == 0x82 &&
	    (size_t)((buf[2] << 8) | buf[3]) + 4 < size)
		size = (UINT16)(((buf[2] << 8) | buf[3]) + 4);
	ret = agent_tpm_buf_set(out, buf, size);
out:
	free(buf);
	Esys_Free(data);
	Esys_Free(pub);
	if (nv != ESYS_TR_NONE)
		(void)Esys_TR_Close(t->esys, &nv);
	return ret;
}

void
agent_tpm_ids_free(struct agent_tpm_ids *ids)
{
	agent_tpm_buf_free(&ids->ek_public);
	agent_tpm_buf_free(&ids->ek_cert);
	agent_tpm_buf_free(&ids->ak_public);
	agent_tpm_buf_free(&ids->key_public);
}

/* ek, ak and key each: found at its handle, or made and persisted. */
static int
agent_tpm_keys(struct agent_tpm *t)
{
	ESYS_TR srk = ESYS_TR_NONE;
	int found, ret = -1;

	if ((found = agent_tpm_find(t, t->ek, &t->ek_tr)) == -1 ||
	    (found == 0 && agent_tpm_primary(t, ESYS_TR_RH_ENDORSEMENT, &agent_tpm_ek_template,
	    t->ek, &t->ek_tr, "EK") == -1))
		return -1;
	if ((found = agent_tpm_find(t, t->ak, &t->ak_tr)) == -1 ||
	    (found == 0 && agent_tpm_child(t, t->ek_tr, 1, &agent_tpm_ak_template, t->ak,
	    &t->ak_tr, "AK") == -1))
		return -1;
	if ((found = agent_tpm_find(t, t->key, &t->key_tr)) == -1)
		return -1;
	if (found == 1)
		return 0;
	if ((found = agent_tpm_find(t, t->srk, &srk)) == -1 ||
	    (found == 0 && agent_tpm_primary(t, ESYS_TR_RH_OWNER, &agent_tpm_srk_template,
	    t->srk, &srk, "SRK") == -1))
		goto out;
	ret = agent_tpm_child(t, srk, 0, &agent_tpm_key_template, t->key, &t->key_tr,
	    "identity key");
out:
	if (srk != ESYS_TR_NONE)
		(void)Esys_TR_Close(t->esys, &srk);
	return ret;
}

int
agent_tpm_ensure(struct agent_tpm *t, struct agent_tpm_ids *ids)
{
	memset(ids, 0, sizeof(*ids));
	if (agent_tpm_keys(t) == -1 ||
	    agent_tpm_public(t, t->ek_tr, &ids->ek_public) == -1 ||
	    agent_tpm_ek_cert(t, &ids->ek_cert) == -1 ||
	    agent_tpm_public(t, t->ak_tr, &ids->ak_public) == -1 ||
	    agent_tpm_public(t, t->key_tr, &ids->key_public) == -1) {
		agent_tpm_ids_free(ids);
		return -1;
	}
	return 0;
}

int
agent_tpm_activate(struct agent_tpm *t, const unsigned char *blob, size_t blob_len,
    const unsigned char *enc, size_t enc_len, unsigned char secret[AGENT_TPM_SECRET])
{
	TPM2B_ID_OBJECT id;
	TPM2B_ENCRYPTED_SECRET es;
	TPM2B_DIGEST *got = NULL;
	ESYS_TR s;
	size_t off = 0;
	TSS2_RC rc;
	int ret = -1;

	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blob_len, &off, &id) != TSS2_RC_SUCCESS ||
	    off != blob_len) {
		agent_err("the server's credential_blob is not a TPM2B_ID_OBJECT");
		return -1;
	}
	off = 0;
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(enc, enc_len, &off, &es) != TSS2_RC_SUCCESS ||
	    off != enc_len) {
		agent_err("the server's encrypted_secret is not a TPM2B_ENCRYPTED_SECRET");
		return -1;
	}
	if (agent_tpm_ek_session(t, &s) == -1)
		return -1;
	/* The AK (object to activate) by password, the EK by its policy. */
	rc = Esys_ActivateCredential(t->esys, t->ak_tr, t->ek_tr, ESYS_TR_PASSWORD, s,
	    ESYS_TR_NONE, &id, &es, &got);
	agent_tpm_flush(t, &s);
	if (rc != TSS2_RC_SUCCESS) {
		agent_tpm_fail(rc, "ActivateCredential (the credential is not for this TPM's EK"
		    " and AK)");
		goto out;
	}
	if (got->size != AGENT_TPM_SECRET) {
		agent_err("TPM: the activated credential is %u bytes, expected %d",
		    (unsigned)got->size, AGENT_TPM_SECRET);
		goto out;
	}
	memcpy(secret, got->buffer, AGENT_TPM_SECRET);
	ret = 0;
out:
	if (got != NULL) {
		OPENSSL_cleanse(got->buffer, sizeof(got->buffer));
		Esys_Free(got);
	}
	return ret;
}

static int
agent_tpm_data(TPM2B_DATA *d, const unsigned char *nonce, size_t len)
{
	if (len == 0 || len > sizeof(d->buffer)) {
		agent_err("the server's nonce is %zu bytes", len);
		return -1;
	}
	d->size = (UINT16)len;
	memcpy(d->buffer, nonce, len);
	return 0;
}

int
agent_tpm_certify(struct agent_tpm *t, const unsigned char *nonce, size_t nonce_len,
    struct agent_tpm_buf *info, struct agent_tpm_buf *sig)
{
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };	/* the AK's own */
	TPM2B_DATA q;
	TPM2B_ATTEST *att = NULL;
	TPMT_SIGNATURE *s = NULL;
	TSS2_RC rc;
	int ret = -1;

	memset(info, 0, sizeof(*info));
	memset(sig, 0, sizeof(*sig));
	if (agent_tpm_data(&q, nonce, nonce_len) == -1)
		return -1;
	rc = Esys_Certify(t->esys, t->key_tr, t->ak_tr, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, &q, &scheme, &att, &s);
	if (rc != TSS2_RC_SUCCESS)
		return agent_tpm_fail(rc, "Certify(identity key, AK)");
	if (agent_tpm_put_attest(att, info) == -1 ||
	    agent_tpm_put_signature(s, sig) == -1) {
		agent_tpm_buf_free(info);
		goto out;
	}
	ret = 0;
out:
	Esys_Free(att);
	Esys_Free(s);
	return ret;
}

void
agent_tpm_quote_free(struct agent_tpm_quote *q)
{
	agent_tpm_buf_free(&q->quote);
	agent_tpm_buf_free(&q->signature);
}

static void
agent_tpm_select(TPML_PCR_SELECTION *sel, unsigned mask)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	sel->pcrSelections[0].pcrSelect[0] = mask & 0xff;
	sel->pcrSelections[0].pcrSelect[1] = (mask >> 8) & 0xff;
	sel->pcrSelections[0].pcrSelect[2] = (mask >> 16) & 0xff;
}

/* The SHA-256 values of mask; PCR_Read answers at most 8 at a time. */
static int
agent_tpm_pcr_read(struct agent_tpm *t, unsigned mask, unsigned char value[][32])
{
	TPML_PCR_SELECTION sel, *got = NULL;
	TPML_DIGEST *dig = NULL;
	UINT32 counter;
	unsigned left = mask, done, i, k;
	TSS2_RC rc;
	int round;

	for (round = 0; left != 0 && round < AGENT_TPM_PCRS; round++) {
		agent_tpm_select(&sel, left);
		rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel,
		    &counter, &got, &dig);
		if (rc != TSS2_RC_SUCCESS)
			return agent_tpm_fail(rc, "PCR_Read");
		done = 0;
		if (got->count == 1 && got->pcrSelections[0].hash == TPM2_ALG_SHA256)
			for (i = 0; i < 3 && i < got->pcrSelections[0].sizeofSelect; i++)
				done |= (unsigned)got->pcrSelections[0].pcrSelect[i] << (8 * i);
		done &= left;
		for (i = 0, k = 0; i < AGENT_TPM_PCRS; i++) {
			if (!(done & (1u << i)))
				continue;
			if (k >= dig->count || dig->digests[k].size != 32)
				break;
			memcpy(value[i], dig->digests[k++].buffer, 32);
		}
		Esys_Free(got);
		Esys_Free(dig);
		got = NULL;
		dig = NULL;
		if (done == 0 || i < AGENT_TPM_PCRS) {
			agent_err("TPM: the SHA-256 PCR bank is not active or answers oddly");
			return -1;
		}
		left &= ~done;
	}
	return left == 0 ? 0 : -1;
}

/* The quote's pcrDigest is SHA-256 over the values read. */
static int
agent_tpm_digest_matches(const TPM2B_ATTEST *att, unsigned mask, unsigned char value[][32])
{
	TPMS_ATTEST a;
	unsigned char md[32];
	EVP_MD_CTX *ctx;
	size_t off = 0;
	unsigned i;
	int ok;

	if (Tss2_MU_TPMS_ATTEST_Unmarshal(att->attestationData, att->size, &off, &a) !=
	    TSS2_RC_SUCCESS || a.type != TPM2_ST_ATTEST_QUOTE)
		return -1;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	for (i = 0; ok && i < AGENT_TPM_PCRS; i++)
		if (mask & (1u << i))
			ok = EVP_DigestUpdate(ctx, value[i], 32) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, md, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	return ok && a.attested.quote.pcrDigest.size == 32 &&
	    memcmp(a.attested.quote.pcrDigest.buffer, md, 32) == 0 ? 0 : -1;
}

int
agent_tpm_quote(struct agent_tpm *t, const unsigned char *nonce, size_t nonce_len,
    unsigned mask, struct agent_tpm_quote *out)
{
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPML_PCR_SELECTION sel;
	TPM2B_DATA q;
	TPM2B_ATTEST *att = NULL;
	TPMT_SIGNATURE *s = NULL;
	TSS2_RC rc;
	int attempt, ret = -1;

	memset(out, 0, sizeof(*out));
	if (mask == 0 || mask >= (1u << AGENT_TPM_PCRS)) {
		agent_err("quote: the server asked for PCRs outside 0..23");
		return -1;
	}
	if (agent_tpm_data(&q, nonce, nonce_len) == -1)
		return -1;
	if (t->ak_tr == ESYS_TR_NONE) {
		int found = agent_tpm_find(t, t->ak, &t->ak_tr);
		if (found != 1) {
			if (found == 0)
				agent_err("quote: no AK at 0x%08x (the device enrolled without"
				    " attestation)", t->ak);
			return -1;
		}
	}
	agent_tpm_select(&sel, mask);
	/* A PCR extended between the read and the quote: read again. */
	for (attempt = 0; attempt < 3; attempt++) {
		Esys_Free(att);
		Esys_Free(s);
		att = NULL;
		s = NULL;
		if (agent_tpm_pcr_read(t, mask, out->value) == -1)
			goto out;
		rc = Esys_Quote(t->esys, t->ak_tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		    &q, &scheme, &sel, &att, &s);
		if (rc != TSS2_RC_SUCCESS) {
			agent_tpm_fail(rc, "Quote");
			goto out;
		}
		if (agent_tpm_digest_matches(att, mask, out->value) == 0)
			break;
	}
	if (attempt == 3) {
		agent_err("quote: the PCRs kept changing while they were quoted");
		goto out;
	}
	out->mask = mask;
	if (agent_tpm_put_attest(att, &out->quote) == -1 ||
	    agent_tpm_put_signature(s, &out->signature) == -1) {
		agent_tpm_quote_free(out);
		goto out;
	}
	ret = 0;
out:
	Esys_Free(att);
	Esys_Free(s);
	return ret;
}
