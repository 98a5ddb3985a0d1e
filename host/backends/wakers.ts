/**
 * Wakers for the selectors that watch a descriptor to be woken (epoll,
 * poll(2)): another thread writes to `target` (BackendModule.wake), the
 * selector sees `readFd` readable and drains it. A wake-up that lands
 * between two waits stays pending (the descriptor stays readable), so none
 * is lost. kqueue (EVFILT_USER) and IOCP (a posted packet) wake through
 * their own queue instead.
 */
import type { PosixFamily } from './socket-ops.js';

export interface Waker {
  /** The descriptor the selector watches, level-triggered. */
  readonly readFd: number;
  /** What BackendModule.wake writes to. */
  readonly target: number;
  /** Consumes every pending wake-up. */
  drain(): void;
  close(): void;
}

/** A pipe: any POSIX family. A full pipe already holds a pending wake-up. */
export class PipeWaker implements Waker {
  readonly readFd: number;
  readonly target: number;
  private readonly buf = Buffer.alloc(64);

  /** Throws if the pipe cannot be made (the backend cannot open). */
  constructor(private readonly family: PosixFamily) {
    const pair = Buffer.alloc(8);
    if (family.pipe(pair) < 0) throw new Error(`pipe failed: ${family.errnoName(family.errno())}`);
    this.readFd = pair.readInt32LE(0);
    this.target = pair.readInt32LE(4);
  }

  drain(): void {
    const { buf } = this;
    while (this.family.read(this.readFd, buf, buf.length) === buf.length);
  }

  close(): void {
    this.family.close(this.readFd);
    this.family.close(this.target);
  }

  static wake(family: PosixFamily, target: number): void {
    family.write(target, WAKE_BYTE, 1);
  }
}

const WAKE_BYTE = Buffer.from([1]);
