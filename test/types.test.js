// The TypeScript declarations compile as users compile them: `tsc --strict` WITHOUT --skipLibCheck, so
// lib/index.d.ts and the declarations it imports are checked too. Two projects: a socket.io server
// that uses every public option and entry point, and an Emitter-only project with no socket.io installed.
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const tsc = require.resolve('typescript/bin/tsc');
const FLAGS = ['--noEmit', '--strict', '--esModuleInterop', '--types', 'node', '--target', 'es2020', '--moduleResolution', 'node'];

function compile(file, cwd) {
  try {
    return execFileSync(process.execPath, [tsc, ...FLAGS, file], { encoding: 'utf8', cwd });
  } catch (err) {
    return `${err.stdout}${err.stderr}`;
  }
}

// Copies an installed package (only its package.json and declaration files) into dir/node_modules.
function copyPackage(name, dir) {
  const src = path.dirname(require.resolve(`${name}/package.json`, { paths: [ROOT] }));
  const dst = path.join(dir, 'node_modules', name);
  fs.cpSync(src, dst, {
    recursive: true,
    filter: (p) => fs.statSync(p).isDirectory() || p.endsWith('.d.ts') || p.endsWith('package.json'),
  });
}

test('a socket.io server project compiles against lib/index.d.ts (tsc --strict, no --skipLibCheck)', () => {
  expect(compile(path.join(__dirname, 'fixtures', 'types-usage.ts'), ROOT)).toBe('');
});

test('an Emitter-only project without socket.io installed compiles (tsc --strict, no --skipLibCheck)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgadapter-types-'));
  try {
    const pkg = path.join(dir, 'node_modules', 'socket.io-postgres-native');
    fs.mkdirSync(path.join(pkg, 'lib'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
    fs.copyFileSync(path.join(ROOT, 'lib', 'index.d.ts'), path.join(pkg, 'lib', 'index.d.ts'));
    // npm installs the peer dependency socket.io-adapter; @types/node comes with any Node TS project.
    for (const name of ['socket.io-adapter', '@types/node', 'undici-types']) copyPackage(name, dir);
    fs.copyFileSync(path.join(__dirname, 'fixtures', 'types-emitter-only.ts'), path.join(dir, 'index.ts'));
    expect(fs.existsSync(path.join(dir, 'node_modules', 'socket.io'))).toBe(false);
    expect(compile('index.ts', dir)).toBe('');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
