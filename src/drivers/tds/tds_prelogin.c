/* tds_prelogin.c - whether a server offers TLS, asked with a PRELOGIN of
 * our own (MS-TDS 2.2.6.5): db-lib reports a server it refused for lacking
 * TLS only as "connection failed", the same words as a lost connection, so
 * a failed encrypted login asks once more to say which it was. Only on that
 * failure path; the answer changes nothing but the message. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "driver.h"
#include "tds_internal.h"

#define TDS_PRELOGIN 0x12
#define PL_ENCRYPTION 0x01
#define PL_TERMINATOR 0xFF
#define ENCRYPT_ON 0x01
#define ENCRYPT_NOT_SUP 0x02

/* A PRELOGIN packet: header (type, end of message, length 26), option
 * table (VERSION at 11, 6 bytes; ENCRYPTION at 17, 1 byte), the data. */
static const unsigned char prelogin[] = {
    TDS_PRELOGIN, 0x01, 0x00, 26, 0x00, 0x00, 0x01, 0x00,
    0x00, 0x00, 11, 0x00, 6, PL_ENCRYPTION, 0x00, 17, 0x00, 1, PL_TERMINATOR,
    0, 0, 0, 0, 0, 0, ENCRYPT_ON,
};

/* Waits for `events` on `fd` until `deadline_ns`; 1 when ready. */
static int wait_for(int fd, short events, int64_t deadline_ns)
{
    for (;;) {
        int64_t left_ms = (deadline_ns - dbp_now_ns()) / 1000000;
        if (left_ms <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left_ms);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return 0;
    }
}

/* Reads exactly `len` bytes; 1 on success. */
static int read_all(int fd, unsigned char *buf, size_t len, int64_t deadline_ns)
{
    size_t got = 0;
    while (got < len) {
        if (!wait_for(fd, POLLIN, deadline_ns))
            return 0;
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)))
            return 0;
        got += n > 0 ? (size_t)n : 0;
    }
    return 1;
}

static int connect_to(const char *host, long port, int64_t deadline_ns)
{
    char service[16];
    snprintf(service, sizeof service, "%ld", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *addrs;
    if (getaddrinfo(host, service, &hints, &addrs) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = addrs; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int err = 0;
        socklen_t len = sizeof err;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 &&
            (errno != EINPROGRESS || !wait_for(fd, POLLOUT, deadline_ns) ||
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(addrs);
    return fd;
}

int tds_server_offers_tls(const char *host, long port, int timeout_ms)
{
    int64_t deadline = dbp_now_ns() + (int64_t)timeout_ms * 1000000;
    int fd = connect_to(host, port, deadline);
    if (fd < 0)
        return -1;
    unsigned char head[8], body[4096];
    int answer = -1;
    if (wait_for(fd, POLLOUT, deadline) &&
        send(fd, prelogin, sizeof prelogin, MSG_NOSIGNAL) == (ssize_t)sizeof prelogin &&
        read_all(fd, head, sizeof head, deadline)) {
        size_t len = ((size_t)head[2] << 8 | head[3]);
        len = len > sizeof head ? len - sizeof head : 0;
        if (len <= sizeof body && read_all(fd, body, len, deadline)) {
            /* option table: token, offset (2 bytes), length (2 bytes) */
            for (size_t i = 0; i + 4 < len && body[i] != PL_TERMINATOR; i += 5) {
                size_t off = (size_t)body[i + 1] << 8 | body[i + 2];
                size_t n = (size_t)body[i + 3] << 8 | body[i + 4];
                if (body[i] == PL_ENCRYPTION && n >= 1 && off < len)
                    answer = body[off] != ENCRYPT_NOT_SUP;
            }
        }
    }
    close(fd);
    return answer;
}
