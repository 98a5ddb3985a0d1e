import { ErrorCode } from '../wit/error-code.js';

/**
 * Linux errno -> WIT error-code: the one place where the OS's failures are
 * translated for the guest. Anything not listed is `other` (and logged by
 * the caller with its errno name).
 */
const TABLE: Record<number, ErrorCode> = {
  11: ErrorCode.WouldBlock, // EAGAIN / EWOULDBLOCK
  115: ErrorCode.WouldBlock, // EINPROGRESS (non-blocking connect under way)
  4: ErrorCode.WouldBlock, // EINTR: retry after the next event
  9: ErrorCode.BadHandle, // EBADF
  88: ErrorCode.BadHandle, // ENOTSOCK
  1: ErrorCode.Denied, // EPERM
  13: ErrorCode.Denied, // EACCES (privileged port)
  98: ErrorCode.AddressInUse, // EADDRINUSE
  99: ErrorCode.Invalid, // EADDRNOTAVAIL (not an address of this host)
  111: ErrorCode.Refused, // ECONNREFUSED
  104: ErrorCode.Reset, // ECONNRESET
  32: ErrorCode.Closed, // EPIPE: the stream is shut down for sending
  107: ErrorCode.Closed, // ENOTCONN
  110: ErrorCode.TimedOut, // ETIMEDOUT
  113: ErrorCode.Refused, // EHOSTUNREACH
  101: ErrorCode.Refused, // ENETUNREACH
  103: ErrorCode.Reset, // ECONNABORTED (accept: the peer gave up first)
  24: ErrorCode.Limit, // EMFILE
  23: ErrorCode.Limit, // ENFILE
  105: ErrorCode.Limit, // ENOBUFS
  12: ErrorCode.Limit, // ENOMEM
  22: ErrorCode.Invalid, // EINVAL
  97: ErrorCode.Invalid, // EAFNOSUPPORT
  14: ErrorCode.Invalid, // EFAULT
  17: ErrorCode.Closed, // EEXIST (epoll: already registered)
  2: ErrorCode.Closed, // ENOENT (epoll: not registered)
};

export function errnoToErrorCode(errno: number): ErrorCode {
  return TABLE[errno] ?? ErrorCode.Other;
}

const NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 4: 'EINTR', 9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES',
  14: 'EFAULT', 17: 'EEXIST', 22: 'EINVAL', 23: 'ENFILE', 24: 'EMFILE', 32: 'EPIPE',
  88: 'ENOTSOCK', 97: 'EAFNOSUPPORT', 98: 'EADDRINUSE', 99: 'EADDRNOTAVAIL', 101: 'ENETUNREACH',
  103: 'ECONNABORTED', 104: 'ECONNRESET', 105: 'ENOBUFS', 107: 'ENOTCONN', 110: 'ETIMEDOUT',
  111: 'ECONNREFUSED', 113: 'EHOSTUNREACH', 115: 'EINPROGRESS',
};

export function errnoName(errno: number): string {
  return NAMES[errno] ?? `errno ${errno}`;
}
