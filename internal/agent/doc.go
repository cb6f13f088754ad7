// Package agent is cove's in-sandbox agent and the protocol the host uses to
// talk to it.
//
// The agent is PID 1 of every sandbox. It finishes the sandbox's isolation
// from the inside (mounts, root switch, loopback, rlimits, capabilities,
// seccomp, Landlock), then serves requests from the host over a byte stream
// that code in the sandbox cannot reach: run a command with streamed
// stdin/stdout/stderr, write and read files. It reaps every orphan, enforces
// each execution's wall-clock and output limits, and kills everything an
// execution started when it ends.
//
// The protocol is the same on every backend: yamux multiplexes one stream
// per request over the connection, and each stream carries typed frames.
package agent
