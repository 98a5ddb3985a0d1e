import { ErrorCode } from '../generated/contract.js';
import { errorTable } from './error-table.js';

/**
 * Windows errors -> WIT error-code: the one place where Winsock (WSA*) and
 * NT (NTSTATUS) failures are translated for the guest, as
 * host/ffi/errno-linux.ts is for Linux. Anything not listed is `other` (and
 * logged by the caller with its name).
 *
 * Wine reports a few conditions with other codes than Windows (closing a
 * socket with a poll pending completes it with AFD_POLL_LOCAL_CLOSE on
 * both, but a cancelled receive may be STATUS_HANDLES_CLOSED rather than
 * STATUS_CANCELLED): the backend decides on classes (success, cancelled,
 * failed), never on one exact failure code.
 */
export const WSA = errorTable(
  [
    ['WSAEWOULDBLOCK', 10035, ErrorCode.WouldBlock],
    ['WSAEINPROGRESS', 10036, ErrorCode.WouldBlock],
    ['WSAEALREADY', 10037, ErrorCode.WouldBlock], // a non-blocking connect is still under way
    ['WSAEINTR', 10004, ErrorCode.WouldBlock], // retry after the next event
    ['WSAEBADF', 10009, ErrorCode.BadHandle],
    ['WSAENOTSOCK', 10038, ErrorCode.BadHandle],
    ['ERROR_INVALID_HANDLE', 6, ErrorCode.BadHandle],
    ['WSAEACCES', 10013, ErrorCode.Denied], // bind: see the backend, an exclusive owner is address-in-use
    ['WSAEADDRINUSE', 10048, ErrorCode.AddressInUse],
    ['WSAEADDRNOTAVAIL', 10049, ErrorCode.Invalid], // not an address of this host
    ['WSAECONNREFUSED', 10061, ErrorCode.Refused],
    ['WSAEHOSTUNREACH', 10065, ErrorCode.Refused],
    ['WSAENETUNREACH', 10051, ErrorCode.Refused],
    ['WSAECONNRESET', 10054, ErrorCode.Reset],
    ['WSAECONNABORTED', 10053, ErrorCode.Reset], // accept: the peer gave up first; or aborted locally
    ['WSAENETRESET', 10052, ErrorCode.Reset],
    ['WSAESHUTDOWN', 10058, ErrorCode.Closed], // the stream is shut down in this direction
    ['WSAENOTCONN', 10057, ErrorCode.Closed],
    ['WSAETIMEDOUT', 10060, ErrorCode.TimedOut],
    ['WSAEMFILE', 10024, ErrorCode.Limit],
    ['WSAENOBUFS', 10055, ErrorCode.Limit],
    ['ERROR_NOT_ENOUGH_MEMORY', 8, ErrorCode.Limit],
    ['WSAEINVAL', 10022, ErrorCode.Invalid],
    ['WSAEAFNOSUPPORT', 10047, ErrorCode.Invalid],
    ['WSAEFAULT', 10014, ErrorCode.Invalid],
    ['WSAENETDOWN', 10050, null],
    ['WSAEISCONN', 10056, null],
    ['WSANOTINITIALISED', 10093, null],
  ],
  (v) => `Winsock error ${v}`,
);

/** NTSTATUS values the backend can meet (AFD poll submission and completion). */
export const NTSTATUS = errorTable(
  [
    ['STATUS_INVALID_HANDLE', 0xc0000008, ErrorCode.BadHandle], // the socket was closed under the poll
    ['STATUS_INVALID_PARAMETER', 0xc000000d, ErrorCode.Invalid],
    ['STATUS_NO_MEMORY', 0xc0000017, ErrorCode.Limit],
    ['STATUS_INSUFFICIENT_RESOURCES', 0xc000009a, ErrorCode.Limit],
    ['STATUS_ACCESS_DENIED', 0xc0000022, ErrorCode.Denied],
    ['STATUS_CONNECTION_RESET', 0xc000020d, ErrorCode.Reset],
    ['STATUS_CONNECTION_REFUSED', 0xc0000236, ErrorCode.Refused],
    ['STATUS_CONNECTION_ABORTED', 0xc0000241, ErrorCode.Reset],
    ['STATUS_CANCELLED', 0xc0000120, null],
    ['STATUS_NOT_FOUND', 0xc0000225, null],
  ],
  (v) => `NTSTATUS 0x${v.toString(16).padStart(8, '0')}`,
);

export const wsaToErrorCode = WSA.code;
export const wsaName = WSA.name;
export const ntStatusToErrorCode = (status: number) => NTSTATUS.code(status >>> 0);
export const ntStatusName = (status: number) => NTSTATUS.name(status >>> 0);

/** NT_SUCCESS(): success and informational codes (severity 0 or 1). */
export function ntSuccess(status: number): boolean {
  return status >>> 0 < 0x80000000;
}
