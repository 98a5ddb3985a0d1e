// For Windows' node.exe under wine (test/backend/run-checks.ts): Node 22
// runs .ts files by stripping their types, but resolves `./rig.js` only to a
// file of that name. This hook tries the .ts file when the .js one does not
// exist, as vitest and tsc do. Loaded with `node --import ./test/backend/ts-resolve.mjs`.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    if (e && e.code === 'ERR_MODULE_NOT_FOUND' && /^\\.\\.?\\//.test(specifier) && specifier.endsWith('.js')) {
      return next(specifier.slice(0, -3) + '.ts', context);
    }
    throw e;
  }
}
`),
);
