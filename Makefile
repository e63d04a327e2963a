# db-pool: `make demo` and `make test` do all set-up on a fresh Debian
# machine (system packages with apt-get, Python packages into .venv), both
# idempotently.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PATH := $(CURDIR)/$(BIN):$(PATH)

# Debian packages the build and the tests need: compilers and client
# libraries, plus the real servers and clients the tests drive (PostgreSQL's
# initdb/pg_ctl, FreeTDS's tsql and freebcp, openssl for test certificates).
APT_PACKAGES := gcc pkg-config libsqlite3-dev libpq-dev postgresql postgresql-client \
                freetds-bin freetds-dev openssl python3-dev python3-venv valgrind pgbouncer
PY_PACKAGES := meson meson-python ninja polars pyarrow numpy pytest pytest-asyncio mypy \
               "psycopg[binary]" python-tds pyopenssl
# Peers for `make bench` only.
BENCH_PACKAGES := connectorx asyncpg psycopg-pool adbc-driver-postgresql adbc-driver-sqlite aiosqlite \
                  matplotlib

.PHONY: all demo test setup system-deps venv install c-test c-test-asan c-test-valgrind \
        py-test typecheck tds-server bench bench-deps bench-quick fuzz clean

all: install

demo: install
	$(PY) examples/quickstart.py

test: install c-test py-test typecheck

setup: install

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

venv: system-deps $(BIN)/python
	@$(PY) -c "import mesonpy, polars, pyarrow, numpy, pytest, pytest_asyncio, mypy, psycopg, pytds, OpenSSL" \
	    2>/dev/null || $(PY) -m pip install -q $(PY_PACKAGES)

# Editable install: importing db_pool rebuilds the extension when C changed.
install: venv
	@$(PY) -c "import db_pool" 2>/dev/null \
	    || $(PY) -m pip install -q --no-build-isolation -e . -Cbuild-dir=build/python
	@$(PY) -c "import db_pool; print('db_pool', db_pool.__version__, 'engines:', db_pool.engines())"

# C unit tests under AddressSanitizer + UBSan, then under valgrind.
c-test: c-test-asan c-test-valgrind

build/asan/build.ninja: | venv
	meson setup build/asan -Dpython=false -Dtests=true -Dbuildtype=debug \
	    -Db_sanitize=address,undefined -Db_lundef=false

build/plain/build.ninja: | venv
	meson setup build/plain -Dpython=false -Dtests=true -Dbuildtype=debug

c-test-asan: build/asan/build.ninja
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 meson test -C build/asan --print-errorlogs

c-test-valgrind: build/plain/build.ninja
	meson test -C build/plain --print-errorlogs --timeout-multiplier 10 \
	    --wrapper 'valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect --quiet'

py-test: install
	$(PY) -m pytest -q tests/python

typecheck: install
	$(BIN)/mypy --strict python/db_pool examples

# The TDS 7.4 test server on 127.0.0.1:$(PORT) (login sa / db-pool-test).
PORT ?= 1433
tds-server: venv
	$(PY) -m tests.tds_server --port $(PORT) $(TDS_SERVER_ARGS)

# Side-by-side benchmarks; writes docs/benchmarks.md and its plots.
bench-deps: install
	@$(PY) -c "import connectorx, asyncpg, psycopg_pool, adbc_driver_postgresql, adbc_driver_sqlite, aiosqlite, matplotlib" \
	    2>/dev/null || $(PY) -m pip install -q $(BENCH_PACKAGES)

bench: bench-deps
	$(PY) bench/run.py $(BENCH_ARGS)

bench-quick: bench-deps
	$(PY) bench/run.py --quick --out build/bench/benchmarks.md

# libFuzzer on the decoders of bytes from the network: PostgreSQL's binary
# values and COPY framing (clang from Debian). FUZZ_SECONDS per harness.
FUZZ_SECONDS ?= 300
FUZZ_SOURCES := src/core/column.c src/core/result.c src/core/alloc.c src/core/error.c \
                src/core/textparse.c src/drivers/pg/pg_types.c src/drivers/pg/pg_copy.c
fuzz:
	@command -v clang >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get install -y -q clang; }
	for h in pg_types pg_copy; do \
	    mkdir -p build/fuzz-corpus-$$h && \
	    clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	        -fno-sanitize-recover=all -Iinclude -Isrc/core -Isrc/drivers/pg $(FUZZ_SOURCES) \
	        tests/fuzz/fuzz_$$h.c -o build/fuzz_$$h && \
	    build/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build/fuzz-corpus-$$h \
	        || exit 1; \
	done

clean:
	rm -rf build
