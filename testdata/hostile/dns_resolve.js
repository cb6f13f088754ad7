// Probe: resolve a public name, through the system resolver and by sending
// raw DNS queries over UDP to the configured name servers and to public ones.
// Why it matters: DNS is the classic exfiltration channel of "offline"
// sandboxes; any answer at all (even NXDOMAIN) proves packets leave.
// Expect: BLOCKED (ENOTFOUND or EAI_AGAIN, and no UDP reply).
'use strict';
const dgram = require('dgram');
const dns = require('dns');
const fs = require('fs');

function query(name) {
  const head = Buffer.from([0x13, 0x37, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([head, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

function servers() {
  let conf = '';
  try { conf = fs.readFileSync('/etc/resolv.conf', 'utf8'); } catch (e) { /* no resolver configured */ }
  const list = conf.split('\n').map((l) => l.trim().split(/\s+/))
    .filter((f) => f[0] === 'nameserver' && /^[0-9.]+$/.test(f[1])).map((f) => f[1]);
  return [...new Set([...list, '8.8.8.8', '1.1.1.1'])];
}

function udpAsk(server) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (r) => { clearTimeout(t); s.close(); resolve(r); };
    const t = setTimeout(() => done({ ok: false, why: 'no reply' }), 2000);
    s.on('message', () => done({ ok: true }));
    s.on('error', (e) => done({ ok: false, why: e.code }));
    s.send(query('example.com'), 53, server, (e) => { if (e) done({ ok: false, why: e.code }); });
  });
}

(async () => {
  const lookup = await new Promise((resolve) => {
    dns.lookup('example.com', (err, addr) => resolve(err ? { ok: false, why: err.code } : { ok: true, addr }));
  });
  if (lookup.ok) {
    console.log('ESCAPED: resolved example.com through the system resolver');
    process.exit(3);
  }
  const why = new Set();
  for (const srv of servers()) {
    const r = await udpAsk(srv);
    if (r.ok) {
      console.log(`ESCAPED: DNS server ${srv} answered a UDP query`);
      process.exit(3);
    }
    why.add(r.why);
  }
  console.log(`BLOCKED: DNS (lookup: ${lookup.why}, udp: ${[...why].sort().join('/')})`);
})();
