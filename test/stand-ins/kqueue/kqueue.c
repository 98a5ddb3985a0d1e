/*
 * A kqueue stand-in for wasmux's tests on Linux: kqueue(2) and kevent(2)
 * over epoll, loaded by the host through WASMUX_KQUEUE_LIBRARY exactly as
 * libkqueue would be. It is a test stand-in, not a product: it models
 * FreeBSD's semantics for what host/backends/kqueue.ts uses, and refuses
 * (EINVAL) what it does not model.
 *
 * Built by test/stand-ins/kqueue/build.ts into .cache/kqueue-stand-in/, twice:
 *   cc -shared -fPIC -O2 -DKEVENT_SIZE=64 (FreeBSD 12+: struct kevent with ext[4])
 *   cc -shared -fPIC -O2 -DKEVENT_SIZE=32 (macOS, FreeBSD 11 and libkqueue: no ext)
 * The host tells them apart with its probe (host/ffi/kqueue-lib.ts).
 *
 * What is modelled (FreeBSD kevent(2)):
 * - EVFILT_READ, EVFILT_WRITE on sockets, with EV_CLEAR (edge-triggered:
 *   an event per new arrival or transition, as epoll's EPOLLET gives),
 *   EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE. EV_ADD on an existing filter
 *   updates udata and re-evaluates readiness (an event if ready now).
 *   data: bytes readable (1 for a listening socket) / send space left.
 *   EV_EOF on the read filter once the peer has shut down (EPOLLRDHUP, or
 *   EPOLLIN with nothing left to read) or the connection is gone (EPOLLHUP,
 *   EPOLLERR); on the write filter when the connection is gone (not after
 *   the socket's own shutdown(SHUT_WR) alone, as on BSD: no epoll bit shows
 *   that). With a pending socket error, fflags is ECONNRESET: Linux clears
 *   the error when it is read (SO_ERROR), where BSD's filter only looks, so
 *   the stand-in does not read it and names the error a reset leaves (the
 *   host only tests fflags != 0).
 * - EVFILT_USER (-11) with EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE,
 *   EV_CLEAR, NOTE_TRIGGER and the NOTE_FF* operations. A trigger may come
 *   from any thread (the host's waker does exactly that).
 * - EV_RECEIPT, and a failed change: an entry with flags = EV_ERROR (as
 *   FreeBSD writes it) and data = 0 or the errno, if the event list has room;
 *   if any entry was written for the change list, kevent returns at once
 *   without collecting events; a failed change without room: -1 and errno.
 * - Timeouts: NULL waits forever, zero polls; nevents == 0 never waits.
 * Not modelled: EV_ONESHOT, EV_DISPATCH, filters without EV_CLEAR on
 * sockets, other filters (all EINVAL); regular files (epoll refuses them).
 *
 * State and threads: the kqueue descriptor is the epoll descriptor itself,
 * so the host's libc close() ends it; the stand-in's bookkeeping for it is
 * kept in a table indexed by that number and freed when kqueue() gets the
 * same number again. Wake-ups use one eventfd for the whole process (opened
 * by the first kqueue(), never closed), registered in every epoll set with
 * no events: a trigger re-arms it there (EPOLL_CTL_MOD to EPOLLOUT |
 * EPOLLONESHOT, and an eventfd is always writable), which ends a wait in
 * progress on another thread. So a kqueue costs one descriptor, like a real
 * one, and closing it leaves nothing open. One mutex guards all bookkeeping;
 * epoll_wait runs outside it.
 *
 * libkqueue mode: with WASMUX_KQUEUE_STANDIN_QUIRKS=libkqueue in the
 * environment at kqueue() time, that kqueue reproduces two behaviours of
 * libkqueue 2.7.0 on Linux that BSD does not have:
 *   (a) once EVFILT_WRITE is added to a socket that already has EVFILT_READ,
 *       the socket's epoll registration no longer asks for EPOLLRDHUP, so
 *       when data and FIN arrive in one edge the read event carries no
 *       EV_EOF (a FIN alone still does: nothing left to read means EOF);
 *   (b) EV_ADD on an already registered filter only updates it: readiness is
 *       not re-evaluated, so an edge consumed before is not reported again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#ifndef KEVENT_SIZE
#error "build with -DKEVENT_SIZE=32 or -DKEVENT_SIZE=64"
#endif

struct kevent {
  uintptr_t ident;
  int16_t filter;
  uint16_t flags;
  uint32_t fflags;
  int64_t data;
  void *udata;
#if KEVENT_SIZE == 64
  uint64_t ext[4];
#endif
};
_Static_assert(sizeof(struct kevent) == KEVENT_SIZE, "struct kevent is not KEVENT_SIZE bytes");

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_USER (-11)
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ENABLE 0x0004
#define EV_DISABLE 0x0008
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#define EV_RECEIPT 0x0040
#define EV_DISPATCH 0x0080
#define EV_ERROR 0x4000
#define EV_EOF 0x8000
#define NOTE_FFAND 0x40000000u
#define NOTE_FFOR 0x80000000u
#define NOTE_FFCOPY 0xc0000000u
#define NOTE_FFCTRLMASK 0xc0000000u
#define NOTE_FFLAGSMASK 0x00ffffffu
#define NOTE_TRIGGER 0x01000000u

/* Flags a filter keeps from its EV_ADD and reports with its events (FreeBSD strips these). */
#define ACTIONS (EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE)

