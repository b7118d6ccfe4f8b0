# ztm — make targets. `make test` is what CI runs (.ci/run); it installs the
# system packages the tests need when they are missing.

SHELL       := /bin/bash
GO          ?= go
# Benchmarks: which ones (a -bench regexp), how long each, how many rounds
# (one `go test` over every package each; a ratio is the median over the
# rounds of raw/ours, each pair measured back to back in one round).
BENCH       ?= .
BENCHTIME   ?= 1s
BENCHROUNDS ?= 3
BENCHPKGS   ?= ./...
# Fuzzing: how long each Fuzz target runs under `make fuzz`.
FUZZTIME    ?= 10s
FUZZPKGS    ?= ./...
# staticcheck, pinned.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Whole-suite bound; the suite takes a few minutes on 2 cores.
TESTTIMEOUT ?= 20m

.PHONY: all deps test vet fuzz lint bench clean

all: test

deps:
	@bash scripts/install-deps.sh

vet:
	$(GO) vet ./...

test: deps vet
	@# A jig cross-compiled without cgo must still build (the PKCS#11
	@# backend then explains at run time that it needs cgo).
	CGO_ENABLED=0 $(GO) build ./...
	$(GO) test -race -count=1 -timeout $(TESTTIMEOUT) ./...
	@# Test-only nested modules: their dependencies (zlint, zcrypto) stay
	@# out of the graph a user's `go mod tidy` downloads.
	cd internal/zlinttest && $(GO) vet ./... && $(GO) test -race -count=1 -timeout $(TESTTIMEOUT) ./...

fuzz: deps
	@bash scripts/fuzz.sh "$(FUZZTIME)" $(FUZZPKGS)

lint:
	$(GO) run $(STATICCHECK) ./...

bench: deps
	@set -o pipefail; \
	for r in $$(seq $(BENCHROUNDS)); do \
		echo "round: $$r"; \
		$(GO) test -run '^$$' -bench '$(value BENCH)' -benchtime $(BENCHTIME) -count 1 $(BENCHPKGS) || exit 1; \
	done | tee bench.txt | $(GO) run ./internal/benchratio

clean:
	rm -f bench.txt
