/**
 * The process's open-file limit (RLIMIT_NOFILE, the soft one: Node raises
 * it to the hard one at start), so the host can say when its policies
 * promise more connections than the process may open.
 *
 * Linux, macOS and FreeBSD: getrlimit; struct rlimit is two 64-bit rlim_t.
 * Windows has no such per-process limit: null.
 */
import koffi from 'koffi';

// RLIMIT_NOFILE: 7 on Linux, 8 on macOS and FreeBSD.
const LIBC: Partial<Record<NodeJS.Platform, { path: string; resource: number }>> = {
  linux: { path: 'libc.so.6', resource: 7 },
  darwin: { path: 'libSystem.B.dylib', resource: 8 },
  freebsd: { path: 'libc.so.7', resource: 8 },
};

let cached: number | null | undefined;

/** The soft open-file limit, or null where there is none to read. */
export function openFileLimit(): number | null {
  if (cached !== undefined) return cached;
  const libc = LIBC[process.platform];
  if (!libc) return (cached = null);
  const getrlimit = koffi.load(libc.path).func('int getrlimit(int resource, void *rlim)');
  const rlim = new BigUint64Array(2);
  if (getrlimit(libc.resource, rlim) !== 0) return (cached = null);
  // RLIM_INFINITY is all ones: no limit to speak of.
  cached = rlim[0]! >= 2n ** 53n ? null : Number(rlim[0]!);
  return cached;
}
