import { ErrorCode } from '../generated/contract.js';
import { errorTable } from './error-table.js';

/**
 * BSD errno -> WIT error-code (macOS and FreeBSD: both keep 4.4BSD's
 * numbering for every errno listed here; checked against xnu
 * bsd/sys/errno.h and FreeBSD sys/sys/errno.h). The Linux table is
 * errno-linux.ts: the same classes, other numbers (EAGAIN is 35 here, 11
 * there). Anything not listed is `other` (and logged by the caller with its
 * errno name).
 */
export const ERRNO = errorTable(
  [
    ['EAGAIN', 35, ErrorCode.WouldBlock], // EWOULDBLOCK is the same number
    ['EINPROGRESS', 36, ErrorCode.WouldBlock], // non-blocking connect under way
    ['EINTR', 4, ErrorCode.WouldBlock], // retry after the next event
    ['EBADF', 9, ErrorCode.BadHandle],
    ['ENOTSOCK', 38, ErrorCode.BadHandle],
    ['EPERM', 1, ErrorCode.Denied],
    ['EACCES', 13, ErrorCode.Denied], // privileged port
    ['EADDRINUSE', 48, ErrorCode.AddressInUse],
    ['EADDRNOTAVAIL', 49, ErrorCode.Invalid], // not an address of this host
    ['ECONNREFUSED', 61, ErrorCode.Refused],
    ['ECONNRESET', 54, ErrorCode.Reset],
    ['EPIPE', 32, ErrorCode.Closed], // the stream is shut down for sending
    ['ENOTCONN', 57, ErrorCode.Closed],
    ['ETIMEDOUT', 60, ErrorCode.TimedOut],
    ['EHOSTUNREACH', 65, ErrorCode.Refused],
    ['ENETUNREACH', 51, ErrorCode.Refused],
    ['ECONNABORTED', 53, ErrorCode.Reset], // accept: the peer gave up first
    ['EMFILE', 24, ErrorCode.Limit],
    ['ENFILE', 23, ErrorCode.Limit],
    ['ENOBUFS', 55, ErrorCode.Limit],
    ['ENOMEM', 12, ErrorCode.Limit],
    ['EINVAL', 22, ErrorCode.Invalid],
    ['EAFNOSUPPORT', 47, ErrorCode.Invalid],
    ['EFAULT', 14, ErrorCode.Invalid],
    ['EEXIST', 17, ErrorCode.Closed], // kevent: already registered
    ['ENOENT', 2, ErrorCode.Closed], // kevent: not registered
  ],
  (v) => `errno ${v}`,
);

/** The errno's WIT error-code (anything not listed is `other`). */
export const errnoToErrorCode = ERRNO.code;
/** The errno's name (EAGAIN), for log lines. */
export const errnoName = ERRNO.name;
