// Probe: connect to a TCP server that the test runner started on the HOST's
// 127.0.0.1; its port is argv[2] (the first argument after the script).
// Why it matters: many local services (databases, cove's own API, cloud
// metadata proxies) trust 127.0.0.1. The sandbox has its own loopback
// interface, so the host's listeners must be unreachable.
// Expect: BLOCKED (ECONNREFUSED: nothing listens on the sandbox's loopback).
'use strict';
const net = require('net');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node net_host_loopback.js PORT (the runner fills it in)');
  process.exit(2);
}

const sock = net.connect({ host: '127.0.0.1', port });
sock.setTimeout(3000);
sock.on('connect', () => {
  console.log(`ESCAPED: connected to the host's 127.0.0.1 port ${port}`);
  sock.destroy();
  process.exit(3);
});
sock.on('timeout', () => {
  console.log('BLOCKED: host loopback (timed out)');
  sock.destroy();
  process.exit(0);
});
sock.on('error', (err) => {
  console.log(`BLOCKED: host loopback (${err.code})`);
  process.exit(0);
});
