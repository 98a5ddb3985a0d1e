/**
 * Host side of wasmux:plugin/tcp@0.1.0 (wit/tcp.wit), at the core-wasm level
 * (see assembly/sdk/bindings.ts for the guest's side of each signature):
 * lift, call the instance's host (sandbox/instance-host.ts), lower.
 *
 * recv and send move data between the socket and guest memory with no copy
 * in the host: the kernel reads and writes guest memory at `mem.base + ptr`.
 */
import { SocketAddress } from '../backends/address.js';
import { SHUTDOWN_HOW_NAMES } from '../generated/contract.js';
import type { GlueContext } from './context.js';
import { BYTES_RESULT, liftAddress, liftEnum, lowerAccepted, lowerAddressResult, lowerBytes, lowerU32, lowerUnit } from './abi.js';

export function tcpImports({ mem, host }: GlueContext) {
  const scratch = new SocketAddress();

  return {
    listen(
      family: number,
      a0: number,
      a1: number,
      a2: number,
      a3: number,
      a4: number,
      a5: number,
      a6: number,
      a7: number,
      port: number,
      backlog: number,
      retptr: number,
    ): void {
      mem.sync(); // first in every import with an effect: it also refuses a call from inside cabi_realloc
      const addr = liftAddress(family, [a0, a1, a2, a3, a4, a5, a6, a7], port, scratch);
      lowerU32(mem, retptr >>> 0, host.listen(addr, backlog >>> 0));
    },

    accept(l: number, retptr: number): void {
      mem.sync();
      const r = host.accept(l);
      lowerAccepted(mem, retptr >>> 0, r, host.address);
    },

    connect(
      family: number,
      a0: number,
      a1: number,
      a2: number,
      a3: number,
      a4: number,
      a5: number,
      a6: number,
      a7: number,
      port: number,
      retptr: number,
    ): void {
      mem.sync();
      const addr = liftAddress(family, [a0, a1, a2, a3, a4, a5, a6, a7], port, scratch);
      lowerU32(mem, retptr >>> 0, host.connect(addr));
    },

    recv(s: number, max: number, retptr: number): void {
      retptr >>>= 0;
      max >>>= 0;
      mem.sync();
      mem.checkArea(retptr, BYTES_RESULT.size, BYTES_RESULT.align);
      let r = host.recvStart(s, max);
      let ptr = 0;
      if (r >= 0) {
        // The guest's buffer (its cabi_realloc lends the SDK's), then the kernel writes into it.
        const len = host.recvLength(max);
        ptr = mem.alloc(len, 1);
        r = host.recvInto(r, mem.base + ptr, len);
        if (r < 0) mem.release(ptr, len, 1);
      }
      lowerBytes(mem, retptr, ptr, r);
    },

    send(s: number, ptr: number, len: number, retptr: number): void {
      ptr >>>= 0;
      len >>>= 0;
      mem.sync();
      mem.check(ptr, len);
      lowerU32(mem, retptr >>> 0, host.send(s, mem.base + ptr, len));
    },

    shutdown(s: number, how: number, retptr: number): void {
      mem.sync();
      how = liftEnum(how, SHUTDOWN_HOW_NAMES.length, 'shutdown-how');
      lowerUnit(mem, retptr >>> 0, host.shutdown(s, how));
    },

    close(h: number, retptr: number): void {
      mem.sync();
      lowerUnit(mem, retptr >>> 0, host.close(h));
    },

    'local-address'(h: number, retptr: number): void {
      mem.sync();
      lowerAddressResult(mem, retptr >>> 0, host.addressOf(h, false), host.address);
    },

    'peer-address'(s: number, retptr: number): void {
      mem.sync();
      lowerAddressResult(mem, retptr >>> 0, host.addressOf(s, true), host.address);
    },
  };
}
