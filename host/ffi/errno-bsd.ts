import { ErrorCode } from '../wit/error-code.js';

/**
 * BSD errno -> WIT error-code (macOS and FreeBSD: both keep 4.4BSD's
 * numbering for every errno listed here; checked against xnu
 * bsd/sys/errno.h and FreeBSD sys/sys/errno.h). The Linux table is
 * errno-linux.ts: the same classes, other numbers (EAGAIN is 35 here, 11
 * there). Anything not listed is `other` (and logged by the caller with its
 * errno name).
 */
const TABLE: Record<number, ErrorCode> = {
  35: ErrorCode.WouldBlock, // EAGAIN / EWOULDBLOCK
  36: ErrorCode.WouldBlock, // EINPROGRESS (non-blocking connect under way)
  4: ErrorCode.WouldBlock, // EINTR: retry after the next event
  9: ErrorCode.BadHandle, // EBADF
  38: ErrorCode.BadHandle, // ENOTSOCK
  1: ErrorCode.Denied, // EPERM
  13: ErrorCode.Denied, // EACCES (privileged port)
  48: ErrorCode.AddressInUse, // EADDRINUSE
  49: ErrorCode.Invalid, // EADDRNOTAVAIL (not an address of this host)
  61: ErrorCode.Refused, // ECONNREFUSED
  54: ErrorCode.Reset, // ECONNRESET
  32: ErrorCode.Closed, // EPIPE: the stream is shut down for sending
  57: ErrorCode.Closed, // ENOTCONN
  60: ErrorCode.TimedOut, // ETIMEDOUT
  65: ErrorCode.Refused, // EHOSTUNREACH
  51: ErrorCode.Refused, // ENETUNREACH
  53: ErrorCode.Reset, // ECONNABORTED (accept: the peer gave up first)
  24: ErrorCode.Limit, // EMFILE
  23: ErrorCode.Limit, // ENFILE
  55: ErrorCode.Limit, // ENOBUFS
  12: ErrorCode.Limit, // ENOMEM
  22: ErrorCode.Invalid, // EINVAL
  47: ErrorCode.Invalid, // EAFNOSUPPORT
  14: ErrorCode.Invalid, // EFAULT
  17: ErrorCode.Closed, // EEXIST (kevent: already registered)
  2: ErrorCode.Closed, // ENOENT (kevent: not registered)
};

export function errnoToErrorCode(errno: number): ErrorCode {
  return TABLE[errno] ?? ErrorCode.Other;
}

const NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 4: 'EINTR', 9: 'EBADF', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  17: 'EEXIST', 22: 'EINVAL', 23: 'ENFILE', 24: 'EMFILE', 32: 'EPIPE', 35: 'EAGAIN',
  36: 'EINPROGRESS', 38: 'ENOTSOCK', 47: 'EAFNOSUPPORT', 48: 'EADDRINUSE', 49: 'EADDRNOTAVAIL',
  51: 'ENETUNREACH', 53: 'ECONNABORTED', 54: 'ECONNRESET', 55: 'ENOBUFS', 57: 'ENOTCONN',
  60: 'ETIMEDOUT', 61: 'ECONNREFUSED', 65: 'EHOSTUNREACH',
};

export function errnoName(errno: number): string {
  return NAMES[errno] ?? `errno ${errno}`;
}
