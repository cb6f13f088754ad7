// Package seccomp builds and loads the seccomp filter that confines every
// process in a cove sandbox.
//
// The sandbox's agent calls Load once, after it has set up the sandbox's
// mounts and before it runs any user code. The filter then applies to every
// thread of the agent and is inherited by every process the agent starts, so
// user code never runs without it, and no_new_privs keeps set-id binaries
// from regaining privileges the sandbox dropped.
//
// The policy is an allowlist modelled on the unconditional part of Docker's
// default seccomp profile (moby/profiles, seccomp/default.json), made
// stricter: syscalls Docker grants only to containers with capabilities are
// refused, and so are kernel interfaces with a long record of privilege
// escalations (io_uring, keyrings, bpf, perf events, ptrace, userfaultfd,
// the new mount API), socket families other than Unix, IP and netlink, and
// terminal input injection. Anything the allowlist does not name fails with
// EPERM, as in Docker. A syscall through another ABI (i386 or x32 on x86_64,
// arm32 on arm64) kills the process: no program cove runs needs one, and
// they are the classic way around filters written for the native ABI.
package seccomp
