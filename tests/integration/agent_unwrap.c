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
	char err[256], *der;
	size_t len;
	EVP_PKEY *pk;
	X509 *cert;
	FILE *f;

	if (argc != 4 || agent_conf_load(argv[1], &c) == -1 || agent_key_init(&c) == -1)
		return 2;
	if ((pk = agent_key_load(&c, 0)) == NULL || (f = fopen(argv[2], "r")) == NULL)
		return 1;
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (cert == NULL || agent_read_file(argv[3], 65536, &der, &len) == -1)
		return 1;
	if (agent_stream_unwrap((unsigned char *)der, len, pk, cert, key, err, sizeof(err)) == -1) {
		fprintf(stderr, "agent_unwrap: %s\n", err);
		return 1;
	}
	fwrite(key, 1, sizeof(key), stdout);
	free(der);
	X509_free(cert);
	EVP_PKEY_free(pk);
	agent_key_cleanup();
	agent_conf_free(&c);
	return 0;
}
