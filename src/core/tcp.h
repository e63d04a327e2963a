/* tcp.h - the dead-peer detection every driver puts on its TCP socket
 * (docs/timeouts.md, "Dead peers without a timeout"). */
#ifndef DBP_TCP_H
#define DBP_TCP_H

/* Keepalives after 10 s idle, 3 probes 5 s apart, and TCP_USER_TIMEOUT of
 * 30 s for data the peer never acknowledges; TCP_NODELAY too. A socket that
 * refuses an option (a Unix socket) just goes without it. */
void dbp_tcp_keepalive(int fd);

#endif
