// The registry cell of a socket being created (BackendOptions.creating and
// HandleTable's CREATING_SLOT), at the layers that own it: a backend records
// every socket it creates there in the step that creates it, clears it before
// closing one it gives up on, and the handle table takes the record over when
// it inserts the socket. A worker that dies between the two steps (a stack
// overflow in the host's own code) leaves the socket in the registry, which
// the supervisor closes: no window in which a socket exists unrecorded.
import { describe, it, expect } from 'vitest';
import { readdirSync } from 'node:fs';
import { loadBackend } from '../dist/host/backends/index.js';
import { SocketAddress } from '../dist/host/backends/address.js';
import { CREATING_SLOT, FREE, HandleTable, KIND_STREAM, registryBytes } from '../dist/host/sandbox/handle-table.js';
import { BACKEND_UNDER_TEST } from './helpers/backend-under-test.js';

const openFds = () => readdirSync('/proc/self/fd').length;
const BACKENDS = [...new Set([BACKEND_UNDER_TEST === 'auto' ? 'epoll' : BACKEND_UNDER_TEST, 'poll'])] as ('epoll' | 'poll')[];

describe.each(BACKENDS)('the creating cell on %s', (name) => {
  it('holds each new socket from its creation until the table inserts it; failed creations leave it clear and the socket closed', async () => {
    const before = openFds();
    const table = new HandleTable(new SharedArrayBuffer(registryBytes(8)), 1);
    const cell = table.creatingCell();
    const backend = (await loadBackend(name)).open({ sendBufferBytes: 65536, creating: cell });
    expect(cell[0]).toBe(FREE);

    const l = backend.listen(SocketAddress.parse('127.0.0.1:0')!, 16, false);
    expect(l).toBeGreaterThanOrEqual(0);
    expect(cell[0], 'a new listener is recorded before listen returns').toBe(l);
    const lh = table.insert(l, KIND_STREAM);
    expect(cell[0], 'inserting takes the record over').toBe(FREE);
    expect(table.fds[table.lookup(lh)]).toBe(l);

    const bound = new SocketAddress();
    expect(backend.localAddress(l, bound)).toBe(0);
    const c = backend.connect(bound);
    expect(c).toBeGreaterThanOrEqual(0);
    expect(cell[0], 'a connecting socket is recorded').toBe(c);
    table.insert(c, KIND_STREAM);
    expect(cell[0]).toBe(FREE);

    // accept: wait (bounded) for the connection to be there.
    let a = -1;
    for (let i = 0; i < 200 && a < 0; i++) {
      a = backend.accept(l, new SocketAddress());
      if (a < 0) await new Promise((r) => setTimeout(r, 5));
    }
    expect(a).toBeGreaterThanOrEqual(0);
    expect(cell[0], 'an accepted socket is recorded').toBe(a);
    table.abandon();
    expect(cell[0], 'abandon drops the record before the socket is closed').toBe(FREE);
    backend.closeSocket(a);

    // A listen that fails after socket() (the address is not local): cleared, and the socket closed.
    const fdsBefore = openFds();
    expect(backend.listen(SocketAddress.parse('192.0.2.1:1')!, 16, false)).toBeLessThan(0);
    expect(cell[0]).toBe(FREE);
    expect(openFds()).toBe(fdsBefore);

    for (const slot of [...table.openSlots()]) backend.closeSocket(table.remove(slot));
    backend.close();
    expect(openFds()).toBe(before);
  });

  it("is the last reserved registry slot, which the backend's own descriptors never use", async () => {
    expect(CREATING_SLOT).toBe(3);
    const table = new HandleTable(new SharedArrayBuffer(registryBytes(8)), 1);
    const backend = (await loadBackend(name)).open({ sendBufferBytes: 65536, creating: table.creatingCell() });
    expect(backend.ownDescriptors.length).toBeLessThan(CREATING_SLOT);
    backend.ownDescriptors.forEach((fd, i) => table.recordOwn(i, fd));
    expect(() => table.recordOwn(CREATING_SLOT, 1)).toThrow(/reserves 3/);
    backend.close();
  });
});