#define QUIRKS_ENV "WASMUX_KQUEUE_STANDIN_QUIRKS"
/* epoll data of the wake-up eventfd; a socket's is its descriptor. */
#define WAKE_TAG UINT64_MAX
#define MAX_EPOLL_EVENTS 256

enum { R, W };

struct filter {
  uint8_t on, enabled;
  uint16_t flags;
  void *udata;
};

struct socket_state {
  struct filter f[2]; /* [R] EVFILT_READ, [W] EVFILT_WRITE */
  uint8_t in_epoll;
  uint8_t rdhup_lost; /* libkqueue mode (a) */
  int sndbuf;         /* SO_SNDBUF when the write filter was added, for data */
};

struct user_event {
  uintptr_t ident;
  uint16_t flags;
  uint8_t enabled, triggered;
  uint32_t fflags;
  void *udata;
};

struct kq {
  int epfd;
  int libkqueue; /* libkqueue mode */
  int wake_armed;
  struct socket_state *socks; /* indexed by descriptor */
  size_t nsocks;
  struct user_event *users;
  size_t nusers, cap_users;
  struct kevent *pending; /* events found with no room left in the caller's list */
  size_t npending, cap_pending;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct kq **kqs; /* indexed by epoll descriptor */
static size_t nkqs;
static int wakefd = -1;

static void free_kq(struct kq *kq) {
  if (kq == NULL) return;
  free(kq->socks);
  free(kq->users);
  free(kq->pending);
  free(kq);
}

/* Grows an array of `*n` elements of `size` bytes to at least `want`, zeroing the new part. */
static int grow(void **array, size_t *n, size_t want, size_t size) {
  if (want <= *n) return 0;
  size_t m = *n ? *n : 16;
  while (m < want) m *= 2;
  void *p = realloc(*array, m * size);
  if (p == NULL) return -1;
  memset((char *)p + *n * size, 0, (m - *n) * size);
  *array = p;
  *n = m;
  return 0;
}

int kqueue(void) {
  int libkqueue = 0;
  const char *quirks = getenv(QUIRKS_ENV);
  if (quirks != NULL && *quirks != '\0') {
    if (strcmp(quirks, "libkqueue") != 0) {
      errno = EINVAL; /* an unknown mode must not pass for BSD's */
      return -1;
    }
    libkqueue = 1;
  }
  pthread_mutex_lock(&lock);
  int fd = -1, err = 0;
  struct kq *kq = NULL;
  if (wakefd < 0 && (wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) goto fail;
  if ((fd = epoll_create1(EPOLL_CLOEXEC)) < 0) goto fail;
  struct epoll_event ev = {.events = 0, .data.u64 = WAKE_TAG};
  if (epoll_ctl(fd, EPOLL_CTL_ADD, wakefd, &ev) < 0) goto fail;
  if ((kq = calloc(1, sizeof *kq)) == NULL) goto fail;
  if (grow((void **)&kqs, &nkqs, (size_t)fd + 1, sizeof *kqs) < 0) goto fail;
  kq->epfd = fd;
  kq->libkqueue = libkqueue;
  free_kq(kqs[fd]); /* a kqueue closed earlier whose number this is again */
  kqs[fd] = kq;
  pthread_mutex_unlock(&lock);
  return fd;
fail:
  err = errno;
  free(kq);
  if (fd >= 0) close(fd);
  pthread_mutex_unlock(&lock);
  errno = err;
  return -1;
}

/* ---- events waiting for room ---------------------------------------------------------- */

static void emit(struct kq *kq, struct kevent *out, int *n, int max, const struct kevent *ev) {
  if (*n < max) {
    out[(*n)++] = *ev;
    return;
  }
  if (grow((void **)&kq->pending, &kq->cap_pending, kq->npending + 1, sizeof *kq->pending) == 0) {
    kq->pending[kq->npending++] = *ev;
  }
}

static int take_pending(struct kq *kq, struct kevent *out, int max) {
  size_t n = kq->npending < (size_t)max ? kq->npending : (size_t)max;
  memcpy(out, kq->pending, n * sizeof *out);
  memmove(kq->pending, kq->pending + n, (kq->npending - n) * sizeof *out);
  kq->npending -= n;
  return (int)n;
}

/* A deleted filter takes its queued events with it; a re-added one updates their udata. */
static void forget_pending(struct kq *kq, uintptr_t ident, int16_t filter) {
  size_t k = 0;
  for (size_t i = 0; i < kq->npending; i++) {
    if (kq->pending[i].ident != ident || kq->pending[i].filter != filter) kq->pending[k++] = kq->pending[i];
  }
  kq->npending = k;
}

static void retag_pending(struct kq *kq, uintptr_t ident, int16_t filter, void *udata) {
  for (size_t i = 0; i < kq->npending; i++) {
    if (kq->pending[i].ident == ident && kq->pending[i].filter == filter) kq->pending[i].udata = udata;
  }
}

/* ---- EVFILT_USER ----------------------------------------------------------------------- */

static void arm_wake(struct kq *kq) {
  if (kq->wake_armed) return;
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.u64 = WAKE_TAG};
  if (epoll_ctl(kq->epfd, EPOLL_CTL_MOD, wakefd, &ev) == 0) kq->wake_armed = 1;
}

static struct user_event *find_user(struct kq *kq, uintptr_t ident) {
  for (size_t i = 0; i < kq->nusers; i++) {
    if (kq->users[i].ident == ident) return &kq->users[i];
  }
  return NULL;
}

static int change_user(struct kq *kq, const struct kevent *ch) {
  struct user_event *u = find_user(kq, ch->ident);
  if (ch->flags & EV_DELETE) {
    if (u == NULL) return ENOENT;
    *u = kq->users[--kq->nusers];
    forget_pending(kq, ch->ident, EVFILT_USER);
    return 0;
  }
  if (ch->flags & (EV_ONESHOT | EV_DISPATCH)) return EINVAL;
  if (u == NULL) {
    if (!(ch->flags & EV_ADD)) return ENOENT;
    if (kq->nusers == kq->cap_users &&
        grow((void **)&kq->users, &kq->cap_users, kq->nusers + 1, sizeof *kq->users) < 0) {
      return ENOMEM;
    }
    u = &kq->users[kq->nusers++];
    memset(u, 0, sizeof *u);
    u->ident = ch->ident;
    u->enabled = 1;
  }
  if (ch->flags & EV_ADD) {
    u->flags = ch->flags & ~ACTIONS;
    u->udata = ch->udata;
    retag_pending(kq, ch->ident, EVFILT_USER, ch->udata);
  }
  if (ch->flags & EV_DISABLE) u->enabled = 0;
  if (ch->flags & EV_ENABLE) u->enabled = 1;
  uint32_t ff = ch->fflags & NOTE_FFLAGSMASK;
  switch (ch->fflags & NOTE_FFCTRLMASK) {
    case NOTE_FFAND: u->fflags &= ff; break;
    case NOTE_FFOR: u->fflags |= ff; break;
    case NOTE_FFCOPY: u->fflags = ff; break;
    default: break; /* NOTE_FFNOP */
  }
  if (ch->fflags & NOTE_TRIGGER) u->triggered = 1;
  if (u->triggered && u->enabled) arm_wake(kq);
  return 0;
}

/* Reports the triggered user events; those that stay triggered (no EV_CLEAR) wake the next wait too. */
static void report_users(struct kq *kq, struct kevent *out, int *n, int max) {
  int again = 0;
  for (size_t i = 0; i < kq->nusers; i++) {
    struct user_event *u = &kq->users[i];
    if (!u->triggered || !u->enabled) continue;
    struct kevent ev = {.ident = u->ident, .filter = EVFILT_USER, .flags = u->flags, .fflags = u->fflags, .udata = u->udata};
    emit(kq, out, n, max, &ev);
    if (u->flags & EV_CLEAR) {
      u->triggered = 0;
      u->fflags = 0;
    } else {
      again = 1;
    }
  }
  if (again) arm_wake(kq);
}

/* ---- EVFILT_READ, EVFILT_WRITE ---------------------------------------------------------- */

/* Makes the socket's epoll registration match its filters. Returns 0 or an errno. */
static int sync_epoll(struct kq *kq, int fd, struct socket_state *s) {
  struct filter *r = &s->f[R], *w = &s->f[W];
  if (!r->on && !w->on) {
    if (s->in_epoll && epoll_ctl(kq->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != ENOENT && errno != EBADF) return errno;
    s->in_epoll = 0;
    return 0;
  }
  struct epoll_event ev = {.events = EPOLLET, .data.u64 = (uint64_t)fd};
  if (r->on && r->enabled) ev.events |= EPOLLIN | (s->rdhup_lost ? 0 : EPOLLRDHUP);
  if (w->on && w->enabled) ev.events |= EPOLLOUT;
  if (s->in_epoll) {
    /* EPOLL_CTL_MOD re-evaluates readiness: what is ready now is reported again. */
    if (epoll_ctl(kq->epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
    /* ENOENT: the descriptor was closed without EV_DELETE and its number
       reused; a kernel kqueue would have dropped the filters: add afresh. */
    if (errno != ENOENT) return errno;
  }
  if (epoll_ctl(kq->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return errno;
  s->in_epoll = 1;
  return 0;
}

static int change_socket(struct kq *kq, const struct kevent *ch) {
  if (ch->ident > INT_MAX || fcntl((int)ch->ident, F_GETFD) < 0) return EBADF;
  int fd = (int)ch->ident;
  int which = ch->filter == EVFILT_WRITE ? W : R;
  if ((size_t)fd >= kq->nsocks) {
    if (!(ch->flags & EV_ADD)) return ENOENT;
    if (grow((void **)&kq->socks, &kq->nsocks, (size_t)fd + 1, sizeof *kq->socks) < 0) return ENOMEM;
  }
  struct socket_state *s = &kq->socks[fd];
  struct filter *f = &s->f[which];

  if (ch->flags & EV_DELETE) {
    if (!f->on) return ENOENT;
    f->on = 0;
    if (which == W) s->rdhup_lost = 0;
    forget_pending(kq, ch->ident, ch->filter);
    return sync_epoll(kq, fd, s);
  }
  if (!(ch->flags & EV_ADD)) {
    if (!f->on) return ENOENT;
    if (!(ch->flags & (EV_ENABLE | EV_DISABLE))) return 0;
    f->enabled = (ch->flags & EV_ENABLE) != 0;
    return sync_epoll(kq, fd, s); /* EV_ENABLE reports what is ready now */
  }
  if (!(ch->flags & EV_CLEAR) || (ch->flags & (EV_ONESHOT | EV_DISPATCH))) return EINVAL; /* not modelled */

  struct filter before = *f;
  uint8_t lost_before = s->rdhup_lost;
  if (!f->on) f->enabled = 1;
  if (ch->flags & EV_DISABLE) f->enabled = 0;
  if (ch->flags & EV_ENABLE) f->enabled = 1;
  f->flags = ch->flags & ~ACTIONS;
  f->udata = ch->udata;
  retag_pending(kq, ch->ident, ch->filter, ch->udata);
  if (before.on) {
    if (kq->libkqueue) return 0; /* libkqueue mode (b): no re-evaluation */
  } else {
    f->on = 1;
    if (which == R) s->rdhup_lost = 0;
    else if (kq->libkqueue && s->f[R].on) s->rdhup_lost = 1; /* libkqueue mode (a) */
    if (which == W) {
      socklen_t len = sizeof s->sndbuf;
      if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s->sndbuf, &len) < 0) s->sndbuf = 0;
    }
  }
  int err = sync_epoll(kq, fd, s);
  if (err) {
    *f = before;
    s->rdhup_lost = lost_before;
  }
  return err;
}

static int change(struct kq *kq, const struct kevent *ch) {
  if (ch->filter == EVFILT_USER) return change_user(kq, ch);
  if (ch->filter == EVFILT_READ || ch->filter == EVFILT_WRITE) return change_socket(kq, ch);
  return EINVAL;
}

/* ---- waiting ------------------------------------------------------------------------------ */

/* Turns what epoll_wait returned into kevents. */
static int translate(struct kq *kq, const struct epoll_event *evs, int nev, struct kevent *out, int max) {
  int n = 0;
  for (int i = 0; i < nev; i++) {
    if (evs[i].data.u64 == WAKE_TAG) {
      kq->wake_armed = 0; /* EPOLLONESHOT: disarmed by being reported */
      report_users(kq, out, &n, max);
      continue;
    }
    int fd = (int)evs[i].data.u64;
    if ((size_t)fd >= kq->nsocks || !kq->socks[fd].in_epoll) continue;
    struct socket_state *s = &kq->socks[fd];
    uint32_t m = evs[i].events;
    uint32_t error = (m & EPOLLERR) ? ECONNRESET : 0;
    struct filter *r = &s->f[R], *w = &s->f[W];
    if (r->on && r->enabled && (m & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
      int avail = 0;
      int listening = ioctl(fd, FIONREAD, &avail) < 0; /* Linux refuses SIOCINQ on a listener */
      int eof = (m & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) || (!listening && avail == 0 && (m & EPOLLIN));
      struct kevent ev = {.ident = (uintptr_t)fd, .filter = EVFILT_READ, .flags = r->flags | (eof ? EV_EOF : 0),
                          .fflags = eof ? error : 0, .data = listening ? 1 : avail, .udata = r->udata};
      emit(kq, out, &n, max, &ev);
    }
    if (w->on && w->enabled && (m & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
      int queued = 0;
      int eof = (m & (EPOLLHUP | EPOLLERR)) != 0;
      if (ioctl(fd, SIOCOUTQ, &queued) < 0) queued = 0;
      struct kevent ev = {.ident = (uintptr_t)fd, .filter = EVFILT_WRITE, .flags = w->flags | (eof ? EV_EOF : 0),
                          .fflags = eof ? error : 0, .data = s->sndbuf > queued ? s->sndbuf - queued : 0, .udata = w->udata};
      emit(kq, out, &n, max, &ev);
    }
  }
  return n;
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int wait_events(struct kq *kq, struct kevent *out, int max, const struct timespec *timeout) {
  struct epoll_event evs[MAX_EPOLL_EVENTS];
  int64_t deadline = timeout ? now_ns() + (int64_t)timeout->tv_sec * 1000000000 + timeout->tv_nsec : 0;
  for (;;) {
    pthread_mutex_lock(&lock);
    int n = take_pending(kq, out, max);
    pthread_mutex_unlock(&lock);
    if (n > 0) return n;
    int ms = -1;
    if (timeout) {
      int64_t left = deadline - now_ns();
      /* Rounded up: a wait never ends before its timeout. */
      ms = left <= 0 ? 0 : left / 1000000 >= INT_MAX ? INT_MAX : (int)((left + 999999) / 1000000);
    }
    int got = epoll_wait(kq->epfd, evs, max < MAX_EPOLL_EVENTS ? max : MAX_EPOLL_EVENTS, ms);
    if (got < 0) return -1; /* EINTR as on BSD */
    if (got == 0) return 0;
    pthread_mutex_lock(&lock);
    n = translate(kq, evs, got, out, max);
    pthread_mutex_unlock(&lock);
    if (n > 0 || ms == 0) return n;
    /* Only events nobody asked for (a wake-up already taken): wait out the rest. */
  }
}

int kevent(int kqfd, const struct kevent *changes, int nchanges, struct kevent *events, int nevents,
           const struct timespec *timeout) {
  if (nchanges < 0 || nevents < 0 || (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000))) {
    errno = EINVAL;
    return -1;
  }
  pthread_mutex_lock(&lock);
  struct kq *kq = kqfd >= 0 && (size_t)kqfd < nkqs ? kqs[kqfd] : NULL;
  if (kq == NULL) {
    pthread_mutex_unlock(&lock);
    errno = EBADF;
    return -1;
  }
  int n = 0;
  for (int i = 0; i < nchanges; i++) {
    struct kevent ch = changes[i]; /* a copy: the two lists may be one array */
    int err = change(kq, &ch);
    if (err == 0 && !(ch.flags & EV_RECEIPT)) continue;
    if (n < nevents) {
      ch.flags = EV_ERROR;
      ch.data = err;
      events[n++] = ch;
    } else if (err) {
      pthread_mutex_unlock(&lock);
      errno = err;
      return -1;
    }
  }
  pthread_mutex_unlock(&lock);
  if (n > 0 || nevents == 0) return n;
  return wait_events(kq, events, nevents, timeout);
}
