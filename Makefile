# relaysoak: see README.md. Every soak setting below is also a flag of
# `relaysoak soak` (HOSTS is --hosts) and an environment variable read by
# relaysoak itself (RELAYSOAK_HOSTS).
GO ?= go
BIN := bin/relaysoak

# Soak settings become flags only when given on make's command line
# (`make soak HOSTS=2750`): a HOSTS or RATE that happens to be in the
# shell's environment never changes a run. RELAYSOAK_* variables in the
# environment are read by relaysoak, under the command line.
SOAK_VARS := HOSTS RATE DURATION MEM_LIMIT RELAY_IMAGE RELAY_PROFILE SAMPLE_EVERY JUDGE_WINDOW STOP_GRACE RESTART METRICS_LISTEN ID RUNS_DIR CPUS COMPARE_PROFILE COMPARE_MEM_LIMIT \
	CAPTURE CAPTURE_MODE WEIGHTS ZIPF_S RAMP_UP BURST_FACTOR BURST_LENGTH BURST_EVERY OUTAGE_EVERY OUTAGE_LENGTH RELAY_GIVE_UP SEED REPEAT \
	CHURN_IDENTITY CHURN_KEY_ROTATION CHURN_NEW_ACCOUNT CHURN_MOVE CHURN_STATUS CHURN_SYNC NO_CHURN \
	CONSUMERS CONSUMER_CHURN CONSUMER_RESUME CONSUMER_OLD_CURSOR CONSUMER_SLOW CONSUMER_VANISH CONSUMER_STUCK CONSUMER_SLOW_FOR CONSUMER_IDENTITIES CONSUMER_IDENTITY_CHURN \
	ATTRIBUTE_PHASE ATTRIBUTE_WARMUP ATTRIBUTE_NOISE ATTRIBUTE_DETECT ATTRIBUTE_MAX \
	MIN_DELIVERY DARK_AFTER FLEET_HISTORY
# A bisect's own settings, beside the soak's (its flags --main, --build-cmd…).
BISECT_VARS := MAIN BUILD_CMD STEP_LENGTH MAX_STEP
given = $(filter command line,$(origin $(1)))
flag_of = --$(subst _,-,$(shell echo $(1) | tr A-Z a-z))
soak_flags = $(foreach v,$(SOAK_VARS),$(if $(call given,$(v)),$(call flag_of,$(v))='$($(v))'))
bisect_flags = $(foreach v,$(BISECT_VARS),$(if $(call given,$(v)),$(call flag_of,$(v))='$($(v))'))
# default_flag VAR,VALUE: a preset's default, unless VAR is on the command
# line or RELAYSOAK_VAR in the environment (both win over it).
default_flag = $(if $(or $(call given,$(1)),$(RELAYSOAK_$(1))),,$(call flag_of,$(1))=$(2))

.PHONY: build test test-vet test-unit test-smoke test-e2e test-long soak soak-ab soak-attribute soak-diag soak-ci bisect relay-image fakepds clean-containers compose-build compose-up compose-down

build:
	$(GO) build -o $(BIN) ./cmd/relaysoak

# Test tiers, chosen by the test's name (TestTiers in cmd/relaysoak checks
# that every test is in exactly one and that each tier's packages are
# listed here):
#   TestSmoke…  containers, in `make test`: indigo built, started, fed and
#               judged; one positive control; the CLI contract; compose's file
#   TestE2E…    containers, `make test-e2e`: every other end-to-end check
#   TestLong…   `make test-long`, 10 minutes and more (needs RELAYSOAK_LONG=1;
#               RELAYSOAK_TEST_RUNS=DIR keeps the controls' run directories)
#   the rest    no Docker: all packages at once, with DOCKER_HOST pointing
#               at nothing, so a container test in this tier fails loudly
# Container tiers run one package at a time (-p 1): two relays on 2 cores
# would compete and make each other's numbers meaningless. The control
# target's own tests are named: ./... leaves testdata out.
CONTAINER_TESTS := ^Test(Smoke|E2E|Long)
SMOKE_RUN := ^TestSmoke
SMOKE_PKGS := ./soak ./cmd/relaysoak
E2E_RUN := ^TestE2E
E2E_PKGS := ./relay ./soak ./soak/harness ./soak/bisect ./cmd/relaysoak
UNIT_PKGS := ./... ./soak/testdata/testrelay
NO_DOCKER := unix:///nonexistent/the-docker-free-tier-has-no-docker.sock

