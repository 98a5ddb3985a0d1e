/*
 * echo-epoll: the "practical limit" anchor — a single-threaded, edge-triggered
 * epoll echo server with nothing between the kernel and the echo. wasmux cannot
 * beat it; the benchmark reports how close it gets.
 *
 * usage: echo-epoll [--host 127.0.0.1] [--port 0]
 * Prints "listening on HOST:PORT" once accepting; exits 0 on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define READ_BUF (64 * 1024)

/*
 * Bytes the peer has not yet taken. Only a slow reader leaves any; while some
 * are pending we stop reading from that peer, so the buffer never grows past
 * one read's worth.
 */
struct conn {
    int fd;
    char *pending;
    size_t pending_len;
};

/* Distinct addresses tell the listener and signalfd apart from connections. */
static char listener_tag, signal_tag;
static char buf[READ_BUF];

static void die(const char *what) {
    fprintf(stderr, "echo-epoll: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void drop(struct conn *c) {
    close(c->fd); /* also removes it from the epoll set */
    free(c->pending);
    free(c);
}

/* Returns 0 when everything was written, 1 when the socket is full, -1 on error. */
static int write_all(struct conn *c, const char *p, size_t len) {
    while (len > 0) {
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
            char *keep = malloc(len);
            if (!keep) return -1;
            memcpy(keep, p, len);
            free(c->pending);
            c->pending = keep;
            c->pending_len = len;
            return 1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/*
 * Edge-triggered: each event must be driven until the kernel says EAGAIN,
 * or the next edge may never come. Flush the backlog first, then echo reads
 * until the input is dry or the output is full.
 */
static void service(struct conn *c) {
    if (c->pending) {
        char *p = c->pending;
        size_t len = c->pending_len;
        c->pending = NULL;
        int rc = write_all(c, p, len);
        free(p);
        if (rc < 0) { drop(c); return; }
        if (rc > 0) return;
    }
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r == 0) { drop(c); return; }
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) drop(c);
            return;
        }
        int rc = write_all(c, buf, (size_t)r);
        if (rc < 0) { drop(c); return; }
        if (rc > 0) return;
    }
}

static void accept_all(int ep, int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            /* EMFILE and friends: leave the rest in the backlog rather than die. */
            fprintf(stderr, "echo-epoll: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) { close(fd); continue; }
        c->fd = fd;
        /* Both directions registered once; ET means no epoll_ctl per message. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { drop(c); continue; }
    }
}

static int parse_args(int argc, char **argv, struct sockaddr_in *sa) {
    const char *host = "127.0.0.1";
    long port = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            puts("usage: echo-epoll [--host 127.0.0.1] [--port 0]\n"
                 "Edge-triggered epoll echo server (IPv4). Port 0 picks a free port.\n"
                 "Prints 'listening on HOST:PORT' when ready; exits on SIGTERM/SIGINT.");
            exit(0);
        } else if (!strcmp(a, "--host") && v) {
            host = v;
        } else if (!strcmp(a, "--port") && v) {
            char *end;
            port = strtol(v, &end, 10);
            if (*end || port < 0 || port > 65535) {
                fprintf(stderr, "echo-epoll: --port wants 0..65535, got '%s'\n", v);
                return -1;
            }
        } else {
            fprintf(stderr, "echo-epoll: unknown or incomplete argument '%s'\n", a);
            return -1;
        }
        i++;
    }
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        fprintf(stderr, "echo-epoll: --host must be an IPv4 address, got '%s'\n", host);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    struct sockaddr_in sa;
    if (parse_args(argc, argv, &sa) < 0) return 2;

    /* Signals arrive as readable events, so shutdown cannot race the wait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0) die("sigprocmask");
    int sfd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) die("signalfd");

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    /* A deep backlog so 1000 simultaneous connects are not dropped and retried. */
    if (listen(lfd, 4096) < 0) die("listen");
    socklen_t len = sizeof sa;
    if (getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) die("getsockname");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.ptr = &listener_tag};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &signal_tag};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev) < 0)
        die("epoll_ctl");

    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
    printf("listening on %s:%d\n", addr, ntohs(sa.sin_port));
    fflush(stdout);

    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &signal_tag) return 0; /* the kernel closes every socket on exit */
            if (tag == &listener_tag) accept_all(ep, lfd);
            else service(tag);
        }
    }
}
