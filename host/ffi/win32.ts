/**
 * koffi declarations of the Win32, Winsock and NT calls the IOCP backend
 * uses, their constants, and the struct layouts it writes by hand (asserted
 * once at load). Nothing above host/ffi/ declares C functions. Loads only on
 * Windows: host/backends/index.ts imports the IOCP backend lazily.
 *
 * Conventions (win64): HANDLE and SOCKET are declared `intptr_t`, so they
 * are plain JS numbers (INVALID_SOCKET and INVALID_HANDLE_VALUE read as -1)
 * and fit the handle table's float64 records. Memory the kernel keeps using
 * after a call returns (IO_STATUS_BLOCK, AFD_POLL_INFO of a pending poll) is
 * passed as an absolute address (`uintptr_t`) into heap memory the caller
 * owns; memory used only during a call (sockaddr, out-parameters, the
 * OVERLAPPED_ENTRY array) is a Node Buffer. NTSTATUS is `uint32_t`, so
 * failures compare as 0xC0000000-style unsigned values.
 */
import koffi, { type TypeObject } from 'koffi';

const kernel32 = koffi.load('kernel32.dll');
const ws2 = koffi.load('ws2_32.dll');
const ntdll = koffi.load('ntdll.dll');

// ---- kernel32: completion ports, handles, heap, environment ---------------------------

export const CreateIoCompletionPort = kernel32.func(
  'intptr_t CreateIoCompletionPort(intptr_t file, intptr_t port, uintptr_t key, uint32_t threads)',
);
export const GetQueuedCompletionStatusEx = kernel32.func(
  'int GetQueuedCompletionStatusEx(intptr_t port, void *entries, uint32_t count, void *removed, uint32_t ms, int alertable)',
);
export const PostQueuedCompletionStatus = kernel32.func(
  'int PostQueuedCompletionStatus(intptr_t port, uint32_t bytes, uintptr_t key, uintptr_t overlapped)',
);
export const SetFileCompletionNotificationModes = kernel32.func('int SetFileCompletionNotificationModes(intptr_t file, uint8_t flags)');
export const CloseHandle = kernel32.func('int CloseHandle(intptr_t h)');
export const GetLastError = kernel32.func('uint32_t GetLastError()');
export const GetCurrentProcessId = kernel32.func('uint32_t GetCurrentProcessId()');
export const GetProcessHeap = kernel32.func('intptr_t GetProcessHeap()');
export const HeapAlloc = kernel32.func('void *HeapAlloc(intptr_t heap, uint32_t flags, uintptr_t bytes)');
export const HeapFree = kernel32.func('int HeapFree(intptr_t heap, uint32_t flags, void *mem)');
export const SetEnvironmentVariableW = kernel32.func('int SetEnvironmentVariableW(str16 name, str16 value)');
export const GetEnvironmentVariableW = kernel32.func('uint32_t GetEnvironmentVariableW(str16 name, void *buf, uint32_t chars)');

export const INFINITE = 0xffffffff;
export const WAIT_TIMEOUT = 258;
export const HEAP_ZERO_MEMORY = 0x8;
export const FILE_SKIP_SET_EVENT_ON_HANDLE = 0x2;

// ---- ntdll: the AFD device (what mio and wepoll poll sockets through) ------------------

export const NtCreateFile = ntdll.func(
  'uint32_t NtCreateFile(void *handle, uint32_t access, void *attrs, void *iosb, void *allocation, uint32_t fileAttrs, ' +
    'uint32_t share, uint32_t disposition, uint32_t options, void *ea, uint32_t eaLength)',
);
export const NtDeviceIoControlFile = ntdll.func(
  'uint32_t NtDeviceIoControlFile(intptr_t file, intptr_t event, uintptr_t apc, uintptr_t apcContext, uintptr_t iosb, ' +
    'uint32_t code, uintptr_t input, uint32_t inputLength, uintptr_t output, uint32_t outputLength)',
);
export const NtCancelIoFileEx = ntdll.func('uint32_t NtCancelIoFileEx(intptr_t file, uintptr_t request, void *iosb)');
export const RtlNtStatusToDosError = ntdll.func('uint32_t RtlNtStatusToDosError(uint32_t status)');

