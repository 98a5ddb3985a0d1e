/*
 * loadgen: single-threaded epoll ping-pong load generator for echo servers.
 *
 * Each connection has exactly one message in flight: it sends `size` bytes and
 * waits for the same `size` bytes back before sending the next. That keeps the
 * server's work per message fixed (one read, one write) so that server CPU per
 * message is comparable across servers, and makes round-trip latency meaningful.
 *
 * Protocol with the runner (bench/echo.mjs), on stdout:
 *   "measure-start"  when the warmup ends (the runner samples server CPU then)
 *   one JSON line    when the measured window ends (the runner samples again)
 * Everything else goes to stderr.
 *
 * Exit status: 0 ok; 1 the run finished but had errors (JSON still printed);
 * 2 bad arguments or the connections could not be established (no JSON).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE (1 << 20)
#define CONNECT_TIMEOUT_MS 10000
#define MAX_EVENTS 256

struct conn {
    int fd;            /* -1 once the connection is lost */
    int out_armed;     /* EPOLLOUT registered: only while a write is blocked */
    int bad;           /* current message had a mismatching byte */
    uint32_t id;
    uint64_t seq;      /* message number on this connection; selects its bytes */
    size_t wr_off, rd_off;
    uint64_t sent_ns;
};

static struct {
    const char *host;
    int port, conns, duration_ms, warmup_ms;
    size_t size;
} opt = {"127.0.0.1", 0, 100, 5000, 1000, 64};

static int ep;
static int live;
static unsigned char *scratch;
static uint64_t t_measure, t_end, messages, errors;

/*
 * Log-linear latency histogram in nanoseconds: values below 128 are exact,
 * above that each power of two is split into 64 buckets, so any reported
 * value is within 1/128 (<0.8%) of the truth with a fixed 30 KB table.
 */
#define SUB_BUCKETS 64
#define N_BUCKETS (2 * SUB_BUCKETS + 57 * SUB_BUCKETS)
static uint64_t hist[N_BUCKETS];

static unsigned bucket_of(uint64_t v) {
    if (v < 2 * SUB_BUCKETS) return (unsigned)v;
    unsigned shift = (63 - __builtin_clzll(v)) - 6; /* v >> shift in [64,128) */
    return 2 * SUB_BUCKETS + (shift - 1) * SUB_BUCKETS + (unsigned)((v >> shift) - SUB_BUCKETS);
}

static double bucket_mid(unsigned b) {
    if (b < 2 * SUB_BUCKETS) return b;
    unsigned shift = (b - 2 * SUB_BUCKETS) / SUB_BUCKETS + 1;
    uint64_t low = (uint64_t)((b - 2 * SUB_BUCKETS) % SUB_BUCKETS + SUB_BUCKETS) << shift;
    return (double)low + (double)((uint64_t)1 << shift) / 2;
}

/* Returns the quantile (in thousandths) in microseconds, or -1 when nothing was recorded. */
static double percentile_us(unsigned permille) {
    if (messages == 0) return -1;
    uint64_t rank = (messages * permille + 999) / 1000, seen = 0;
    for (unsigned b = 0; b < N_BUCKETS; b++) {
        seen += hist[b];
        if (seen >= rank) return bucket_mid(b) / 1000.0;
    }
    return -1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

/*
 * Byte i of message `seq` on connection `id`. Consecutive messages differ in
 * every byte, so a stale, duplicated or misrouted echo cannot pass as correct.
 */
static inline unsigned char pattern(const struct conn *c, size_t i) {
    return (unsigned char)(c->seq * 131u + c->id * 7u + i);
}

static void set_out(struct conn *c, int on) {
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
    c->out_armed = on;
}

/* Reports only the first loss: a dying server would otherwise flood stderr. */
static void lose(struct conn *c, const char *why) {
    if (live == opt.conns) fprintf(stderr, "loadgen: connection %u lost: %s\n", c->id, why);
    errors++;
    close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
    live--;
}

static void pump_write(struct conn *c) {
    while (c->wr_off < opt.size) {
        size_t n = opt.size - c->wr_off;
        for (size_t i = 0; i < n; i++) scratch[i] = pattern(c, c->wr_off + i);
        ssize_t w = send(c->fd, scratch, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!c->out_armed) set_out(c, 1);
                return;
            }
            if (errno == EINTR) continue;
            lose(c, strerror(errno));
            return;
        }
        c->wr_off += (size_t)w;
    }
    if (c->out_armed) set_out(c, 0);
}

