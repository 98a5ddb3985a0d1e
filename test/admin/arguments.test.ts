/** `wasmux run --admin`: a bad value, or an address in use, exits 2 with a stable code before any plugin starts. */
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseAdminAddress } from '../../host/supervisor/admin.js';
import { wasmux } from '../helpers/cli.js';

describe('--admin values', () => {
  it('parses host:port, IPv6 in brackets', () => {
    expect(parseAdminAddress('127.0.0.1:9100')).toEqual({ host: '127.0.0.1', port: 9100 });
    expect(parseAdminAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseAdminAddress('localhost:65535')).toEqual({ host: 'localhost', port: 65535 });
  });

  for (const bad of ['9100', '127.0.0.1', '127.0.0.1:', ':9100', '127.0.0.1:65536', '127.0.0.1:-1', '::1:9100', '127.0.0.1:9100x', '']) {
    it(`refuses --admin "${bad}" with WASMUX_ERR_BAD_ARGUMENT, exit 2`, async () => {
      const r = await wasmux(['run', 'dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', `--admin=${bad}`]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('WASMUX_ERR_BAD_ARGUMENT');
      expect(r.stderr).toContain('--admin');
      expect(r.stdout).not.toContain('listening on');
    });
  }

  it('refuses an address in use with WASMUX_ERR_LISTEN, exit 2, before any plugin starts', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as AddressInfo).port;
    try {
      const r = await wasmux(['run', 'dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--admin', `127.0.0.1:${port}`]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('WASMUX_ERR_LISTEN');
      expect(r.stderr).toContain(`--admin 127.0.0.1:${port}`);
      expect(r.stdout).not.toContain('listening on');
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
