// Probe: list /proc/1/root/ and /proc/1/cwd/, PID 1's view of the filesystem.
// Why it matters: these links jump into another process's root; if PID 1's
// root differs from the sandbox's (or the agent kept a host directory
// open), they lead out of the sandbox. They need ptrace access to PID 1.
// Expect: BLOCKED (EACCES).
'use strict';
const fs = require('fs');

const errs = new Set();
for (const dir of ['/proc/1/root/', '/proc/1/cwd/']) {
  try {
    const entries = fs.readdirSync(dir);
    console.log(`ESCAPED: listed ${dir} (${entries.length} entries)`);
    process.exit(3);
  } catch (err) {
    errs.add(err.code);
  }
}
console.log(`BLOCKED: list /proc/1/root and /proc/1/cwd (${[...errs].sort().join('/')})`);
