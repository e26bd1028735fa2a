# Every command a developer needs, from the repository root.
# Needs Go; `make css` also needs Node.js and npm; `make up` needs Docker.

SERVICES   := api-server worker-server client-app
MODULES    := techlist api-server worker-server client-app e2e devstack bench
PACKAGES   := $(addprefix ./,$(addsuffix /...,$(MODULES)))
STATICCHECK_VERSION := v0.8.2
COMPOSE    ?= docker compose
GOTESTFLAGS ?=

.PHONY: dev build test fuzz bench lint css diagram up down clean dead-letters replay-dead-letters

## dev: build and run the three services together (Ctrl-C stops all); where
## no MySQL or Redis answers, bin/devstack stands in for it, in memory
dev: build
	@scripts/dev.sh

## build: build the three programs into bin/
build:
	go build -o bin/ $(addprefix ./,$(SERVICES))

## test: every test, with the race detector, on the real Redis and MySQL
test:
	go test -race -count=1 $(GOTESTFLAGS) $(PACKAGES)

## fuzz: run every fuzz target (func Fuzz...) for FUZZTIME each (default 10s); a crash fails, and
## the input that caused it is kept under the package's testdata/fuzz (scripts/fuzz.sh; it does not
## fail on Go 1.26's end-of-fuzztime race, golang/go#75804, when no failing input was written)
FUZZTIME ?= 10s
fuzz:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

## bench: the Go micro-benchmarks of the hot paths, then the harness (bench/): the built services
## on the real Redis and MySQL against baselines measured in the same run; one table, also written
## to bench/results/latest.json and latest.md (BENCHFLAGS=-quick for a short smoke run)
bench:
	go test -run='^$$' -bench=. -benchmem $(PACKAGES)
	go run ./bench $(BENCHFLAGS)

## lint: gofmt, go vet (also of the -tags notracing build the bench measures) and staticcheck
lint:
	@unformatted="$$(gofmt -l $(MODULES))"; if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	go vet $(PACKAGES)
	go vet -tags notracing ./techlist/... ./api-server/...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PACKAGES)

## css: rebuild the client-app's Tailwind CSS (commit the result)
css:
	cd client-app && npm ci --no-audit --no-fund && npm run css

## diagram: render assets/data-flow.dot to SVG and PNG (needs Graphviz)
diagram:
	dot -Tsvg assets/data-flow.dot -o assets/data-flow.svg
	dot -Tpng -Gdpi=110 assets/data-flow.dot -o assets/data-flow.png

## up: the whole stack with MySQL and Redis in Docker
up:
	$(COMPOSE) up --build

## down: stop the Docker stack
down:
	$(COMPOSE) down

## dead-letters: list the stream's dead letters (QUEUE_MODE=streams), as JSON lines
dead-letters: build
	cd worker-server && ../bin/worker-server -dead-letters list

## replay-dead-letters: put every dead letter back on the stream
replay-dead-letters: build
	cd worker-server && ../bin/worker-server -dead-letters replay

clean:
	rm -rf bin/
