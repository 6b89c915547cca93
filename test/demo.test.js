// `npm run demo` (here against the suite's database): a broadcast and acks cross three server processes.
const { execFile } = require('child_process');
const path = require('path');

test('the demo runs to completion', async () => {
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(__dirname, '..', 'examples', 'demo.js')], { timeout: 60000, env: process.env },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout)));
  });
  for (const name of ['A', 'B', 'C']) expect(out).toContain(`client of server ${name} received "news": hello from A`);
  expect(out).toContain('server B got acks from: client of A, client of B, client of C');
  expect(out).toMatch(/server A answered: 1 client\(s\)/);
  expect(out).toMatch(/server B answered: 1 client\(s\)/);
  expect(out).toContain('Demo complete');
});
