#!/usr/bin/env python3
# Resource: allocate and touch 1 GiB in 10 MiB chunks, keeping every chunk.
# The sandbox's memory limit (no swap) must stop it: the OOM killer ends the
# program and the verdict is oom_killed. Reaching the end means the limit
# did not hold.
CHUNK = 10 << 20
chunks = []
for _ in range(1024 // 10 + 1):
    chunks.append(b"\x01" * CHUNK)  # bytes multiplication writes every page
print(f"allocated {len(chunks) * 10} MiB without being stopped")
