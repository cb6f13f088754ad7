// Package cgroups puts each sandbox in cgroups of its own, on cgroup v1 and
// on cgroup v2, and hands the part the sandbox's agent needs over to it.
//
// # Layout
//
// Every sandbox <id> gets a subtree under a parent cove owns ("cove" by
// default); cove never touches cgroups it did not create.
//
// On cgroup v1 each hierarchy that carries one of the memory, pids, cpu,
// cpuacct and freezer controllers gets
//
//	<mount>/cove/<id>/        the agent; no limits
//	<mount>/cove/<id>/user/   all limits; the user's processes
//
// and the pids hierarchy additionally gets one child per execution,
// <mount>/cove/<id>/user/e<N>, which the agent creates and removes itself.
//
// On cgroup v2 (the unified hierarchy mounted at the root with the memory,
// pids and cpu controllers available) the subtree is
//
//	<root>/cove/<id>/agent    the agent (a leaf)
//	<root>/cove/<id>/user     all limits; controllers enabled for children
//	<root>/cove/<id>/user/e<N> one leaf per execution
//
// and children are started directly inside e<N> with clone3
// CLONE_INTO_CGROUP (SysProcAttr.UseCgroupFD).
//
// # Two sides
//
// The host side (Manager, Group) runs as real root: it creates the subtree,
// writes the limits, puts the agent in, reads statistics, kills and removes
// everything. It then delegates the user subtree to the agent by chowning
// the few files the agent must write (never a limit file) to the host uid
// and gid the agent's user namespace maps its root to.
//
// The agent side (Delegated, Exec) runs inside the sandbox, without any
// access to the cgroup file system paths: it works only through the
// directory descriptors returned by Group.AgentFiles, which the host passes
// to it (for example as exec.Cmd.ExtraFiles) and the agent gives to
// OpenDelegated.
//
// # Forking into cgroups on v1
//
// cgroup v1 has no CLONE_INTO_CGROUP, and writing a pid to cgroup.procs can
// take milliseconds. The agent therefore dedicates one OS thread to
// starting children: PrepareForkThread moves that thread (only the thread,
// through the v1 "tasks" files) into the user cgroups of every hierarchy
// once, and Exec.EnterThread moves it into the execution's pids cgroup
// before each fork, so that every child is born in the right cgroups. That
// thread must be locked (runtime.LockOSThread) and must not be the
// thread-group leader: v1 charges a process's memory to its leader's memory
// cgroup and the OOM killer considers a process whose leader is in the
// cgroup, so a leader in user/ would put the agent under the user's memory
// limit.
//
// # Starting children on v2
//
// clone3 into user/e<N> needs write access to cgroup.procs of e<N> (the
// agent created it, so it owns it) and of the common ancestor of the
// agent's cgroup and e<N>, which is <id>: Create delegates <id>/cgroup.procs
// for that (no process can live in <id> itself, which has controllers
// enabled for its children). When cgroup2 is mounted with nsdelegate, the
// kernel also requires both cgroups to be inside the agent's cgroup
// namespace, so the agent must not have a cgroup namespace rooted at its
// own leaf <id>/agent; user processes can get one, rooted at e<N>, with
// CLONE_NEWCGROUP alongside CLONE_INTO_CGROUP.
//
// On v1 New also mounts a named hierarchy with the favordynmods option (see
// Options.RunDir), which makes joining a cgroup take a fraction of a
// millisecond instead of a scheduler grace period.
package cgroups