static void start_message(struct conn *c, uint64_t t) {
    c->wr_off = c->rd_off = 0;
    c->bad = 0;
    c->sent_ns = t;
    pump_write(c);
}

/*
 * One read per readiness event: epoll is level-triggered here, so leftover
 * bytes re-report, and we skip the EAGAIN read that draining would cost. The
 * load generator shares two cores with the server; its syscalls are not free.
 */
static void on_readable(struct conn *c) {
    ssize_t r = recv(c->fd, scratch, opt.size - c->rd_off, 0);
    if (r == 0) { lose(c, "closed by server"); return; }
    if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) lose(c, strerror(errno));
        return;
    }
    for (ssize_t i = 0; i < r && !c->bad; i++)
        if (scratch[i] != pattern(c, c->rd_off + (size_t)i)) c->bad = 1;
    c->rd_off += (size_t)r;
    if (c->rd_off < opt.size) return;

    uint64_t t = now_ns();
    if (t >= t_measure && t < t_end) {
        if (c->bad) {
            errors++;
        } else {
            messages++;
            hist[bucket_of(t - c->sent_ns)]++;
        }
    }
    c->seq++;
    start_message(c, t);
}

static int wait_ms_until(uint64_t deadline) {
    uint64_t t = now_ns();
    if (t >= deadline) return 0;
    return (int)((deadline - t + 999999) / 1000000);
}

/*
 * Opens every connection before the clock starts, so the warmup measures the
 * server rather than the accept backlog. Any failure here aborts the run: a
 * benchmark with fewer connections than asked for would silently mislead.
 */
static struct conn *connect_all(void) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) {
        fprintf(stderr, "loadgen: --host must be an IPv4 address, got '%s'\n", opt.host);
        exit(2);
    }
    struct conn *cs = calloc((size_t)opt.conns, sizeof *cs);
    if (!cs) die("calloc");
    int pending = 0;
    for (int i = 0; i < opt.conns; i++) {
        struct conn *c = &cs[i];
        c->id = (uint32_t)i;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) die("socket");
        int one = 1;
        if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("TCP_NODELAY");
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
            fprintf(stderr, "loadgen: connect %s:%d (connection %d of %d): %s\n", opt.host,
                    opt.port, i + 1, opt.conns, strerror(errno));
            exit(2);
        }
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
        c->out_armed = 1;
        pending++;
    }

    uint64_t deadline = now_ns() + (uint64_t)CONNECT_TIMEOUT_MS * 1000000u;
    struct epoll_event evs[MAX_EVENTS];
    while (pending > 0) {
        int timeout = wait_ms_until(deadline);
        if (timeout == 0) {
            fprintf(stderr, "loadgen: %d of %d connections to %s:%d not established after %d ms\n",
                    pending, opt.conns, opt.host, opt.port, CONNECT_TIMEOUT_MS);
            exit(2);
        }
        int n = epoll_wait(ep, evs, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c->out_armed) continue;
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) die("getsockopt");
            if (err != 0) {
                fprintf(stderr, "loadgen: connect %s:%d: %s\n", opt.host, opt.port, strerror(err));
                exit(2);
            }
            set_out(c, 0);
            pending--;
        }
    }
    live = opt.conns;
    return cs;
}

