/* agent_unwrap.c: test helper for t_agent_tpm.sh. Opens a content-key
 * EnvelopedData (DER) as ql-agent does for an encrypted image
 * (agent_stream_unwrap with the configured key store's key) and writes
 * the 32 key bytes to stdout.
 * Usage: agent_unwrap CONFIG CERT.pem KEY.cms */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/pem.h>

#include "agent.h"
#include "agent_conf.h"
#include "agent_key.h"
#include "agent_stream.h"
#include "agent_util.h"

int
main(int argc, char **argv)
{
	struct agent_conf c;
	unsigned char key[32];
	char err[256], *der = NULL;
	size_t len;
	EVP_PKEY *pk = NULL;
	X509 *cert = NULL;
	FILE *f;
	int rc = 1;

	if (argc != 4 || agent_conf_load(argv[1], &c) == -1)
		return 2;
	if (agent_key_init(&c) == -1) {
		agent_conf_free(&c);
		return 2;
	}
	/* Every way out frees what it holds: the sanitizer stage fails a
	 * test on any leak, and t_agent_tpm.sh expects refusals too. */
	if ((pk = agent_key_load(&c, 0)) == NULL || (f = fopen(argv[2], "r")) == NULL)
		goto out;
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (cert == NULL || agent_read_file(argv[3], 65536, &der, &len) == -1)
		goto out;
	if (agent_stream_unwrap((unsigned char *)der, len, pk, cert, key, err, sizeof(err)) == -1) {
		fprintf(stderr, "agent_unwrap: %s\n", err);
		goto out;
	}
	fwrite(key, 1, sizeof(key), stdout);
	rc = 0;
out:
	free(der);
	X509_free(cert);
	EVP_PKEY_free(pk);
	agent_key_cleanup();
	agent_conf_free(&c);
	return rc;
}
