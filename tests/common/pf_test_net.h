/* Loopback helpers for tests that need a TCP port nobody else uses. */
#ifndef PEERFLASH_TEST_NET_H
#define PEERFLASH_TEST_NET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A port that was free a moment ago (bound to 0 on 127.0.0.1, then
 * released); -1 if none could be had. */
static inline int pf_test_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(s, (struct sockaddr *)&a, &len) == 0;
    close(s);
    return ok ? ntohs(a.sin_port) : -1;
}

#endif