export const SYNCHRONIZE = 0x00100000;
export const FILE_SHARE_READ = 0x1;
export const FILE_SHARE_WRITE = 0x2;
export const FILE_OPEN = 1;

export const STATUS_SUCCESS = 0;
export const STATUS_PENDING = 0x103;

/** _AFD_CONTROL_CODE(AFD_POLL = 9, METHOD_BUFFERED) with FILE_DEVICE_NETWORK (0x12). */
export const IOCTL_AFD_POLL = 0x00012024;
export const AFD_POLL_RECEIVE = 0x0001;
export const AFD_POLL_RECEIVE_EXPEDITED = 0x0002;
export const AFD_POLL_SEND = 0x0004;
export const AFD_POLL_DISCONNECT = 0x0008;
export const AFD_POLL_ABORT = 0x0010;
export const AFD_POLL_LOCAL_CLOSE = 0x0020;
export const AFD_POLL_ACCEPT = 0x0080;
export const AFD_POLL_CONNECT_FAIL = 0x0100;

// ---- ws2_32 -------------------------------------------------------------------------------

export const WSAStartup = ws2.func('int WSAStartup(uint16_t version, void *data)');
export const WSAGetLastError = ws2.func('int WSAGetLastError()');
export const WSASocketW = ws2.func('intptr_t WSASocketW(int af, int type, int protocol, void *info, uint32_t group, uint32_t flags)');
export const WSADuplicateSocketW = ws2.func('int WSADuplicateSocketW(intptr_t s, uint32_t pid, void *info)');
export const WSAIoctl = ws2.func(
  'int WSAIoctl(intptr_t s, uint32_t code, void *input, uint32_t inputLength, void *output, uint32_t outputLength, ' +
    'void *returned, void *overlapped, void *completion)',
);
export const ioctlsocket = ws2.func('int ioctlsocket(intptr_t s, int32_t cmd, void *arg)');
export const bind = ws2.func('int bind(intptr_t s, void *addr, int len)');
export const listen = ws2.func('int listen(intptr_t s, int backlog)');
export const accept = ws2.func('intptr_t accept(intptr_t s, void *addr, void *len)');
export const connect = ws2.func('int connect(intptr_t s, void *addr, int len)');
export const recv = ws2.func('int recv(intptr_t s, uintptr_t buf, int len, int flags)');
export const send = ws2.func('int send(intptr_t s, uintptr_t buf, int len, int flags)');
export const shutdown = ws2.func('int shutdown(intptr_t s, int how)');
export const closesocket = ws2.func('int closesocket(intptr_t s)');
export const setsockopt = ws2.func('int setsockopt(intptr_t s, int level, int name, void *value, int len)');
export const getsockopt = ws2.func('int getsockopt(intptr_t s, int level, int name, void *value, void *len)');
export const getsockname = ws2.func('int getsockname(intptr_t s, void *addr, void *len)');
export const getpeername = ws2.func('int getpeername(intptr_t s, void *addr, void *len)');

export const INVALID_SOCKET = -1;
export const SOCKET_ERROR = -1;
export const AF_INET = 2;
export const AF_INET6 = 23;
export const SOCK_STREAM = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_IPV6 = 41;
export const FROM_PROTOCOL_INFO = -1;
export const WSA_FLAG_OVERLAPPED = 0x01;
export const WSA_FLAG_NO_HANDLE_INHERIT = 0x80;
/** _IOW('f', 126, u_long), as a signed 32-bit value. */
export const FIONBIO = 0x8004667e | 0;
export const SIO_BASE_HANDLE = 0x48000022;
export const SOL_SOCKET = 0xffff;
export const SO_SNDBUF = 0x1001;
/** The socket's pending error (a failed non-blocking connect's, among others), read once. */
export const SO_ERROR = 0x1007;
/** ~SO_REUSEADDR: no other socket may bind this address, whatever its options. */
export const SO_EXCLUSIVEADDRUSE = ~0x0004;
export const TCP_NODELAY = 1;
export const IPV6_V6ONLY = 27;

