// Probe: look for the host's secrets and settings in the environment.
// Why it matters: the sandbox gets a clean environment; any credential-like
// variable (keys, tokens, passwords), any variable of cove's own (COVE_*),
// or any value pointing into the host's home directories or cove's state
// means the host's environment leaked in. Only names are printed.
// Expect: BLOCKED (no such variable).
'use strict';

const SECRET_NAME = /(KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION)/i;
const HOST_PREFIX = /^(COVE_|AWS_|AZURE_|GOOGLE_|GCP_|GITHUB_|GH_|ANTHROPIC_|OPENAI_|DOCKER_|KUBE|SSH_|SUDO_|DBUS_|XDG_RUNTIME|PYENV_|NVM_|NODE_EXTRA_CA_CERTS|NODE_OPTIONS)/;
const HOST_VALUE = /(^|:)(\/root(\/|$|:)|\/home\/|\/var\/lib\/cove|\/work\/)/;
const IGNORED = new Set(['COVE_HOSTILE_DRYRUN']);
// cove's own setting, which loads its module for every node.
const COVE_SET = { NODE_OPTIONS: '--require /etc/cove/node/preload.js' };

const bad = Object.entries(process.env)
  .filter(([name, value]) => !IGNORED.has(name) && COVE_SET[name] !== value &&
    (SECRET_NAME.test(name) || HOST_PREFIX.test(name) || HOST_VALUE.test(value)))
  .map(([name]) => name)
  .sort();
if (bad.length > 0) {
  console.log(`ESCAPED: host variables in the environment: ${bad.join(', ')}`);
  process.exit(3);
}
console.log(`BLOCKED: host environment (${Object.keys(process.env).length} clean variables)`);
