#ifndef TANDEM_NET_H
#define TANDEM_NET_H

// Linux socket and event APIs that Swift's Glibc module does not export.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>
#include <signal.h>

/// accept4 is _GNU_SOURCE-only; this returns a non-blocking, close-on-exec socket.
int tandem_accept4(int fd, struct sockaddr *address, socklen_t *length);

/// Ignores SIGPIPE process-wide so a write to a closed peer returns EPIPE instead of killing us.
void tandem_ignore_sigpipe(void);

#endif
