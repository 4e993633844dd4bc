# zocker-reconcile. `make test` is the README's test command; `make demo` runs
# the service on the Linux demo manifests.
GO      ?= go
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/zocker-reconcile
SUPBIN  := bin/zocker-supervise

.PHONY: all build test bench demo demo-clean freebsd install clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/zocker-reconcile
	CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $(SUPBIN) ./cmd/zocker-supervise

test:
	scripts/test.sh

bench:
	scripts/bench.sh

freebsd:
	GOOS=freebsd GOARCH=amd64 $(GO) build -ldflags '$(LDFLAGS)' -o bin/freebsd-amd64/zocker-reconcile ./cmd/zocker-reconcile
	CGO_ENABLED=0 GOOS=freebsd GOARCH=amd64 $(GO) build -ldflags '-s -w' -o bin/freebsd-amd64/zocker-supervise ./cmd/zocker-supervise

demo: build
	scripts/demo.sh

demo-clean:
	scripts/demo.sh clean

# Installs the binaries (zocker-supervise beside zocker-reconcile: the service
# starts it for every container), the rc.d script, the newsyslog entry and an empty
# manifest directory. DESTDIR is honoured for packaging.
install:
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/etc/rc.d $(DESTDIR)$(PREFIX)/etc/newsyslog.conf.d
	install -d -m 0755 $(DESTDIR)$(PREFIX)/etc/zocker.d
	install -m 0555 $(BIN) $(DESTDIR)$(PREFIX)/sbin/zocker-reconcile
	install -m 0555 $(SUPBIN) $(DESTDIR)$(PREFIX)/sbin/zocker-supervise
	install -m 0555 rc.d/zocker_reconcile $(DESTDIR)$(PREFIX)/etc/rc.d/zocker_reconcile
	install -m 0644 rc.d/newsyslog-zocker_reconcile.conf $(DESTDIR)$(PREFIX)/etc/newsyslog.conf.d/zocker_reconcile.conf
	install -m 0644 rc.d/zocker.d-README $(DESTDIR)$(PREFIX)/etc/zocker.d/README

clean:
	rm -rf bin
