/*
 * idlegen: opens N connections to a server, has each make one exchange (a
 * request, a SET, a WebSocket handshake: whatever sets the protocol's
 * per-connection state up), then holds them all open and idle.
 *
 * Each connection sends `--send` once connected and then reads until its
 * answer is complete: `--expect` bytes ending the answer (checked), or, with
 * `--http`, a head and the Content-Length body it announces. At most
 * `--batch` connections are being set up at a time (the listen backlog and
 * the loopback's SYN queue are not what is measured).
 *
 * Protocol with the runner (bench/idle.mjs), on stdout, one JSON line each:
 *   {"ready":N,"ms":T}    every connection has its answer; T = ms from the first connect
 *   {"closed":N}          after "close" (or EOF) on stdin: every connection closed
 * Everything else goes to stderr. While idle it reads nothing, so a server
 * that writes to an idle connection would be caught: "check\n" on stdin
 * makes it poll every socket once and print {"check":bytes}. "expect BYTES
 * MS\n" (BYTES with the same escapes as --send) waits up to MS ms for every
 * connection to receive exactly BYTES (a broadcast, say) and prints
 * {"matched":N,"wrong":N,"missing":N}.
 *
 * Exit status: 0 ok; 2 bad arguments, a connection failed, or an answer
 * was wrong or did not come within --timeout-ms.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 512
#define ANSWER_MAX 4096

struct conn {
    int fd;
    int state; /* 0 connecting, 1 sending, 2 reading, 3 done */
    size_t sent, got;
    char *answer; /* what was read so far (freed once done) */
};

static struct {
    const char *host;
    int port, conns, batch, timeout_ms, http;
    char *send;
    size_t send_len;
    char *expect;
    size_t expect_len;
} opt = {"127.0.0.1", 0, 1000, 200, 60000, 0, NULL, 0, NULL, 0};

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void die(const char *what) {
    fprintf(stderr, "idlegen: %s\n", what);
    exit(2);
}

/* C escapes in an argument (\r \n \t \\ \xHH) -> bytes. */
static char *unescape(const char *s, size_t *len) {
    char *out = malloc(strlen(s) + 1);
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        if (*p != '\\' || !p[1]) { out[n++] = *p; continue; }
        p++;
        if (*p == 'r') out[n++] = '\r';
        else if (*p == 'n') out[n++] = '\n';
        else if (*p == 't') out[n++] = '\t';
        else if (*p == 'x' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            p += 2;
        } else out[n++] = *p;
    }
    *len = n;
    return out;
}

/* With --http: a whole response (head, then Content-Length bytes)? */
static int http_complete(const char *buf, size_t len) {
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - buf) + 4;
    long body = 0;
    for (const char *p = buf; p < end; p++) {
        if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) body = strtol(p + 15, NULL, 10);
    }
    return len >= head + (size_t)body;
}

