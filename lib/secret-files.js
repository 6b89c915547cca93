"use strict";
// libpq reads TLS certificates and keys from files: this writes what the user gave as text into a private
// directory (mkdtemp, mode 0700) with each file created exclusively (mode 0600, never through a planted file or
// symlink), and removes it when the last native client using it closes, and at process exit.
const fs = require("fs");
const os = require("os");
const path = require("path");

const live = new Set(); // directories to remove at exit
let exitHookInstalled = false;

function removeDir(dir) {
  live.delete(dir);
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (_) {
    // already gone, or not ours to remove any more: nothing to do
  }
}

function removeAllAtExit() {
  for (const dir of [...live]) removeDir(dir);
}

class SecretFiles {
  /** @param {Array<[string, () => string]>} entries file name -> its contents (asked when written) */
  constructor(entries) {
    this.entries = entries;
    this.dir = null;
    this.users = 0;
  }

  /** { name: absolute path }, writing the files first if they are not there (again). */
  paths() {
    if (this.dir === null || !fs.existsSync(this.dir)) this.write();
    return Object.fromEntries(this.entries.map(([name]) => [name, path.join(this.dir, name)]));
  }

  write() {
    if (!exitHookInstalled) {
      process.on("exit", removeAllAtExit);
      exitHookInstalled = true;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sio-pg-native-"));
    live.add(dir);
    try {
      for (const [name, contents] of this.entries) {
        fs.writeFileSync(path.join(dir, name), contents(), { mode: 0o600, flag: "wx" });
      }
    } catch (err) {
      removeDir(dir);
      throw err;
    }
    if (this.dir !== null) removeDir(this.dir);
    this.dir = dir;
  }

  // A native client uses the files from acquire() to release(); the last release removes them.
  acquire() {
    this.users += 1;
  }

  release() {
    this.users = Math.max(0, this.users - 1);
    if (this.users === 0 && this.dir !== null) {
      removeDir(this.dir);
      this.dir = null;
    }
  }
}

module.exports = { SecretFiles };
