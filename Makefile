# Two entry points, both self-installing on a fresh machine: `make run`, `make test`.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
# `make install` links the `peerweb` command here (a symlink into this checkout's .venv).
BINDIR ?= $(HOME)/.local/bin

.PHONY: run test lint bench install uninstall

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	@echo "peerweb is $(abspath $(VENV))/bin/peerweb; \`make install\` puts it on your PATH ($(BINDIR))"
	$(VENV)/bin/peerweb node --example

install: $(STAMP)
	mkdir -p $(BINDIR)
	ln -sfn $(abspath $(VENV))/bin/peerweb $(BINDIR)/peerweb
	@echo "installed $(BINDIR)/peerweb -> $(abspath $(VENV))/bin/peerweb"
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; *) echo "note: $(BINDIR) is not on your PATH;" \
	  "add it (e.g. in ~/.profile: export PATH=\"$(BINDIR):\$$PATH\")";; esac

uninstall:
	rm -f $(BINDIR)/peerweb

test: $(STAMP)
	bash tests/setup.sh
	$(VENV)/bin/python -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	bash bench/setup.sh
	$(VENV)/bin/python -m bench.all
