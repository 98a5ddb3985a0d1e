/**
 * The two ways a host function leaves the guest other than returning.
 *
 * GuestTrap: the guest broke the canonical ABI (a pointer outside its
 * memory, a misaligned return area, an out-of-range enum). Like a wasm trap,
 * it ends the instance; the error-code path is for what the OS or the
 * network did, traps are for what the guest did wrong.
 *
 * StopSignal: the host asked the instance to stop while it waited; thrown
 * out of `poll.wait` to unwind the guest's stack. Not an error.
 */
export class GuestTrap extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestTrap';
  }
}

export class StopSignal extends Error {
  constructor() {
    super('instance stopped by the host');
    this.name = 'StopSignal';
  }
}
