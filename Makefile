# cove's two everyday commands:
#   make run   builds cove and serves the REST API on the embedded defaults
#   make test  runs the whole test suite
# Both install what they need on a fresh Debian machine (as root).

export PATH := $(PATH):/usr/local/go/bin
export CGO_ENABLED := 0
GO ?= go

.PHONY: deps build run test bench fmt agent seccomp ui

deps:
	@scripts/deps.sh

build: deps
	$(GO) build -trimpath -o bin/cove ./cmd/cove

run: build
	bin/cove serve

test: deps
	@scripts/test.sh

# The figures in the README's Performance section.
bench: build
	bin/cove bench --runs 60
	bin/cove bench --api --runs 50 --seconds 10 --idle 200

fmt:
	gofmt -w $$(git ls-files '*.go')

# The sandbox agent, embedded in cove (see internal/agentbin). Rebuild it
# after changing internal/agent or what it imports.
AGENT_FLAGS := -trimpath -buildvcs=false -ldflags='-s -w -buildid='
agent:
	GOARCH=amd64 $(GO) build $(AGENT_FLAGS) -o internal/agentbin/cove-agent-amd64 ./cmd/cove-agent
	sha256sum internal/agentbin/cove-agent-amd64 | cut -d' ' -f1 > internal/agentbin/hash.txt

# The seccomp filters, assembled ahead of time and embedded in cove (see
# internal/seccomp/compiled). Rebuild them after changing internal/seccomp.
seccomp:
	$(GO) generate ./internal/seccomp/compiled

# The web UI's bundle, embedded in cove (see internal/webui). Rebuild it
# after changing web/: npm installs the locked packages, esbuild bundles.
ui:
	cd web && npm ci --no-audit --no-fund
	$(GO) run ./internal/webui/build
