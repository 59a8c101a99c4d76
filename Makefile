# Hookline's interface for people and CI: `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
# Every module of the workspace, as package patterns.
MODULES = $(shell $(GO) list -f '{{.Dir}}/...' -m)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## build every binary (the services, hookctl, devstack, hookstack, hookload) into bin/
	@$(GO) run ./cmd/hookstack build -o bin

.PHONY: settings-table
settings-table: build ## rewrite README.md's settings table from every binary's -h
	@bin/hookstack settings -bin bin -readme README.md

.PHONY: run
run: build ## run all of Hookline here: embedded Kafka, Redis and PostgreSQL unless KAFKA_BROKERS / REDIS_ADDR / HOOKLINE_POSTGRES_URL are set
	@bin/devstack

.PHONY: test
test: ## every test with -race, against real Kafka, Redis, PostgreSQL, schema registry and SMTP server (started here, stopped after)
	@deploy/scripts/test.sh $(MODULES)

.PHONY: console-screenshots
console-screenshots: ## the console's browser tests against real Kafka, Redis and PostgreSQL, saving docs/screenshots/ (needs chromium: deploy/scripts/chromium.sh ensure)
	@HOOKLINE_TEST_GO_ONLY=1 HOOKLINE_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/screenshots deploy/scripts/test.sh -run 'TestConsole(History)?InABrowser' ./loadtest/e2e/

.PHONY: test-unit
test-unit: ## the tests that need no servers (integration tests skip)
	$(GO) test -race -count=1 $(MODULES)

.PHONY: bench-go
bench-go: ## Go micro-benchmarks of the hot paths
	$(GO) test -run='^$$' -bench=. -benchmem $(MODULES)

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(MODULES)

.PHONY: fmt
fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

.PHONY: infra-up
infra-up: ## start real Kafka (1 broker), Redis and PostgreSQL on 127.0.0.1
	@deploy/scripts/infra.sh up

.PHONY: infra-up-3
infra-up-3: ## start real Kafka with 3 brokers, Redis and PostgreSQL
	@deploy/scripts/infra.sh up 3

.PHONY: infra-down
infra-down: ## stop Kafka, Redis and PostgreSQL (data kept)
	@deploy/scripts/infra.sh down

.PHONY: infra-reset
infra-reset: ## stop Kafka, Redis and PostgreSQL and wipe their data
	@deploy/scripts/infra.sh reset

.PHONY: registry-up
registry-up: ## start a Confluent-compatible schema registry (Apicurio) on 127.0.0.1:8081
	@deploy/scripts/registry.sh up

.PHONY: registry-down
registry-down: ## stop the schema registry (its schemas are in memory: gone)
	@deploy/scripts/registry.sh down

.PHONY: mailpit-up
mailpit-up: ## start mailpit, a real SMTP server with a web UI, on 127.0.0.1:1025 (SMTP) and :8025 (UI)
	@deploy/scripts/mailpit.sh up

.PHONY: mailpit-down
mailpit-down: ## stop mailpit (its mail is gone)
	@deploy/scripts/mailpit.sh down

.PHONY: clean-data
clean-data: ## wipe the embedded stack's data (.hookline/)
	rm -rf .hookline

# Load tests (loadtest/): pass more hookload flags with BENCH_FLAGS, e.g.
# make bench-quick BENCH_FLAGS="-scenarios fanout,latency".
.PHONY: bench
bench: ## every load scenario at full size, with the ceiling ratio of each: markdown table, JSON in results/
	@loadtest/bench.sh -size full $(BENCH_FLAGS)

.PHONY: bench-quick
bench-quick: ## every load scenario, small (a few minutes)
	@loadtest/bench.sh -size quick $(BENCH_FLAGS)

# Not part of `make test`: the first run generates 10 million attempts
# (minutes), kept for the next runs in the database bench_logstore_10000000.
.PHONY: bench-logstore
bench-logstore: ## delivery-history store on a real PostgreSQL: write throughput, queries over 10M attempts, storage, plans; results/logstore-bench.txt
	@deploy/scripts/bench-logstore.sh

# Not part of `make test`: it takes 5 to 6 minutes of a 2-core machine.
.PHONY: test-faults
test-faults: ## fault suite on private Kafka and Redis: kill services, Redis and brokers, sink down 30s, scale out and in, poison events; nothing lost
	@loadtest/bench.sh -faults -size full $(BENCH_FLAGS)

.PHONY: test-deploy
test-deploy: ## only the deploy/ checks (kustomize render, deployments vs the services' settings, dashboards and alerts, Avro decode and signatures by non-Go tools, OpenAPI fuzzing)
	@for t in kustomize_test.sh settings_test.sh monitoring_test.sh avro_decode_test.sh signature_libs_test.sh openapi_fuzz_test.sh; do deploy/tests/$$t || exit 1; done
