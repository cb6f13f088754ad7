#!/usr/bin/env bash
# Runs cove's whole test suite: formatting, vet, and every test. Tests that
# need root and namespaces run here (CI runs as root); without root they
# skip with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [[ -n $bad ]]; then
  echo "gofmt would change:"; echo "$bad"; exit 1
fi

echo "== go vet"
CGO_ENABLED=0 go vet ./...

echo "== staticcheck"
CGO_ENABLED=0 go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go test"
# The race detector needs cgo. Sandboxes are tested in the static build
# they ship as, and again under -race, where the race-built test binary is
# their agent.
CGO_ENABLED=0 go test -count=1 -timeout 12m ./... 2>&1 | tee /tmp/cove-test.log
if command -v gcc >/dev/null 2>&1; then
  echo "== go test -race"
  CGO_ENABLED=1 go test -count=1 -race -timeout 8m $(go list ./... | grep -v -e /cmd/cove)
fi
