package service

import (
	"context"
	"maps"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/egress"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// createInstance creates a sandbox on the backend and, when its network
// limit names hosts, serves its egress proxy until the sandbox dies.
func (s *Service) createInstance(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	policy, err := egress.NewPolicy(spec.Limits.Network, s.opts.NetworkPrivate)
	if err != nil {
		return nil, err
	}
	if err := policy.CheckAddresses(); err != nil {
		return nil, err
	}
	inst, err := s.backend.Create(ctx, spec)
	if err != nil || !policy.Enabled() {
		return inst, err
	}
	// A sandbox started again keeps its workspace, which holds the
	// user's files, as a failed Create of it does.
	undo := inst.Destroy
	if spec.Resume {
		undo = inst.Stop
	}
	l, ok := inst.(runtime.Listener)
	if !ok {
		undo(context.WithoutCancel(ctx))
		return nil, cove.Errorf(cove.CodeInvalid, "the %s backend cannot give sandboxes a network: leave the network limit out", s.backend.Name())
	}
	ln, err := l.Listen(egress.Addr)
	if err != nil {
		undo(context.WithoutCancel(ctx))
		return nil, err
	}
	proxy := egress.Serve(ln, policy, spec.Limits.Network, egress.Options{Log: s.log.With("sandbox", spec.ID), Conns: s.egressConns, Observe: s.metrics.observeEgress})
	go func() {
		<-inst.Done()
		proxy.Close()
	}()
	return inst, nil
}

// networkConns is the bound of Options.NetworkConns: n, or by default
// from the open files this process may have.
func networkConns(n int) int {
	if n > 0 {
		return n
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return egress.DefaultConns(1024)
	}
	return egress.DefaultConns(rl.Cur)
}

// networkEnv is defaultEnv with the egress proxy's variables added.
var networkEnv = func() map[string]string {
	env := maps.Clone(defaultEnv)
	maps.Copy(env, egress.Env())
	return env
}()

// baseEnv is the environment every program of the sandbox starts from,
// before its own and the request's variables: with the egress proxy's
// variables when its network limit names hosts.
func (sb *sandbox) baseEnv() map[string]string {
	if sb.limits.HasNetwork() {
		return networkEnv
	}
	return defaultEnv
}