# The README's test command and CI's first: ten minutes at most.
test: test-vet test-unit test-smoke

test-vet:
	$(GO) vet $(UNIT_PKGS)

test-unit:
	DOCKER_HOST=$(NO_DOCKER) $(GO) test -count=1 -timeout 8m -skip '$(CONTAINER_TESTS)' $(UNIT_PKGS)

test-smoke:
	$(GO) test -p 1 -count=1 -timeout 9m -run '$(SMOKE_RUN)' $(SMOKE_PKGS)

# The rest of the container tests (18 minutes at most); CI runs it after
# `make test`.
test-e2e:
	$(GO) test -p 1 -count=1 -timeout 25m -run '$(E2E_RUN)' $(E2E_PKGS)

# Runs of 10 minutes and more (production shape); the nightly workflow runs
# it in parts (LONG_RUN picks tests, LONG_PKGS packages) to fit its jobs.
LONG_RUN := ^TestLong
LONG_PKGS := ./...
LONG_TIMEOUT := 240m
test-long:
	RELAYSOAK_LONG=1 $(GO) test -p 1 -timeout $(LONG_TIMEOUT) -count=1 -run '$(LONG_RUN)' -v $(LONG_PKGS)

# A soak on sensible defaults (50 hosts, 50 frames/s, 30 minutes, indigo's
# relay built here), ending with a verdict and runs/<id>/report.md.
# Production shape: make soak HOSTS=2750 RATE=700 DURATION=2h
soak: build
	$(BIN) soak $(soak_flags)

# Two builds under the same traffic, in one run, the difference judged:
# make soak-ab B=myrelay:new [A=myrelay:old] (A defaults to indigo built
# here; B=indigo is that too). Each relay gets its own container and data;
# CPUS=1 limits each to a core. Exit status: 1 when B grows materially more.
soak-ab: build
	$(BIN) soak $(soak_flags) $(if $(call given,A),--relay-image='$(A)') --compare='$(if $(call given,B),$(B),$(error B=<image> is required: make soak-ab B=myrelay:new [A=myrelay:old]))'

# Which load makes the relay grow, in bytes per event: frames, DID
# resolutions, host reconnects and consumer reconnects raised one at a
# time on a plan that is printed first (at most 100 minutes), then
# attribution.json, a section of the report and a plot per factor. The
# factors are raised ×2.5 at most, so the base load is reduced by default:
# make soak-attribute [HOSTS=500 RATE=200]
soak-attribute: build
	$(BIN) soak --attribute $(call default_flag,HOSTS,500) $(call default_flag,RATE,200) $(soak_flags)

# A diagnostic build (leak tracking costs it memory and speed, e.g. a Zig
# relay built with -Duse_gpa=true): less load, more memory, and a long stop
# grace so the relay, stopped by SIGTERM, prints its whole leak report into
# relay.log. Each default gives way to the command line or RELAYSOAK_*:
# make soak-diag RELAY_IMAGE=myrelay:gpa HOSTS=200
soak-diag: build
	$(BIN) soak $(call default_flag,HOSTS,500) $(call default_flag,RATE,100) $(call default_flag,MEM_LIMIT,8GiB) $(call default_flag,STOP_GRACE,5m) $(soak_flags)

