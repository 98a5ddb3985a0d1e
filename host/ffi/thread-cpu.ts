/**
 * Per-thread CPU clocks, so the watchdog can charge a guest for the CPU its
 * thread used rather than for wall-clock time (a starved thread on a busy
 * machine uses no CPU and must not be killed for it).
 *
 * Linux: pthread_getcpuclockid gives a clock id that any thread of the
 * process can read with clock_gettime. Elsewhere `threadCpuClocks()` returns
 * null and the watchdog falls back to wall-clock time outside poll.wait.
 */
import koffi from 'koffi';

export interface ThreadCpuClocks {
  /** The calling thread's CPU clock id. */
  current(): number;
  /** CPU time used so far by the thread of `clockId`, in milliseconds; NaN if unreadable. */
  readMs(clockId: number): number;
}

let clocks: ThreadCpuClocks | null | undefined;

export function threadCpuClocks(): ThreadCpuClocks | null {
  if (clocks !== undefined) return clocks;
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
  };
  return clocks;
}
