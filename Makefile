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

.PHONY: build examples demo test test-tools vet fmt bench clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/skiff ./cmd/skiff
	ln -sf skiff bin/kubectl
	CGO_ENABLED=1 $(GO) build -tags "seccomp runc_nocriu" -o bin/skiff-shim ./cmd/skiff-shim
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/skiff-proxy ./cmd/skiff-proxy

EXAMPLES := hello productms productreviewms ui loadgen

# The example apps, static, beside their Dockerfiles (FROM scratch).
examples:
	for app in $(EXAMPLES); do \
	  CGO_ENABLED=0 $(GO) build -trimpath -ldflags=-s -o examples/$$app/$$app ./examples/$$app || exit 1; \
	done

# Builds every example image, pushes it to the embedded registry and
# deploys the apps on the running cluster (hack/setup.sh started it).
demo: build examples
	examples/demo.sh

# Tools some tests drive as real peers, and what building the container
# side needs (command:Debian package); installed when missing and root,
# otherwise those tests skip with a message.
TEST_TOOLS := podman:podman busybox:busybox-static docker:docker.io \
              /usr/include/seccomp.h:libseccomp-dev nft:nftables hyperfine:hyperfine

# test/e2e runs the built binary, which go test's cache cannot see: never
# reuse its cached result.
test: test-tools
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) $$($(GO) list ./... | grep -v /test/e2e)
	$(GO) test -count=1 $(TEST_FLAGS) ./test/e2e/

test-tools:
	@for tp in $(TEST_TOOLS); do \
	  t=$${tp%%:*}; p=$${tp#*:}; \
	  { [ -e "$$t" ] || command -v $$t >/dev/null 2>&1; } && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $$p for the tests"; \
	    (apt-get install -y -qq $$p >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $$p >/dev/null 2>&1)) || echo "could not install $$p: its tests will skip"; \
	  fi; \
	done

fmt:
	gofmt -l -w cmd internal test bench

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
