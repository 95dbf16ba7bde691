/* agent_log.c: one line per message on stderr, with the program name, so
 * a failure reads the same in a terminal, a factory log and the journal. */
#include "agent.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

int agent_verbosity = 1;

static void __attribute__((format(printf, 2, 0)))
agent_log_v(const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t i;

	vsnprintf(line, sizeof(line), fmt, ap);
	/* Text from the network can hold anything: one line, printable. */
	for (i = 0; line[i] != '\0'; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
	fprintf(stderr, "ql-agent: %s%s\n", level, line);
}

void
agent_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	agent_log_v("error: ", fmt, ap);
	va_end(ap);
}

void
agent_info(const char *fmt, ...)
{
	va_list ap;

	if (agent_verbosity < 1)
		return;
	va_start(ap, fmt);
	agent_log_v("", fmt, ap);
	va_end(ap);
}

void
agent_debug(const char *fmt, ...)
{
	va_list ap;

	if (agent_verbosity < 2)
		return;
	va_start(ap, fmt);
	agent_log_v("debug: ", fmt, ap);
	va_end(ap);
}

const char *
agent_ssl_err(void)
{
	static char buf[256];
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(last, buf, sizeof(buf));
	return buf;
}
