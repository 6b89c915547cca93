// The TypeScript declarations compile against a program that uses every public option and entry point.
const { execFileSync } = require('child_process');
const path = require('path');

test('lib/index.d.ts covers the public API (tsc --strict)', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const file = path.join(__dirname, 'fixtures', 'types-usage.ts');
  const out = (() => {
    try {
      return execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--esModuleInterop', '--skipLibCheck', '--types', 'node', '--target', 'es2020', '--moduleResolution', 'node', file], { encoding: 'utf8' });
    } catch (err) {
      return `${err.stdout}${err.stderr}`;
    }
  })();
  expect(out).toBe('');
});