static int complete(struct conn *c) {
    if (opt.http) return http_complete(c->answer, c->got);
    if (c->got < opt.expect_len) return 0;
    return memcmp(c->answer + c->got - opt.expect_len, opt.expect, opt.expect_len) == 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--host") && v) opt.host = v, i++;
        else if (!strcmp(a, "--port") && v) opt.port = atoi(v), i++;
        else if (!strcmp(a, "--conns") && v) opt.conns = atoi(v), i++;
        else if (!strcmp(a, "--batch") && v) opt.batch = atoi(v), i++;
        else if (!strcmp(a, "--timeout-ms") && v) opt.timeout_ms = atoi(v), i++;
        else if (!strcmp(a, "--send") && v) opt.send = unescape(v, &opt.send_len), i++;
        else if (!strcmp(a, "--expect") && v) opt.expect = unescape(v, &opt.expect_len), i++;
        else if (!strcmp(a, "--http")) opt.http = 1;
        else {
            fprintf(stderr, "usage: idlegen --port P --conns N --send BYTES (--expect BYTES | --http) [--host H] [--batch B] [--timeout-ms T]\n");
            return 2;
        }
    }
    if (opt.port <= 0 || opt.conns <= 0 || !opt.send || (!opt.expect && !opt.http)) die("needs --port, --conns, --send and --expect or --http");
    if (opt.batch <= 0) opt.batch = 1;

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)opt.conns + 16) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)opt.conns + 16) die("the open-file limit is below --conns");
    }

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) die("--host must be an IPv4 address");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)opt.conns, sizeof *conns);
    uint64_t start = now_ms(), deadline = start + (uint64_t)opt.timeout_ms;
    int opened = 0, inflight = 0, done = 0;
    struct epoll_event evs[MAX_EVENTS];

    while (done < opt.conns) {
        while (opened < opt.conns && inflight < opt.batch) {
            struct conn *c = &conns[opened];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c->fd < 0) die("socket failed");
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) die("connect failed");
            c->answer = malloc(ANSWER_MAX);
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)opened};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            opened++;
            inflight++;
        }
        uint64_t now = now_ms();
        if (now >= deadline) {
            fprintf(stderr, "idlegen: %d of %d connections ready after %d ms\n", done, opt.conns, opt.timeout_ms);
            return 2;
        }
        int n = epoll_wait(ep, evs, MAX_EVENTS, (int)(deadline - now));
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[evs[i].data.u32];
            if (c->state == 3) continue;
            if (evs[i].events & (EPOLLERR | EPOLLHUP) && c->state < 2) {
                int err = 0;
                socklen_t l = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                fprintf(stderr, "idlegen: connection %u failed: %s\n", evs[i].data.u32, strerror(err));
                return 2;
            }
            if (c->state <= 1 && (evs[i].events & EPOLLOUT)) {
                c->state = 1;
                ssize_t w = send(c->fd, opt.send + c->sent, opt.send_len - c->sent, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) die("send failed");
                if (w > 0) c->sent += (size_t)w;
                if (c->sent == opt.send_len) {
                    c->state = 2;
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[i].data.u32};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (c->state == 2 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                for (;;) {
                    if (c->got == ANSWER_MAX) die("an answer longer than 4096 bytes");
                    ssize_t r = recv(c->fd, c->answer + c->got, ANSWER_MAX - c->got, 0);
                    if (r < 0 && errno == EAGAIN) break;
                    if (r <= 0) {
                        fprintf(stderr, "idlegen: connection %u closed by the server before its answer (%zu bytes: %.*s)\n",
                                evs[i].data.u32, c->got, (int)(c->got < 200 ? c->got : 200), c->answer);
                        return 2;
                    }
                    c->got += (size_t)r;
                }
                if (complete(c)) {
                    c->state = 3;
                    free(c->answer);
                    c->answer = NULL;
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    inflight--;
                    done++;
                }
            }
        }
    }
    printf("{\"ready\":%d,\"ms\":%llu}\n", done, (unsigned long long)(now_ms() - start));
    fflush(stdout);

    static char line[1 << 16];
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "check", 5)) {
            /* Nothing should have arrived on an idle connection. */
            size_t pending = 0;
            for (int i = 0; i < opt.conns; i++) {
                char b[512];
                ssize_t r;
                while ((r = recv(conns[i].fd, b, sizeof b, MSG_DONTWAIT)) > 0) pending += (size_t)r;
                if (r == 0) pending += 1000000; /* closed by the server: counted loudly */
            }
            printf("{\"check\":%zu}\n", pending);
            fflush(stdout);
        } else if (!strncmp(line, "expect ", 7)) {
            char *sp = strrchr(line, ' ');
            int ms = atoi(sp + 1);
            *sp = 0;
            size_t want_len;
            char *want = unescape(line + 7, &want_len);
            size_t *got = calloc((size_t)opt.conns, sizeof *got);
            int *bad = calloc((size_t)opt.conns, sizeof *bad);
            char *b = malloc(want_len + 1);
            uint64_t until = now_ms() + (uint64_t)ms;
            int matched = 0, wrong = 0;
            while (matched + wrong < opt.conns && now_ms() < until) {
                for (int i = 0; i < opt.conns; i++) {
                    if (bad[i] || got[i] == want_len) continue;
                    ssize_t r = recv(conns[i].fd, b, want_len - got[i] + 1, MSG_DONTWAIT);
                    if (r == 0 || (r > 0 && (got[i] + (size_t)r > want_len || memcmp(b, want + got[i], (size_t)r) != 0))) {
                        if (wrong < 3) {
                            /* What went wrong, for the log: end of stream, or the bytes (hex) after what matched. */
                            fprintf(stderr, "idlegen: connection %d: after %zu bytes as expected, ", i, got[i]);
                            if (r == 0) fprintf(stderr, "end of stream\n");
                            else {
                                for (ssize_t k = 0; k < r && k < 32; k++) fprintf(stderr, "%02x", (unsigned char)b[k]);
                                fprintf(stderr, " (%zd bytes)\n", r);
                            }
                        }
                        bad[i] = 1;
                        wrong++;
                        continue;
                    }
                    if (r > 0 && (got[i] += (size_t)r) == want_len) matched++;
                }
                if (matched + wrong < opt.conns) usleep(2000);
            }
            printf("{\"matched\":%d,\"wrong\":%d,\"missing\":%d}\n", matched, wrong, opt.conns - matched - wrong);
            fflush(stdout);
            free(got);
            free(bad);
            free(b);
            free(want);
        } else if (!strncmp(line, "close", 5)) {
            break;
        }
    }
    for (int i = 0; i < opt.conns; i++) close(conns[i].fd);
    printf("{\"closed\":%d}\n", opt.conns);
    fflush(stdout);
    return 0;
}
