/* notify.h: the service manager's readiness protocol (sd_notify(3)) without
 * libsystemd: one datagram to $NOTIFY_SOCKET per state change. */
#ifndef QL_NOTIFY_H
#define QL_NOTIFY_H

/* Send "READY=1", "STOPPING=1" or any other newline-separated assignments.
 * 0 when sent or when NOTIFY_SOCKET is unset; -1 (errno set) otherwise. */
int	notify_send(const char *state);
/* "RELOADING=1" with the MONOTONIC_USEC= that systemd >= 253 expects. */
int	notify_reloading(void);

#endif
