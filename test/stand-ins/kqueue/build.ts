/**
 * Builds the kqueue stand-in (./kqueue.c, kqueue over epoll) with `cc` into
 * .cache/kqueue-stand-in/: libkqueue-standin-64.so (FreeBSD 12+'s 64-byte
 * struct kevent) and libkqueue-standin-32.so (macOS's, FreeBSD 11's and
 * libkqueue's 32 bytes). Rebuilt when kqueue.c or the flags change (a
 * stamp holds their hash); otherwise a hash and two stats. Run once per
 * `vitest run` by test/global-setup-kqueue.ts, and by the helpers that need
 * it (a test file run with another config still finds it built).
 *
 * Not on Linux (epoll is Linux's), or without `cc`: the reason, for the
 * skips. A stand-in that does not compile fails loudly instead: that is a
 * broken test, not a missing tool.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The environment variable that turns on libkqueue mode (read by the stand-in's kqueue()). */
export const QUIRKS_ENV = 'WASMUX_KQUEUE_STANDIN_QUIRKS';

export type KeventLayout = 32 | 64;
export type StandIn = { libraries: Readonly<Record<KeventLayout, string>> } | { skip: string };

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SOURCE = fileURLToPath(new URL('./kqueue.c', import.meta.url));
const OUT = join(ROOT, '.cache', 'kqueue-stand-in');
const STAMP = join(OUT, 'stamp');
const FLAGS = ['-std=c11', '-O2', '-Wall', '-Wextra', '-shared', '-fPIC'];
const LAYOUTS: readonly KeventLayout[] = [64, 32];

const library = (layout: KeventLayout) => join(OUT, `libkqueue-standin-${layout}.so`);

let built: StandIn | null = null;

/** The stand-in's libraries, built if needed, or why there are none here. */
export function kqueueStandIn(): StandIn {
  built ??= build();
  return built;
}

function build(): StandIn {
  if (process.platform !== 'linux') return { skip: `the kqueue stand-in is built on epoll, which ${process.platform} does not have` };
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).update(FLAGS.join(' ')).digest('hex');
  const libraries = { 64: library(64), 32: library(32) } as const;
  const fresh = () => {
    try {
      return readFileSync(STAMP, 'utf8') === hash && LAYOUTS.every((l) => existsSync(libraries[l]));
    } catch {
      return false;
    }
  };
  if (fresh()) return { libraries };

  mkdirSync(OUT, { recursive: true });
  for (const layout of LAYOUTS) {
    // Built beside its final name and renamed: a process that has the old
    // library loaded keeps it, and no one loads a half-written one.
    const tmp = `${libraries[layout]}.${process.pid}.tmp`;
    const cc = spawnSync('cc', [...FLAGS, `-DKEVENT_SIZE=${layout}`, '-o', tmp, SOURCE, '-lpthread'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (cc.error && (cc.error as NodeJS.ErrnoException).code === 'ENOENT') {
      return { skip: 'no C compiler (cc) to build the kqueue stand-in (apt-get install gcc libc6-dev)' };
    }
    if (cc.status !== 0) {
      rmSync(tmp, { force: true });
      throw new Error(`building the kqueue stand-in (${layout}-byte struct kevent) failed:\n${cc.stderr || cc.error?.message}`);
    }
    renameSync(tmp, libraries[layout]);
  }
  writeFileSync(STAMP, hash);
  return { libraries };
}
