# Probe: through cove's egress proxy (127.0.0.1:3128 inside a sandbox whose
# network limit is the widest it can be for the port: "*:PORT,*"), ask for
# the host's own services: the runner's server on the host's 127.0.0.1 in
# every spelling, the unspecified address, and the cloud metadata address.
# Why it matters: the proxy dials from the host, so a destination it did
# not refuse after name resolution would reach the host's loopback.
# Expect: BLOCKED (every CONNECT and plain request is refused, none gets 200).
import socket
import sys

if len(sys.argv) != 2 or not sys.argv[1].isdigit():
    print("usage: net_proxy_host.py PORT (the runner fills it in)", file=sys.stderr)
    sys.exit(2)
port = sys.argv[1]
targets = [
    f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"[::ffff:127.0.0.1]:{port}",
    f"[::ffff:7f00:1]:{port}", f"0.0.0.0:{port}", f"[::]:{port}", f"127.1:{port}",
    f"2130706433:{port}", f"0x7f000001:{port}", f"localhost.:{port}", "169.254.169.254:80",
    "[fd00:ec2::254]:80", f"[64:ff9b::7f00:1]:{port}", f"[2002:7f00:1::]:{port}",
]


def ask(request):
    """Sends one request to the proxy and returns its status line."""
    s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
    try:
        s.sendall(request.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode(errors="replace")
    finally:
        s.close()


for target in targets:
    for request in (f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n",
                    f"GET http://{target}/ HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"):
        status = ask(request)
        code = status.split(" ", 2)[1] if status.count(" ") >= 1 else ""
        if code.startswith("2") or code.startswith("3") or code.startswith("101"):
            print(f"ESCAPED: the proxy answered {status!r} to {request.split()[0]} {target}")
            sys.exit(3)
print(f"BLOCKED: the host's own services through the proxy ({len(targets)} destinations refused)")
