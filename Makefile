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
# initdb/pg_ctl, FreeTDS's tsql and freebcp, openssl for test certificates,
# MariaDB's mariadb-install-db/mariadbd/mariadb client and Connector/C,
# Redis' redis-server/redis-cli and hiredis).
APT_PACKAGES := gcc pkg-config libsqlite3-dev libpq-dev postgresql postgresql-client \
                freetds-bin freetds-dev openssl python3-dev python3-venv valgrind pgbouncer \
                mariadb-server mariadb-client libmariadb-dev redis-server redis-tools libhiredis-dev libssl-dev
PY_PACKAGES := meson meson-python ninja polars pyarrow numpy pytest pytest-asyncio mypy \
               "psycopg[binary]" python-tds pymysql pyopenssl prometheus-client playwright jsonschema \
               opentelemetry-api opentelemetry-sdk pyyaml redis
# Peers for `make bench` only.
BENCH_PACKAGES := connectorx asyncpg psycopg-pool adbc-driver-postgresql adbc-driver-sqlite aiosqlite \
                  matplotlib asyncmy pymysql mysqlclient redis hiredis

.PHONY: all demo test setup system-deps browser-deps venv install c-test c-test-asan c-test-valgrind \
        py-test typecheck tds-server bench bench-deps bench-quick fuzz fuzz-deps fuzz-build \
        fuzz-brief clean

all: install

demo: install
	$(PY) examples/quickstart.py

test: install c-test py-test typecheck fuzz-brief

setup: install

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

# Debian's Chromium for the dashboard's browser test (Playwright drives it;
# no browser download): a machine without it skips that one test; only
# `make test` needs it.
browser-deps:
	@if ! dpkg-query -W -f='$${Status}\n' chromium 2>/dev/null | grep -q 'install ok installed'; then \
	    if command -v apt-get >/dev/null 2>&1; then \
	        SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	        echo "installing Debian packages: chromium"; \
	        ( $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium ) \
	            || echo "chromium could not be installed: the dashboard browser test will be skipped"; \
	    else \
	        echo "no apt-get here: chromium not installed, the dashboard browser test will be skipped"; \
	    fi; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

venv: system-deps $(BIN)/python
	@$(PY) -c "import mesonpy, polars, pyarrow, numpy, pytest, pytest_asyncio, mypy, psycopg, pytds, pymysql, OpenSSL, prometheus_client, playwright, jsonschema, opentelemetry.sdk.metrics, yaml, redis" \
	    2>/dev/null || $(PY) -m pip install -q $(PY_PACKAGES)

# Editable install: importing db_pool rebuilds the extension when C changed.
# Reinstalled also when the console script is missing (a .venv made before
# [project.scripts] had db-pool).
install: venv
	@if ! $(PY) -c "import db_pool" 2>/dev/null || [ ! -x $(BIN)/db-pool ]; then \
	    $(PY) -m pip install -q --no-build-isolation -e . -Cbuild-dir=build/python; \
	fi
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
	    --wrapper 'valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect --quiet --fair-sched=yes'

py-test: install browser-deps
	$(PY) -m pytest -q tests/python

typecheck: install
	$(BIN)/mypy --strict python/db_pool examples

# The TDS 7.4 test server on 127.0.0.1:$(PORT) (login sa / db-pool-test).
PORT ?= 1433
tds-server: venv
	$(PY) -m tests.tds_server --port $(PORT) $(TDS_SERVER_ARGS)

# Side-by-side benchmarks; writes docs/benchmarks.md and its plots.
bench-deps: install
	@$(PY) -c "import connectorx, asyncpg, psycopg_pool, adbc_driver_postgresql, adbc_driver_sqlite, aiosqlite, matplotlib, asyncmy, pymysql, MySQLdb, redis, hiredis" \
	    2>/dev/null || $(PY) -m pip install -q $(BENCH_PACKAGES)

bench: bench-deps
	$(PY) bench/run.py $(BENCH_ARGS)

bench-quick: bench-deps
	$(PY) bench/run.py --quick --out build/bench/benchmarks.md

# libFuzzer (clang, with ASan and UBSan) on every parser of bytes we do not
# control: PostgreSQL's binary values and COPY framing, SQL Server's values
# from db-lib, SQLite's stored values and declared types, the text parsers,
# the engines' settings and URLs, the Arrow arrays write_frame reads, and
# the conversions of parameters and frame cells for SQL Server and of frame
# cells into PostgreSQL's COPY binary format, and MySQL's binary-protocol
# values as MariaDB Connector/C hands them over.
# `make fuzz` runs each harness FUZZ_SECONDS (one process, one after the
# other), keeping its corpus in build/fuzz/corpus/<name>; `make fuzz-brief`
# gives each 10 s (part of `make test`). A finding stops the run and leaves
# the input in build/fuzz/ (replay: build/fuzz/fuzz_<name> <file>); inputs
# that once found a bug are kept in tests/fuzz/corpus/<name> and run first.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS := pg_types pg_copy pg_copy_binary textparse sqlite_values tds_types tds_params tds_bulk arrow_input \
                settings mysql_types redis_reply
