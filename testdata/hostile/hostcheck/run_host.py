#!/usr/bin/python3
# Runs every probe of the hostile suite on the bare host, outside any
# sandbox, to show that each one's detection can fail: as root most must
# print ESCAPED. Each probe also runs as uid 1000 with no capabilities and
# no_new_privs (but no seccomp and no namespaces), which shows the probes
# that only seccomp or the namespaces stop.
#
# It never runs the resource programs. Probes that could disturb the host
# run with COVE_HOSTILE_DRYRUN=1; the probes aimed at PID 1 run in a fresh
# pid namespace whose PID 1 is a bash started here, so the host's init is
# never touched; sethostname runs in its own UTS namespace.
#
# Usage (as root): /usr/bin/python3 testdata/hostile/hostcheck/run_host.py
import json, os, socket, subprocess, tempfile, threading

D = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
manifest = json.load(open(os.path.join(D, "manifest.json")))
work = tempfile.mkdtemp(prefix="hostile-run-")
os.chmod(work, 0o1777)
CLEAN = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8"}
UNPRIV = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "--inh-caps=-all",
          "--bounding-set=-all", "--no-new-privs"]
INTERP = {"python": ["/usr/bin/python3"], "javascript": ["/usr/bin/node"], "bash": ["/bin/bash"]}
IN_PIDNS = {"proc1_environ", "proc1_exe", "proc1_root", "proc1_fd", "setns_pid1", "ptrace_pid1", "kill_pid1"}
IN_UTSNS = {"sethostname"}
REAL_AS_ROOT = {"ptrace_pid1", "kill_pid1"}  # safe for real inside the private pid namespace

# Host-side listeners for the network probes.
tcp = socket.socket()
tcp.bind(("127.0.0.1", 0))
tcp.listen(8)
abstract_name = f"cove-hostile-{os.getpid()}"
uds = socket.socket(socket.AF_UNIX)
uds.bind("\0" + abstract_name)
uds.listen(8)


def accept_forever(s):
    while True:
        try:
            c, _ = s.accept()
            c.close()
        except OSError:
            return


for s in (tcp, uds):
    threading.Thread(target=accept_forever, args=(s,), daemon=True).start()
subst = {"{{HOST_PORT}}": str(tcp.getsockname()[1]), "{{HOST_ABSTRACT}}": abstract_name,
         "{{HOST_DATA_DIR}}": "/var/lib/cove"}


def run(entry, env_extra=None, wrap=None, dry=True, close_fds=True, unpriv=False):
    argv = INTERP[entry["language"]] + [os.path.join(D, entry["file"])]
    argv += [subst.get(a, a) for a in entry.get("argv", [])]
    if unpriv:
        argv = UNPRIV + argv
    if wrap:
        argv = wrap(argv)
    env = dict(CLEAN)
    if dry:
        env["COVE_HOSTILE_DRYRUN"] = "1"
    env.update(env_extra or {})
    p = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=60,
                       close_fds=close_fds, stdin=subprocess.DEVNULL)
    lines = [l.strip() for l in p.stdout.splitlines() if l.strip()]
    return p.returncode, (lines[-1] if lines else "(no output) " + p.stderr.strip()[-200:])


def pidns(argv):
    return ["unshare", "--pid", "--fork", "--mount-proc", "/bin/bash", "-c", '"$@"; exit $?', "bash"] + argv


def utsns(argv):
    return ["unshare", "--uts"] + argv


def mntns(argv):
    return ["unshare", "--mount", "--propagation", "private"] + argv


# Probes of cove's own parts, which the bare host does not have: shown to
# fail in the README instead.
NEEDS_COVE = {"net_proxy_host"}

rows = []
for e in manifest:
    if e["kind"] != "probe" or e["name"] in NEEDS_COVE:
        continue
    n = e["name"]
    wrap = pidns if n in IN_PIDNS else utsns if n in IN_UTSNS else None
    where = " (pid ns, PID 1 = bash)" if n in IN_PIDNS else " (own UTS ns)" if n in IN_UTSNS else ""
    dry = n not in REAL_AS_ROOT
    rc, root_line = run(e, wrap=wrap, dry=dry)
    # Unprivileged: for real (no dry run); umount_root in a private mount
    # namespace made by root, just in case.
    rc2, user_line = run(e, wrap=mntns if n == "umount_root" else wrap, dry=False, unpriv=True)
    rows.append((n, rc, root_line + ("  [dry run]" if dry else "  [real]") + where, rc2, user_line))
    # Extra runs that show both outcomes of a check the first run cannot.
    if n == "env_secrets":
        rc, line = run(e, env_extra={"HOME": "/root", "FAKE_API_TOKEN": "x"})
        rows.append((n + " +planted vars", rc, line, None, ""))
    if n == "inherited_fds":
        rc, line = run(e, close_fds=False)
        rows.append((n + " +runner fds open", rc, line, None, ""))
    if n == "setuid_root":
        caps = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups",
                "--inh-caps=+setuid,+setgid", "--ambient-caps=+setuid,+setgid"]
        rc, line = run(e, wrap=lambda a: caps + a)
        rows.append((n + " +uid 1000, CAP_SETUID", rc, line, None, ""))
    if n == "tiocsti":
        rc, line = run(e, wrap=lambda a: ["script", "-qec", " ".join(a), "/dev/null"])
        rows.append((n + " +under script(1)", rc, line, None, ""))

for n, rc, root_line, rc2, user_line in rows:
    print(f"{n}\n    root:     rc={rc} {root_line}")
    if rc2 is not None:
        print(f"    uid 1000: rc={rc2} {user_line}")
