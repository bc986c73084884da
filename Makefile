# relaysoak: see README.md. Every variable here is also a flag and an
# environment variable of `relaysoak`.
GO ?= go
BIN := bin/relaysoak

.PHONY: build test test-long relay-image clean-containers fakepds

build:
	$(GO) build -o $(BIN) ./cmd/relaysoak

# The container packages run one at a time (-p 1): two relays on 2 cores
# would compete and make each other's numbers meaningless.
test:
	$(GO) vet ./...
	$(GO) test -p 1 -timeout 28m -count=1 ./...

# Runs of 10 minutes and more (production shape); the nightly workflow runs it.
test-long:
	RELAYSOAK_LONG=1 $(GO) test -p 1 -timeout 120m -count=1 -run 'Long' ./...

fakepds: build
	$(BIN) fakepds

# The default system under test: indigo's relay at the version pinned in
# go.mod, built static into a FROM scratch image tagged with that version.
# Kept and reused while the version is unchanged (REBUILD=true forces it).
relay-image: build
	$(BIN) relay-image

# Remove containers a crashed run left behind.
clean-containers:
	-docker ps -aq --filter label=org.relaysoak=true | xargs -r docker rm -f
