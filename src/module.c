/*-------------------------------------------------------------------------
 *
 * module.c
 *		Module load, GUCs, and the switch to the extension owner for writes
 *		to sync_resolve's internal tables.
 *
 * The internal tables (shadows, history, review queue) are owned by the
 * extension owner and not writable by ordinary roles.  apply() and the
 * triggers read and write the tracked table as the calling user, so that
 * the table's own privileges and row security apply, and switch to the
 * extension owner only around statements on internal tables, with
 * search_path pinned to pg_catalog, pg_temp so that no object of the
 * caller's is picked up.  No user code runs while switched: custom
 * functions, input functions, equality and the tracked table's own
 * triggers all run as the caller.  An error while switched is safe:
 * transaction and subtransaction abort restore the user id and the GUCs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/guc.h"
#include "utils/resowner.h"

#include "sync_resolve.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* GUC variables */
int			sr_clock_skew_ms = 0;
char	   *sr_source_guc = NULL;
bool		sr_enforce_ownership = false;

static bool
check_source(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;

	if (s == NULL || s[0] == '\0')
		return true;
	if (strlen(s) >= NAMEDATALEN)
	{
		GUC_check_errdetail("A system name is at most %d bytes.", NAMEDATALEN - 1);
		return false;
	}
	for (; *s; s++)
	{
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			  (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
		{
			GUC_check_errdetail("A system name has only letters, digits, underscores, dots and hyphens.");
			return false;
		}
	}
	return true;
}

void
_PG_init(void)
{
	DefineCustomIntVariable("sync_resolve.clock_skew",
							"Change times this close together count as a tie under latest and earliest.",
							"A tie is broken by system priority, then by system name.",
							&sr_clock_skew_ms,
							0, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("sync_resolve.source",
							   "The system on whose behalf this session writes tracked tables.",
							   "Empty means the writes are local.",
							   &sr_source_guc,
							   "",
							   PGC_USERSET,
							   0,
							   check_source, NULL, NULL);

	DefineCustomBoolVariable("sync_resolve.enforce_ownership",
							 "Refuse local writes to columns that local may not write.",
							 NULL,
							 &sr_enforce_ownership,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("sync_resolve.max_attempts",
							"Sending an outbox entry fails this many times before it is dead.",
							NULL,
							&sr_max_attempts,
							10, 1, 1000,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("sync_resolve.retry_base",
							"The wait before the first retry of a failed outbox entry; it doubles with each attempt.",
							NULL,
							&sr_retry_base_ms,
							10000, 1, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("sync_resolve.retry_max",
							"The longest wait between retries of a failed outbox entry.",
							NULL,
							&sr_retry_max_ms,
							3600000, 1, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("sync_resolve");

	sr_cache_init();
}

/*
 * Run the following statements as the extension owner.  Keeps the security
 * context's other bits; SECURITY_LOCAL_USERID_CHANGE marks the change as
 * ours, the way SECURITY DEFINER functions do.
 *
 * Names resolve in pg_catalog alone, whatever the caller's search_path: an
 * override search path, pushed and popped, not a SET of the search_path
 * setting, which would cost a search-path recomputation on each switch
 * (and one more on the way back) for every statement.  A kept plan saves
 * the path it was made under and is replanned when run under another:
 * this one is the same for the prepare and every run.  An error between
 * the two is cleaned up by the (sub)transaction's abort.
 */
void
sr_become_owner(SrUserSwitch *sw)
{
	static OverrideSearchPath owner_path = {NIL, false, false, 0};

	if (owner_path.schemas == NIL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		owner_path.schemas = list_make1_oid(PG_CATALOG_NAMESPACE);
		MemoryContextSwitchTo(old);
	}
	GetUserIdAndSecContext(&sw->saved_userid, &sw->saved_sec_context);
	SetUserIdAndSecContext(sr_extension_owner(),
						   sw->saved_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PushOverrideSearchPath(&owner_path);
}

void
sr_restore_user(const SrUserSwitch *sw)
{
	PopOverrideSearchPath();
	SetUserIdAndSecContext(sw->saved_userid, sw->saved_sec_context);
}

/*
 * Prepare a statement and keep it for the life of the backend, planned
 * with cursor_options (0: as PostgreSQL chooses).  The caller's memory
 * context stays current (SPI would leave its own).  Statements on
 * sync_resolve's own tables are prepared as_owner, and must be executed
 * as_owner too (sr_spi_execute).
 */
static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *argtypes, bool as_owner, int cursor_options)
{
	MemoryContext cxt = CurrentMemoryContext;
	SrUserSwitch sw;
	SPIPlanPtr	plan;

	/* a plan run as the owner is made under the owner's search_path */
	if (as_owner)
		sr_become_owner(&sw);
	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);
	if (as_owner)
		sr_restore_user(&sw);

	if (plan == NULL)
		elog(ERROR, "sync_resolve: could not prepare \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "sync_resolve: SPI_keepplan failed");
	MemoryContextSwitchTo(cxt);
	return plan;
}

/* A statement parsed once and kept, its plan as PostgreSQL chooses. */
SPIPlanPtr
sr_prepare_kept(const char *sql, int nargs, Oid *argtypes, bool as_owner)
{
	return prepare_kept(sql, nargs, argtypes, as_owner, 0);
}

/*
 * A statement parsed and planned once and kept, its plan made for any
 * values: for one whose plans for the values seen first would look
 * cheaper than the one for all, so that PostgreSQL would plan it again on
 * every execution, where its one plan serves every value well.
 */
SPIPlanPtr
sr_prepare_kept_generic(const char *sql, int nargs, Oid *argtypes, bool as_owner)
{
	return prepare_kept(sql, nargs, argtypes, as_owner, CURSOR_OPT_GENERIC_PLAN);
}

/*
 * Execute a kept plan, optionally as the extension owner, and insist on the
 * expected SPI result code.  Returns SPI_processed.
 */
int
sr_spi_execute(SPIPlanPtr plan, Datum *values, const char *nulls,
			   bool as_owner, bool read_only, long count, int expected)
{
	SrUserSwitch sw;
	MemoryContext cxt = CurrentMemoryContext;
	int			rc;

	if (plan == NULL)
		elog(ERROR, "sync_resolve: no plan to execute");
	if (as_owner)
		sr_become_owner(&sw);
	rc = SPI_execute_plan(plan, values, nulls, read_only, count);
	if (as_owner)
		sr_restore_user(&sw);
	/* SPI leaves its own procedure context current: take ours back */
	MemoryContextSwitchTo(cxt);
	if (rc != expected)
		elog(ERROR, "sync_resolve: SPI_execute_plan returned %s, expected %s",
			 SPI_result_code_string(rc), SPI_result_code_string(expected));
	return (int) SPI_processed;
}

/*
 * fn(arg) in a subtransaction.  An error that gives_way() accepts rolls it
 * back and returns false, the error in *caught (in the caller's memory);
 * any other error rolls it back and goes on up.  The caller's memory
 * context and resource owner are current again after.
 */
bool
sr_try_subxact(void (*fn) (void *), void *arg, bool (*gives_way) (const ErrorData *),
			   ErrorData **caught)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		ok = true;

	*caught = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (!gives_way(edata))
			ReThrowError(edata);
		*caught = edata;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* The items of one run, in its subtransaction (sr_runs()) */
static void
run_items(void *arg)
{
	SrRuns	   *runs = (SrRuns *) arg;

	for (runs->current = runs->from; runs->current < runs->to; runs->current++)
		runs->apply(runs->arg, runs->current);
}

/*
 * Apply items from .. to - 1 in runs, each run in one subtransaction,
 * rather than each item in one: every subtransaction that writes takes a
 * transaction id, and once a transaction holds more than 64 of them, every
 * snapshot taken in the cluster overflows and its readers look up
 * pg_subtrans, until that transaction ends.
 *
 * A run that an item fails with an error that gives way is rolled back: the
 * items before that one are applied again, as runs, and the runs go on from
 * it.  An item that fails first in its run fails as it would alone: it is
 * set aside, outside any subtransaction, with its error (in the caller's
 * memory).  An item may be applied more than once, so it replaces, not adds
 * to, what it leaves behind.  Runs double from SR_RUN_MIN items after each
 * success, up to SR_RUN_MAX, and start again from SR_RUN_MIN after a
 * failure: bad items cost little work done twice, good ones few
 * transaction ids (1,000 of them take 7).
 */
void
sr_runs(SrRuns *runs, int from, int to)
{
	while (from < to)
	{
		ErrorData  *edata;
		int			bad;

		runs->from = from;
		runs->to = Min(to, from + runs->len);
		if (sr_try_subxact(run_items, runs, runs->gives_way, &edata))
		{
			from = runs->to;
			runs->len = Min(runs->len * 2, SR_RUN_MAX);
			continue;
		}
		bad = runs->current;
		runs->len = SR_RUN_MIN;
		if (bad > from)
			sr_runs(runs, from, bad);
		else
			runs->set_aside(runs->arg, bad++, edata);
		from = bad;
	}
}