static void run(struct conn *cs) {
    uint64_t t0 = now_ns();
    t_measure = t0 + (uint64_t)opt.warmup_ms * 1000000u;
    t_end = t_measure + (uint64_t)opt.duration_ms * 1000000u;
    for (int i = 0; i < opt.conns; i++) start_message(&cs[i], t0);

    int announced = 0;
    struct epoll_event evs[MAX_EVENTS];
    while (live > 0) {
        uint64_t t = now_ns();
        if (!announced && t >= t_measure) {
            fputs("measure-start\n", stdout);
            fflush(stdout);
            announced = 1;
        }
        if (t >= t_end) break;
        int n = epoll_wait(ep, evs, MAX_EVENTS, wait_ms_until(announced ? t_end : t_measure));
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT)) pump_write(c);
        }
    }
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: loadgen --port P [--host 127.0.0.1] [--conns 100] [--size 64]\n"
            "               [--duration-ms 5000] [--warmup-ms 1000]\n"
            "Ping-pong load against an echo server: each of N connections sends one\n"
            "message of --size bytes and waits for it to come back before the next.\n"
            "Prints 'measure-start' when the warmup ends, then one JSON line:\n"
            "  {conns,size,durationMs,messages,msgsPerSec,p50us,p99us,errors}\n"
            "Connections must all be established within %d ms (IPv4 only).\n"
            "Exit: 0 ok, 1 errors during the run, 2 setup failure.\n",
            CONNECT_TIMEOUT_MS);
}

static long parse_num(const char *name, const char *s, long min, long max) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || v < min || v > max) {
        fprintf(stderr, "loadgen: %s wants an integer in [%ld, %ld], got '%s'\n", name, min, max,
                s ? s : "(nothing)");
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
        else if (!strcmp(a, "--host") && v) opt.host = v;
        else if (!strcmp(a, "--port")) opt.port = (int)parse_num(a, v, 1, 65535);
        else if (!strcmp(a, "--conns")) opt.conns = (int)parse_num(a, v, 1, 1000000);
        else if (!strcmp(a, "--size")) opt.size = (size_t)parse_num(a, v, 1, MAX_SIZE);
        else if (!strcmp(a, "--duration-ms")) opt.duration_ms = (int)parse_num(a, v, 1, 3600000);
        else if (!strcmp(a, "--warmup-ms")) opt.warmup_ms = (int)parse_num(a, v, 0, 3600000);
        else { fprintf(stderr, "loadgen: unknown or incomplete argument '%s'\n", a); usage(stderr); exit(2); }
        i++;
    }
    if (opt.port == 0) { fprintf(stderr, "loadgen: --port is required\n"); usage(stderr); exit(2); }
}

/* Each connection is one fd; raise the soft limit rather than fail at N ~ 1000. */
static void ensure_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die("getrlimit");
    rlim_t need = (rlim_t)opt.conns + 16;
    if (rl.rlim_cur >= need) return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr, "loadgen: %d connections need %ju fds; the hard limit is %ju\n", opt.conns,
                (uintmax_t)need, (uintmax_t)rl.rlim_max);
        exit(2);
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    ensure_fd_limit();
    scratch = malloc(opt.size);
    if (!scratch) die("malloc");
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");

    struct conn *cs = connect_all();
    run(cs);

    /* Print before closing: the runner's second CPU sample should not include teardown. */
    double secs = opt.duration_ms / 1000.0, p50 = percentile_us(500), p99 = percentile_us(990);
    printf("{\"conns\":%d,\"size\":%zu,\"durationMs\":%d,\"messages\":%" PRIu64
           ",\"msgsPerSec\":%.1f,",
           opt.conns, opt.size, opt.duration_ms, messages, messages / secs);
    if (p50 < 0) printf("\"p50us\":null,\"p99us\":null,");
    else printf("\"p50us\":%.1f,\"p99us\":%.1f,", p50, p99);
    printf("\"errors\":%" PRIu64 "}\n", errors);
    fflush(stdout);

    for (int i = 0; i < opt.conns; i++)
        if (cs[i].fd >= 0) close(cs[i].fd);
    close(ep);
    free(cs);
    free(scratch);
    if (live < opt.conns)
        fprintf(stderr, "loadgen: %d of %d connections lost%s\n", opt.conns - live, opt.conns,
                live == 0 ? "; the run ended early" : "");
    return errors ? 1 : 0;
}
