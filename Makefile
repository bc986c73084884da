# relaysoak: see README.md. Every variable below is also a flag of
# `relaysoak soak` and an environment variable (HOSTS is --hosts).
GO ?= go
BIN := bin/relaysoak

# Soak settings, passed on only when given: `make soak HOSTS=2750 RATE=700`.
SOAK_VARS := HOSTS RATE DURATION MEM_LIMIT RELAY_IMAGE RELAY_PROFILE CAPTURE SAMPLE_EVERY STOP_GRACE RESTART METRICS_LISTEN ID RUNS_DIR
soak_flags = $(foreach v,$(SOAK_VARS),$(if $($(v)),--$(subst _,-,$(shell echo $(v) | tr A-Z a-z))=$($(v))))

.PHONY: build test test-long soak soak-diag soak-ci relay-image fakepds clean-containers

build:
	$(GO) build -o $(BIN) ./cmd/relaysoak

# The container packages run one at a time (-p 1): two relays on 2 cores
# would compete and make each other's numbers meaningless.
test:
	$(GO) vet ./...
	$(GO) test -p 1 -timeout 28m -count=1 -skip '^TestLong' ./...

# Runs of 10 minutes and more (production shape); the nightly workflow runs it.
test-long:
	RELAYSOAK_LONG=1 $(GO) test -p 1 -timeout 150m -count=1 -run 'Long' -v ./...

# A soak on sensible defaults (50 hosts, 50 frames/s, 30 minutes, indigo's
# relay built here), ending with a verdict and runs/<id>/report.md.
# Production shape: make soak HOSTS=2750 RATE=700 DURATION=2h
soak: build
	$(BIN) soak $(soak_flags)

# A diagnostic build (leak tracking costs it memory and speed, e.g. a Zig
# relay built with -Duse_gpa=true): less load, more memory, and a long stop
# grace so the relay, stopped by SIGTERM, prints its whole leak report into
# relay.log. Each default gives way to the command line or the environment:
# make soak-diag RELAY_IMAGE=myrelay:gpa HOSTS=200
soak-diag: HOSTS ?= 500
soak-diag: RATE ?= 100
soak-diag: MEM_LIMIT ?= 8GiB
soak-diag: STOP_GRACE ?= 5m
soak-diag: build
	$(BIN) soak $(soak_flags)

# What the nightly workflow runs, and anyone can locally: a soak with a known
# ID (ID=…, default ci-<UTC time>), its headline and report in
# $$GITHUB_STEP_SUMMARY when set, junit.xml copied to $(JUNIT_DIR), and an
# exit status for CI: LEAK and CRASHED fail, INCONCLUSIVE warns (exit 0).
JUNIT_DIR ?= test-results
soak-ci: build
	JUNIT_DIR=$(JUNIT_DIR) scripts/soak-ci.sh $(BIN) $(soak_flags)

# The default system under test: indigo's relay at the version pinned in
# go.mod, built static into a FROM scratch image tagged with that version.
# Kept and reused while the version is unchanged (REBUILD=true forces it).
relay-image: build
	$(BIN) relay-image

fakepds: build
	$(BIN) fakepds

# Remove containers a crashed run left behind.
clean-containers:
	-docker ps -aq --filter label=org.relaysoak=true | xargs -r docker rm -f
	-docker network ls -q --filter label=org.relaysoak=true | xargs -r docker network rm
