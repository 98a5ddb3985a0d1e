/**
 * Per-thread CPU clocks, so the watchdog can charge a guest for the CPU its
 * thread used rather than for wall-clock time (a starved thread on a busy
 * machine uses no CPU and must not be killed for it).
 *
 * Linux: pthread_getcpuclockid gives a clock id that any thread of the
 * process can read with clock_gettime. Windows: the thread opens a handle to
 * itself (OpenThread, query rights only) that any thread reads with
 * GetThreadTimes (kernel + user time; under wine from /proc, in 10 ms ticks).
 * Elsewhere `threadCpuClocks()` returns null and the watchdog falls back to
 * wall-clock time outside poll.wait.
 */
import koffi from 'koffi';

export interface ThreadCpuClocks {
  /** The calling thread's CPU clock id. */
  current(): number;
  /** CPU time used so far by the thread of `clockId`, in milliseconds; NaN if unreadable. */
  readMs(clockId: number): number;
  /** Gives back what `current()` took (a handle on Windows) once its thread has ended and is no longer read. */
  release(clockId: number): void;
}

let clocks: ThreadCpuClocks | null | undefined;

export function threadCpuClocks(): ThreadCpuClocks | null {
  if (clocks !== undefined) return clocks;
  if (process.platform === 'win32') return (clocks = windowsClocks());
  if (process.platform !== 'linux') return (clocks = null);
  const libc = koffi.load('libc.so.6');
  const pthreadSelf = libc.func('uintptr_t pthread_self()');
  const getClockId = libc.func('int pthread_getcpuclockid(uintptr_t thread, _Out_ int *clockid)');
  const clockGettime = libc.func('int clock_gettime(int clockid, void *ts)');
  // struct timespec { int64 tv_sec; int64 tv_nsec; }: both fit in their low 32 bits here.
  const ts = new Int32Array(4);
  const id = [0];
  clocks = {
    current() {
      if (getClockId(pthreadSelf(), id) !== 0) throw new Error('pthread_getcpuclockid failed');
      return id[0]!;
    },
    readMs(clockId: number) {
      if (clockGettime(clockId, ts) !== 0) return NaN;
      return ts[0]! * 1000 + ts[2]! / 1e6;
    },
    release() {},
  };
  return clocks;
}

function windowsClocks(): ThreadCpuClocks {
  const kernel32 = koffi.load('kernel32.dll');
  const THREAD_QUERY_LIMITED_INFORMATION = 0x0800;
  const getCurrentThreadId = kernel32.func('uint32_t GetCurrentThreadId()');
  const openThread = kernel32.func('intptr_t OpenThread(uint32_t access, int inherit, uint32_t id)');
  const getThreadTimes = kernel32.func('int GetThreadTimes(intptr_t thread, void *created, void *exited, void *kernel, void *user)');
  const closeHandle = kernel32.func('int CloseHandle(intptr_t h)');
  // FILETIMEs (100 ns units): created, exited, kernel, user.
  const [created, exited, kernel, user] = [0, 1, 2, 3].map(() => new BigUint64Array(1)) as [
    BigUint64Array,
    BigUint64Array,
    BigUint64Array,
    BigUint64Array,
  ];
  return {
    current() {
      const h = openThread(THREAD_QUERY_LIMITED_INFORMATION, 0, getCurrentThreadId()) as number;
      if (!h) throw new Error('OpenThread failed');
      return h;
    },
    readMs(handle: number) {
      if (getThreadTimes(handle, created, exited, kernel, user) === 0) return NaN;
      return Number(kernel[0]! + user[0]!) / 1e4;
    },
    release(handle: number) {
      closeHandle(handle);
    },
  };
}