FUZZ_TEXT := src/core/alloc.c src/core/error.c src/core/textparse.c
FUZZ_COLUMN := $(FUZZ_TEXT) src/core/column.c src/core/column_export.c
FUZZ_SRC_pg_types := $(FUZZ_COLUMN) src/drivers/pg/pg_types.c src/drivers/pg/pg_numeric.c
FUZZ_SRC_pg_copy := $(FUZZ_COLUMN) src/core/result.c src/drivers/pg/pg_types.c src/drivers/pg/pg_numeric.c src/drivers/pg/pg_copy.c
FUZZ_SRC_pg_copy_binary := $(FUZZ_COLUMN) src/core/textbuf.c src/drivers/pg/pg_types.c src/drivers/pg/pg_numeric.c \
                           src/drivers/pg/pg_copy_binary.c
FUZZ_SRC_textparse := $(FUZZ_TEXT)
# sqlite_read.c is included by its harness, to reach its static functions
FUZZ_SRC_sqlite_values := $(FUZZ_COLUMN) src/core/result.c src/core/params.c src/core/textbuf.c \
                          src/core/arrow_input.c src/core/clock.c $(filter-out %/sqlite_read.c, \
                          $(wildcard src/drivers/sqlite/*.c))
FUZZ_SRC_tds_types := $(FUZZ_COLUMN) src/core/params.c src/drivers/tds/tds_types.c
FUZZ_SRC_tds_params := $(FUZZ_SRC_tds_types)
FUZZ_SRC_arrow_input := src/core/alloc.c src/core/error.c src/core/arrow_input.c
FUZZ_SRC_mysql_types := $(FUZZ_COLUMN) src/core/params.c src/drivers/mysql/mysql_types.c
FUZZ_SRC_redis_reply := $(FUZZ_COLUMN) src/core/reply.c src/core/clock.c \
                        src/core/tcp.c src/drivers/redis/redis_io.c src/drivers/redis/redis_tls.c \
                        src/drivers/redis/redis_values.c
FUZZ_LIBS_redis_reply := -lhiredis -lssl -lcrypto
FUZZ_SRC_settings := $(wildcard src/core/*.c src/drivers/*/*.c)
# tds_bulk.c is included by its harness too
FUZZ_SRC_tds_bulk := $(filter-out src/drivers/tds/tds_bulk.c,$(FUZZ_SRC_settings))
FUZZ_LIBS_sqlite_values := -lsqlite3 -lm
FUZZ_LIBS_tds_types := -lsybdb
FUZZ_LIBS_tds_params := -lsybdb
FUZZ_LIBS_settings := -lsqlite3 -lpq -lsybdb -lmariadb -lhiredis -lssl -lcrypto -lpthread -lm
FUZZ_LIBS_tds_bulk := $(FUZZ_LIBS_settings)
FUZZ_CC := clang
# (`=`: libpq's flags are asked for once fuzz-deps has installed it)
FUZZ_CFLAGS = -std=gnu11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -Wno-missing-field-initializers \
              -fsanitize=address,undefined -fno-sanitize-recover=all \
              -Iinclude -Isrc/core -Isrc/drivers/pg -Isrc/drivers/tds -Isrc/drivers/mysql \
              -Isrc/drivers/redis \
              $(shell pkg-config --cflags libpq libmariadb) \
              -DDBP_HAVE_SQLITE=1 -DDBP_HAVE_PG=1 -DDBP_HAVE_MSSQL=1 -DDBP_HAVE_MYSQL=1 \
              -DDBP_HAVE_REDIS=1
FUZZ_BINS := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

fuzz-deps: system-deps
	@command -v $(FUZZ_CC) >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q clang; }

# Sources compile once each (instrumented for coverage), harnesses link them.
build/fuzz/obj/%.o: %.c | fuzz-deps
	@mkdir -p $(dir $@)
	@echo "fuzz: compiling $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

define FUZZ_HARNESS
build/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1):%.c=build/fuzz/obj/%.o) | fuzz-deps
	@echo "fuzz: linking $$@"
	@$$(FUZZ_CC) $$(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP $$< $$(filter %.o,$$^) \
	    $(FUZZ_LIBS_$(1)) -o $$@
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_HARNESS,$(t))))
-include $(wildcard build/fuzz/*.d build/fuzz/obj/*/*.d build/fuzz/obj/*/*/*.d \
                    build/fuzz/obj/*/*/*/*.d)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p build/fuzz/corpus/$$t && echo "== fuzz_$$t for $(FUZZ_SECONDS) s" && \
	    build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 \
	        -artifact_prefix=build/fuzz/ $$( [ -f tests/fuzz/$$t.dict ] && echo -dict=tests/fuzz/$$t.dict ) \
	        build/fuzz/corpus/$$t $$( [ -d tests/fuzz/corpus/$$t ] && echo tests/fuzz/corpus/$$t ) \
	        2>build/fuzz/fuzz_$$t.log \
	    && grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' \
	        build/fuzz/fuzz_$$t.log \
	    || { tail -n 60 build/fuzz/fuzz_$$t.log; echo "fuzz_$$t found a bug: see above"; exit 1; }; \
	done

fuzz-brief:
	$(MAKE) fuzz FUZZ_SECONDS=10

clean:
	rm -rf build
