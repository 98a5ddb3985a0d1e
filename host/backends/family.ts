/**
 * This OS's POSIX socket family, chosen once: Linux's or the BSDs'. Each
 * family file loads its libc through koffi at import, which must not happen
 * on another OS, so only the one that applies is imported. Windows has no
 * POSIX family (win-sockets.ts).
 */
import type { PosixFamily } from './socket-ops.js';

export async function posixFamily(): Promise<PosixFamily> {
  if (process.platform === 'linux') return (await import('./linux-family.js')).LINUX;
  if (process.platform === 'darwin' || process.platform === 'freebsd') return (await import('./bsd-family.js')).BSD;
  throw new Error(`no POSIX socket family for ${process.platform}`);
}
