# Skiff's build and test entry points. The README's two commands use
# hack/setup.sh (which calls `make build`) and `make test`.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
K8S       := $(shell sed -n 's/^const Kubernetes = "\(.*\)"/\1/p' internal/version/version.go)
K8S_MINOR := $(word 2,$(subst ., ,$(K8S)))
LDFLAGS   := -X k8s.io/component-base/version.gitVersion=$(K8S) \
             -X k8s.io/component-base/version.gitMajor=1 \
             -X k8s.io/component-base/version.gitMinor=$(K8S_MINOR) \
             -X k8s.io/component-base/version.gitTreeState=clean \
             -X skiff.dev/skiff/internal/version.Version=$(VERSION)
TEST_FLAGS ?= -timeout 25m

.PHONY: build test vet fmt bench clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/skiff ./cmd/skiff
	ln -sf skiff bin/kubectl

test:
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...

fmt:
	gofmt -l -w cmd internal test bench

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
