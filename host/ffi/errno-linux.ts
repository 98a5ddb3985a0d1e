import { ErrorCode } from '../generated/contract.js';
import { errorTable } from './error-table.js';

/**
 * Linux errno -> WIT error-code: the one place where the OS's failures are
 * translated for the guest. Anything not listed is `other` (and logged by
 * the caller with its errno name).
 */
export const ERRNO = errorTable(
  [
    ['EAGAIN', 11, ErrorCode.WouldBlock], // EWOULDBLOCK is the same number
    ['EINPROGRESS', 115, ErrorCode.WouldBlock], // non-blocking connect under way
    ['EINTR', 4, ErrorCode.WouldBlock], // retry after the next event
    ['EBADF', 9, ErrorCode.BadHandle],
    ['ENOTSOCK', 88, ErrorCode.BadHandle],
    ['EPERM', 1, ErrorCode.Denied],
    ['EACCES', 13, ErrorCode.Denied], // privileged port
    ['EADDRINUSE', 98, ErrorCode.AddressInUse],
    ['EADDRNOTAVAIL', 99, ErrorCode.Invalid], // not an address of this host
    ['ECONNREFUSED', 111, ErrorCode.Refused],
    ['ECONNRESET', 104, ErrorCode.Reset],
    ['EPIPE', 32, ErrorCode.Closed], // the stream is shut down for sending
    ['ENOTCONN', 107, ErrorCode.Closed],
    ['ETIMEDOUT', 110, ErrorCode.TimedOut],
    ['EHOSTUNREACH', 113, ErrorCode.Refused],
    ['ENETUNREACH', 101, ErrorCode.Refused],
    ['ECONNABORTED', 103, ErrorCode.Reset], // accept: the peer gave up first
    ['EMFILE', 24, ErrorCode.Limit],
    ['ENFILE', 23, ErrorCode.Limit],
    ['ENOBUFS', 105, ErrorCode.Limit],
    ['ENOMEM', 12, ErrorCode.Limit],
    ['EINVAL', 22, ErrorCode.Invalid],
    ['EAFNOSUPPORT', 97, ErrorCode.Invalid],
    ['EFAULT', 14, ErrorCode.Invalid],
    ['EEXIST', 17, ErrorCode.Closed], // epoll: already registered
    ['ENOENT', 2, ErrorCode.Closed], // epoll: not registered
  ],
  (v) => `errno ${v}`,
);

/** The errno's WIT error-code (anything not listed is `other`). */
export const errnoToErrorCode = ERRNO.code;
/** The errno's name (EAGAIN), for log lines. */
export const errnoName = ERRNO.name;
