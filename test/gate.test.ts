// The kill gate (host/sandbox/gate.ts), at the level of the glue: its state
// machine as the supervisor and the worker drive it, and "a trap is final":
// a guest that catches the host's trap (wasm exception handling; the loader
// refuses it, this runs the glue directly) finds every later gated call and
// every wait refused with the same trap, before any system call.
import { describe, it, expect } from 'vitest';
import { parse } from '@bytecodealliance/jco';
import { PluginInstance } from '../host/wit/instance.js';
import { GuestMemory } from '../host/wit/guest-memory.js';
import { HandleTable, registryBytes } from '../host/sandbox/handle-table.js';
import { CTRL_COUNT, CTRL_RUN_SEQ, CTRL_STATE, STAT_COUNT } from '../host/sandbox/shared.js';
import { FLAG_DEAD, FLAG_KILL, Gate, MODE_GUEST, MODE_HOST, MODE_WAIT, charged, modeOf, requestKill } from '../host/sandbox/gate.js';
import { GuestTrap, WatchdogKill } from '../host/sandbox/traps.js';
import { InstanceHost } from '../host/sandbox/instance-host.js';
import type { Backend } from '../host/backends/backend.js';
import { IMPORTS, runtime } from './helpers/wat.js';
import { LOG_SHARED_SLOTS, LogLimiter, fullBucket } from '../host/sandbox/log-limiter.js';

function freshGate(): { gate: Gate; control: Int32Array } {
  const control = new Int32Array(new SharedArrayBuffer(CTRL_COUNT * 4));
  return { gate: new Gate(control, new Float64Array(STAT_COUNT)), control };
}

describe('the kill gate', () => {
  it("lets the supervisor terminate guest code at once, and defers a kill inside a gated call to the call's exit", () => {
    const { gate, control } = freshGate();
    gate.startGuest();
    expect(Atomics.load(control, CTRL_RUN_SEQ)).toBe(1);
    gate.attached();
    expect(modeOf(control[CTRL_STATE]!)).toBe(MODE_GUEST);

    // Inside a gated call: the kill is only raised; the call's exit throws it.
    gate.enter();
    expect(charged(control[CTRL_STATE]!)).toBe(true);
    expect(requestKill(control)).toBe(false);
    expect(requestKill(control), 'a second request changes nothing').toBe(false);
    expect(() => gate.leave()).toThrow(WatchdogKill);
    // The thread then ends itself: its closing-up runs (it is still HOST).
    expect(gate.closing()).toBe(true);
    expect(control[CTRL_STATE]).toBe(MODE_HOST | FLAG_KILL);
  });

  it('refuses a gated call once the guest was killed, and leaves the closing-up to the supervisor', () => {
    const { gate, control } = freshGate();
    gate.startGuest();
    gate.attached();
    expect(requestKill(control)).toBe(true); // guest code: terminate now
    // terminate() lands asynchronously: a gated call in between makes no system call.
    expect(() => gate.enter()).toThrow(WatchdogKill);
    expect(() => gate.enterWait()).toThrow(WatchdogKill);
    expect(gate.closing()).toBe(false);
  });

  it("does not charge a thread blocked in wait, and lets stop()'s last resort terminate it there", () => {
    const { gate, control } = freshGate();
    gate.startGuest();
    gate.attached();
    gate.enterWait();
    expect(modeOf(control[CTRL_STATE]!)).toBe(MODE_WAIT);
    expect(charged(control[CTRL_STATE]!)).toBe(false);
    expect(requestKill(control)).toBe(true);
    expect(() => gate.leaveWait(performance.now())).toThrow(WatchdogKill);
  });

  it('makes a trap final: after a caught trap, gated calls and waits throw the same trap, before any system call', async () => {
    // Each step catches what the host throws and logs "caught"; the last
    // listen is not caught, so its error reaches the host.
    const listen = `(call $listen (i32.const 0) (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 7000) (i32.const 16) (i32.const 1024))`;
    const caught = (call: string) => `try ${call} catch_all (call $log (i32.const 2) (i32.const 0) (i32.const 6)) end`;
    const bytes = await parse(`(module
      ${IMPORTS}
      ${runtime()}
      (data (i32.const 0) "caught")
      (func (export "run") (param i32 i32 i32 i32 i32) (result i32)
        ${caught('(call $wait (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 2048))')}
        ${caught(listen)}
        ${caught('(call $close (i32.const 1) (i32.const 1100))')}
        ${caught('(call $wait (i32.const 16) (i32.const 1) (i32.const 10000) (i32.const 2048))')}
        ${listen}
        (i32.const 0)))`);
    const reached: string[] = [];
    // The backend must not be reached at all: every method records its name.
    const backend = new Proxy({}, { get: (_t, name) => () => (reached.push(String(name)), 0) }) as Backend;
    const control = new Int32Array(new SharedArrayBuffer(CTRL_COUNT * 4));
    const stats = new Float64Array(STAT_COUNT);
    const table = new HandleTable(new SharedArrayBuffer(registryBytes(16)), 1);
    const logged: string[] = [];
    const gate = new Gate(control, stats);
    const host = new InstanceHost({
      table,
      backend,
      limits: {
        listen: [],
        connectAllowed: () => true,
        maxEventsPerWait: 16,
        maxRecvBytes: 1 << 16,
        maxBacklog: 128,
        sharedListen: false,
        maxConnections: 16,
        maxMemoryMiB: 1,
        idleTimeoutMs: 0,
        maxSendQueueBytes: 65536,
        handoverStateBytes: 65536,
        metricSeries: 0,
        proxyHeaderTimeoutMs: 3000,
      },
      stats,
      control,
      gate,
      logLimit: new LogLimiter(new Float64Array(LOG_SHARED_SLOTS), fullBucket(), () => {}),
      log: (_level, _origin, message) => void logged.push(message.startsWith('denied: ') ? `denied ${message.split(' ')[1]}` : message),
      listening: () => void logged.push('listening'),
    });
    const plugin = new PluginInstance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), { mem: new GuestMemory(), host }, gate);
    const t = performance.now();
    let thrown: unknown = null;
    try {
      plugin.run({ config: '', listen: [], instance: 0 });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(GuestTrap);
    expect((thrown as Error).message).toBe("invalid option discriminant 2 for wait's timeout");
    expect(logged).toEqual(['caught', 'caught', 'caught', 'caught']);
    expect(performance.now() - t, 'the last wait did not block').toBeLessThan(1000);
    expect(reached, 'no call reached the backend').toEqual([]);
    expect(table.open).toBe(0);
    expect(control[CTRL_STATE]! & FLAG_DEAD).toBe(FLAG_DEAD);
  });
});
