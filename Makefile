# sync_resolve — PGXS build.
#
#   make && make install      build and install into the PostgreSQL found by pg_config
#   make test                 set up everything, run every pg_regress, isolation and pgTAP test
#   make demo                 set up everything, play the customer story in a throwaway cluster
#   make bench                benchmarks against plain PostgreSQL (not part of make test)

EXTENSION  = sync_resolve
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = sync_resolve
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard $(EXTENSION)--*--*.sql))

REGRESS = $(sort $(notdir $(basename $(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=$(EXTENSION) --inputdir=.
ISOLATION = $(sort $(notdir $(basename $(wildcard specs/*.spec))))
ISOLATION_OPTS = --load-extension=$(EXTENSION)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(EXTENSION).sql $(EXTENSION).control
	cp $< $@

.PHONY: test demo bench
test:
	bash test/run.sh

demo:
	bash demo/run.sh

bench:
	bash bench/run.sh

# every object depends on the shared headers
$(OBJS): $(wildcard src/*.h)
