/* conf.h: the option table and the INI parser that fills struct conf.
 * The table in conf.c is the single source of truth for names, defaults,
 * bounds and docs (the man page and sample are checked against it). */
#ifndef QL_CONF_H
#define QL_CONF_H

#include <stddef.h>

#include "log.h"

struct conf_listener {
	int	 enabled;
	char	*listen;
	char	*tls_cert;
	char	*tls_key;
	char	*client_ca;
	long long max_connections;
};

struct conf {
	char			*path;		/* the file it came from */
	enum log_level		 log_level;
	char			*log_target;
	char			*log_file;
	char			*pid_file;
	long long		 max_body_size;
	long long		 max_header_size;
	long long		 request_timeout;
	long long		 header_timeout;
	long long		 body_timeout;
	long long		 max_output_buffer;
	long long		 shutdown_timeout;
	int			 debug_endpoints;
	char			*state_dir;
	char			*tls_names;
	long long		 tls_ticket_key_interval;	/* seconds */

	char			*db_conninfo;
	long long		 db_pool_size;
	long long		 db_queue_max;
	long long		 db_reconnect_max;
	long long		 db_query_timeout;

	char			*p11_module;
	char			*p11_token_label;
	char			*p11_pin_file;
	char			*p11_softhsm2_conf;
	char			*p11_engine;
	long long		 p11_workers;
	long long		 p11_queue_max;

	char			*ca_key_type;
	long long		 ca_cert_validity_days;
	long long		 ca_crl_validity_hours;
	long long		 ca_ocsp_validity_hours;
	long long		 ca_audit_checkpoint_interval;	/* seconds */
	char			*pki_url;
	char			*device_url;	/* what agents are told to use */
	long long		 login_window;
	long long		 hash_queue_max;
	long long		 img_max_chunk;		/* bytes of one tus PATCH */
	long long		 img_max_uploads;	/* PATCH bodies held at once */
	long long		 img_upload_expiry;	/* seconds after the last PATCH */
	long long		 img_max_size;		/* Tus-Max-Size */
	char			*www_dir;
	long long		 www_max_size;
	char			*attest_manufacturer_cas;	/* CONF_PATHS */

	struct conf_listener	 admin;
	struct conf_listener	 device;
	struct conf_listener	 pki;
};

#define CONF_ERRLEN 512

void	conf_init(struct conf *);
/* Load a file over the defaults; on error err holds "FILE:LINE: reason". */
int	conf_load(struct conf *, const char *path, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* Parse text as if read from name; relative paths resolve against dir. */
int	conf_parse(struct conf *, const char *name, const char *text,
	    const char *dir, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
void	conf_free(struct conf *);
/* Print "section.name<TAB>default" per option (docs drift check). */
void	conf_list_options(void);

#endif