# The first commit of a relay's history that keeps more than a good one:
# an A/B soak per step (A the good build, B the step's), each commit built
# from SOURCE (a git checkout, read only) into an image cached by commit.
# Every soak setting applies (REPEAT=runs/<nightly> takes a LEAK run's);
# DURATION is step 0's length, STEP_LENGTH the others' (default: the
# shortest that resolves step 0's difference). MAIN or BUILD_CMD say how to
# build a relay whose profile does not:
# make bisect SOURCE=../indigo GOOD=v0.1.0 BAD=main [REPEAT=runs/ci-…]
bisect: build
	$(BIN) bisect --relay-source='$(if $(call given,SOURCE),$(SOURCE),$(error SOURCE=<relay checkout> is required))' \
		--good='$(if $(call given,GOOD),$(GOOD),$(error GOOD=<commit> is required))' \
		--bad='$(if $(call given,BAD),$(BAD),$(error BAD=<commit> is required))' $(soak_flags) $(bisect_flags)

# What the nightly workflow runs, and anyone can locally: a soak with a known
# ID (ID=… or RELAYSOAK_ID, default ci-<UTC time>), its headline and report in
# $$GITHUB_STEP_SUMMARY when set, junit.xml copied to $(JUNIT_DIR), and an
# exit status for CI: LEAK and CRASHED fail, INCONCLUSIVE warns (exit 0).
JUNIT_DIR ?= test-results
soak-ci: build
	JUNIT_DIR=$(JUNIT_DIR) $(if $(call given,ID),RELAYSOAK_ID='$(ID)') $(if $(call given,RUNS_DIR),RELAYSOAK_RUNS_DIR='$(RUNS_DIR)') \
		scripts/soak-ci.sh $(BIN) $(soak_flags)

# The default system under test: indigo's relay at the version pinned in
# go.mod, built static into a FROM scratch image tagged with that version.
# Kept and reused while the version is unchanged (REBUILD=true forces it).
relay-image: build
	$(BIN) relay-image

fakepds: build
	$(BIN) fakepds

# docker-compose.yml's parts: the rig's static binary (cgo for the relay's
# sqlite schema, hence the static link) and the default relay's image.
# HOSTS, RATE, DURATION, MEM_LIMIT (compose's form: 4g), RELAY_IMAGE,
# RUNS_DIR, ID pass through: docker-compose.yml reads them as
# ${RELAYSOAK_VAR:-default}, and make passes those given on its command line
# (RELAYSOAK_* in the environment reach compose as they are).
COMPOSE_VARS := HOSTS RATE DURATION SAMPLE_EVERY MEM_LIMIT STOP_GRACE RELAY_IMAGE RUNS_DIR ID SUBNET FLEET_IP
COMPOSE := $(foreach v,$(COMPOSE_VARS),$(if $(call given,$(v)),RELAYSOAK_$(v)='$($(v))')) $(shell docker compose version >/dev/null 2>&1 && echo docker compose || echo docker-compose)
compose-build: build
	CGO_ENABLED=1 $(GO) build -tags netgo,osusergo,sqlite_omit_load_extension,timetzdata \
		-ldflags '-s -w -linkmode external -extldflags -static' -o bin/compose/relaysoak ./cmd/relaysoak
	$(BIN) relay-image

# In three steps because --exit-code-from aborts on any exit, the onboarding
# one-shot's included: relay (after onboarding), then the soak in the
# foreground, then the relay stopped with its grace; the soak's status is make's.
compose-up: compose-build
	$(COMPOSE) build
	$(COMPOSE) up -d relay
	$(COMPOSE) up --no-deps --exit-code-from soak soak; s=$$?; $(COMPOSE) stop relay; exit $$s

compose-down:
	$(COMPOSE) down --volumes

# Remove containers a crashed run left behind.
clean-containers:
	-docker ps -aq --filter label=org.relaysoak=true | xargs -r docker rm -f
	-docker network ls -q --filter label=org.relaysoak=true | xargs -r docker network rm