// ---- layouts (win64) ------------------------------------------------------------------------
// The backend reads and writes these through typed-array views at the
// offsets below; the koffi declarations exist to check those offsets.

export const WSADATA_SIZE = 408;
/** WSAPROTOCOL_INFOW, rounded up (628 bytes on win64). */
export const PROTOCOL_INFO_SIZE = 640;
export const SOCKADDR_MAX = 28; // sizeof(SOCKADDR_IN6)

const OVERLAPPED_ENTRY = koffi.struct('wasmux_OVERLAPPED_ENTRY', {
  lpCompletionKey: 'uintptr_t',
  lpOverlapped: 'uintptr_t',
  Internal: 'uintptr_t',
  dwNumberOfBytesTransferred: 'uint32_t',
});
const IO_STATUS_BLOCK = koffi.struct('wasmux_IO_STATUS_BLOCK', { Status: 'intptr_t', Information: 'uintptr_t' });
const AFD_POLL_HANDLE_INFO = koffi.struct('wasmux_AFD_POLL_HANDLE_INFO', { Handle: 'intptr_t', Events: 'uint32_t', Status: 'int32_t' });
const AFD_POLL_INFO = koffi.struct('wasmux_AFD_POLL_INFO', {
  Timeout: 'int64_t',
  NumberOfHandles: 'uint32_t',
  Exclusive: 'uint32_t',
  Handles: koffi.array(AFD_POLL_HANDLE_INFO, 1),
});
const UNICODE_STRING = koffi.struct('wasmux_UNICODE_STRING', { Length: 'uint16_t', MaximumLength: 'uint16_t', Buffer: 'uintptr_t' });
const OBJECT_ATTRIBUTES = koffi.struct('wasmux_OBJECT_ATTRIBUTES', {
  Length: 'uint32_t',
  RootDirectory: 'intptr_t',
  ObjectName: 'uintptr_t',
  Attributes: 'uint32_t',
  SecurityDescriptor: 'uintptr_t',
  SecurityQualityOfService: 'uintptr_t',
});

/** OVERLAPPED_ENTRY: key @0, overlapped @8, internal @16, bytes (u32) @24. */
export const OVERLAPPED_ENTRY_SIZE = 32;
export const IO_STATUS_BLOCK_SIZE = 16;
/** AFD_POLL_INFO: timeout i64 @0, count u32 @8, exclusive u32 @12, handle @16, events u32 @24, status i32 @28. */
export const AFD_POLL_INFO_SIZE = 32;
export const UNICODE_STRING_SIZE = 16;
export const OBJECT_ATTRIBUTES_SIZE = 48;

function expectLayout(name: string, type: TypeObject, size: number, offsets: Record<string, number> = {}): void {
  if (koffi.sizeof(type) !== size) throw new Error(`wasmux: ${name} is ${koffi.sizeof(type)} bytes, expected ${size}`);
  const members = koffi.type(type).members ?? {};
  for (const [field, at] of Object.entries(offsets)) {
    const got = members[field]?.offset;
    if (got !== at) throw new Error(`wasmux: ${name}.${field} at ${got}, expected ${at}`);
  }
}

expectLayout('OVERLAPPED_ENTRY', OVERLAPPED_ENTRY, OVERLAPPED_ENTRY_SIZE, {
  lpOverlapped: 8,
  Internal: 16,
  dwNumberOfBytesTransferred: 24,
});
expectLayout('IO_STATUS_BLOCK', IO_STATUS_BLOCK, IO_STATUS_BLOCK_SIZE, { Information: 8 });
expectLayout('AFD_POLL_INFO', AFD_POLL_INFO, AFD_POLL_INFO_SIZE, { NumberOfHandles: 8, Exclusive: 12, Handles: 16 });
expectLayout('AFD_POLL_HANDLE_INFO', AFD_POLL_HANDLE_INFO, 16, { Events: 8, Status: 12 });
expectLayout('UNICODE_STRING', UNICODE_STRING, UNICODE_STRING_SIZE, { Buffer: 8 });
expectLayout('OBJECT_ATTRIBUTES', OBJECT_ATTRIBUTES, OBJECT_ATTRIBUTES_SIZE, { ObjectName: 16, Attributes: 24 });
