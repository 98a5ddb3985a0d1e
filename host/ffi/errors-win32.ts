import { ErrorCode } from '../wit/error-code.js';

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
const WSA: Record<number, ErrorCode> = {
  10035: ErrorCode.WouldBlock, // WSAEWOULDBLOCK
  10036: ErrorCode.WouldBlock, // WSAEINPROGRESS
  10037: ErrorCode.WouldBlock, // WSAEALREADY (a non-blocking connect is still under way)
  10004: ErrorCode.WouldBlock, // WSAEINTR: retry after the next event
  10009: ErrorCode.BadHandle, // WSAEBADF
  10038: ErrorCode.BadHandle, // WSAENOTSOCK
  6: ErrorCode.BadHandle, // ERROR_INVALID_HANDLE
  10013: ErrorCode.Denied, // WSAEACCES (bind: see the backend, an exclusive owner is address-in-use)
  10048: ErrorCode.AddressInUse, // WSAEADDRINUSE
  10049: ErrorCode.Invalid, // WSAEADDRNOTAVAIL (not an address of this host)
  10061: ErrorCode.Refused, // WSAECONNREFUSED
  10065: ErrorCode.Refused, // WSAEHOSTUNREACH
  10051: ErrorCode.Refused, // WSAENETUNREACH
  10054: ErrorCode.Reset, // WSAECONNRESET
  10053: ErrorCode.Reset, // WSAECONNABORTED (accept: the peer gave up first; or aborted locally)
  10052: ErrorCode.Reset, // WSAENETRESET
  10058: ErrorCode.Closed, // WSAESHUTDOWN: the stream is shut down in this direction
  10057: ErrorCode.Closed, // WSAENOTCONN
  10060: ErrorCode.TimedOut, // WSAETIMEDOUT
  10024: ErrorCode.Limit, // WSAEMFILE
  10055: ErrorCode.Limit, // WSAENOBUFS
  8: ErrorCode.Limit, // ERROR_NOT_ENOUGH_MEMORY
  10022: ErrorCode.Invalid, // WSAEINVAL
  10047: ErrorCode.Invalid, // WSAEAFNOSUPPORT
  10014: ErrorCode.Invalid, // WSAEFAULT
};

const WSA_NAMES: Record<number, string> = {
  6: 'ERROR_INVALID_HANDLE', 8: 'ERROR_NOT_ENOUGH_MEMORY', 10004: 'WSAEINTR', 10009: 'WSAEBADF',
  10013: 'WSAEACCES', 10014: 'WSAEFAULT', 10022: 'WSAEINVAL', 10024: 'WSAEMFILE', 10035: 'WSAEWOULDBLOCK',
  10036: 'WSAEINPROGRESS', 10037: 'WSAEALREADY', 10038: 'WSAENOTSOCK', 10047: 'WSAEAFNOSUPPORT',
  10048: 'WSAEADDRINUSE', 10049: 'WSAEADDRNOTAVAIL', 10050: 'WSAENETDOWN', 10051: 'WSAENETUNREACH',
  10052: 'WSAENETRESET', 10053: 'WSAECONNABORTED', 10054: 'WSAECONNRESET', 10055: 'WSAENOBUFS',
  10056: 'WSAEISCONN', 10057: 'WSAENOTCONN', 10058: 'WSAESHUTDOWN', 10060: 'WSAETIMEDOUT',
  10061: 'WSAECONNREFUSED', 10065: 'WSAEHOSTUNREACH', 10093: 'WSANOTINITIALISED',
};

/** NTSTATUS values the backend can meet (AFD poll submission and completion). */
const NT: Record<number, ErrorCode> = {
  0xc0000008: ErrorCode.BadHandle, // STATUS_INVALID_HANDLE (the socket was closed under the poll)
  0xc000000d: ErrorCode.Invalid, // STATUS_INVALID_PARAMETER
  0xc0000017: ErrorCode.Limit, // STATUS_NO_MEMORY
  0xc000009a: ErrorCode.Limit, // STATUS_INSUFFICIENT_RESOURCES
  0xc0000022: ErrorCode.Denied, // STATUS_ACCESS_DENIED
  0xc000020d: ErrorCode.Reset, // STATUS_CONNECTION_RESET
  0xc0000236: ErrorCode.Refused, // STATUS_CONNECTION_REFUSED
  0xc0000241: ErrorCode.Reset, // STATUS_CONNECTION_ABORTED
};

const NT_NAMES: Record<number, string> = {
  0xc0000008: 'STATUS_INVALID_HANDLE', 0xc000000d: 'STATUS_INVALID_PARAMETER', 0xc0000017: 'STATUS_NO_MEMORY',
  0xc0000022: 'STATUS_ACCESS_DENIED', 0xc000009a: 'STATUS_INSUFFICIENT_RESOURCES', 0xc0000120: 'STATUS_CANCELLED',
  0xc000020d: 'STATUS_CONNECTION_RESET', 0xc0000225: 'STATUS_NOT_FOUND', 0xc0000236: 'STATUS_CONNECTION_REFUSED',
  0xc0000241: 'STATUS_CONNECTION_ABORTED',
};

export function wsaToErrorCode(error: number): ErrorCode {
  return WSA[error] ?? ErrorCode.Other;
}

export function wsaName(error: number): string {
  return WSA_NAMES[error] ?? `Winsock error ${error}`;
}

export function ntStatusToErrorCode(status: number): ErrorCode {
  return NT[status >>> 0] ?? ErrorCode.Other;
}

export function ntStatusName(status: number): string {
  return NT_NAMES[status >>> 0] ?? `NTSTATUS 0x${(status >>> 0).toString(16).padStart(8, '0')}`;
}

/** NT_SUCCESS(): success and informational codes (severity 0 or 1). */
export function ntSuccess(status: number): boolean {
  return (status >>> 0) < 0x80000000;
}
