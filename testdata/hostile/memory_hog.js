// Resource: allocate and fill 1 GiB of Buffers (outside V8's heap, so V8's
// own heap limit does not stop it first) in 10 MiB chunks, keeping them all.
// The sandbox's memory limit must end it: verdict oom_killed.
'use strict';
const CHUNK = 10 << 20;
const chunks = [];
for (let i = 0; i < 103; i++) {
  chunks.push(Buffer.alloc(CHUNK, 1)); // filled, so every page is touched
}
console.log(`allocated ${chunks.length * 10} MiB without being stopped`);
