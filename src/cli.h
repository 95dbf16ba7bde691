/* cli.h: "quarklinkd admin ..." commands: the operations an operator
 * needs before the REST API exists, run against the same database and
 * token as the daemon (which may be running). */
#ifndef QL_CLI_H
#define QL_CLI_H

struct server;

/* Checks the arguments before anything is started: 0, or -1 with usage. */
int	cli_check_args(int argc, char **argv);
/* Runs one command on the loop; calls server_exit(srv, rc). */
void	cli_start(struct server *, int argc, char **argv);
void	cli_usage(void);

#endif
