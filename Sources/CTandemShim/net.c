#define _GNU_SOURCE
#include <sys/socket.h>
#include <signal.h>
#include "tandem_net.h"

int tandem_accept4(int fd, struct sockaddr *address, socklen_t *length) {
    return accept4(fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void tandem_ignore_sigpipe(void) {
    signal(SIGPIPE, SIG_IGN);
}
