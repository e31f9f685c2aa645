/*-------------------------------------------------------------------------
 *
 * policy_cache.c
 *		What sync_resolve knows about tracked tables, their column policies
 *		and the registered systems, and the SPI plans that read and write
 *		each tracked table and its shadow.
 *
 * Memory: every SrTable lives in its own context under CacheMemoryContext;
 * its kept SPI plans are freed with it.  The list of systems lives in one
 * context of its own.
 *
 * Invalidation: a relcache callback marks entries invalid; it never frees
 * anything, since it can run in the middle of an apply() that holds the
 * entry.  An entry is rebuilt at its next lookup.  The old one is freed at
 * once when no sync_resolve entry point is running (sr_cache_enter/leave
 * count them), otherwise parked and freed at the next lookup made at depth
 * zero or at the end of the transaction.  What fires the callback:
 *	- any relcache invalidation of the tracked table (ALTER, DROP, also
 *	  VACUUM and ANALYZE, which is harmless) or of its shadow;
 *	- a statement on sync_resolve.system, .tracked, .column_policy,
 *	  .field_map, .value_map or .transition, whose
 *	  statement trigger (policy_changed_trigger) invalidates the policy
 *	  table's relcache entry: every entry and the systems are dropped;
 *	- a full relcache reset (InvalidOid).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_index.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/regproc.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "storage/lmgr.h"
#include "tcop/deparse_utility.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "sync_resolve.h"

/* Plans for more column sets than this share one all-columns plan. */
#define SR_MAX_COLUMN_SET_PLANS 32

typedef struct SrTableEntry
{
	Oid			relid;			/* hash key */
	SrTable    *tab;
} SrTableEntry;

static HTAB *sr_tables = NULL;

/* partition -> its tracked ancestor (InvalidOid: none) */
typedef struct SrPartitionEntry
{
	Oid			relid;			/* hash key */
	Oid			tracked;
} SrPartitionEntry;

static HTAB *sr_partitions = NULL;
static List *sr_zombies = NIL;	/* invalidated SrTables still maybe in use */
static List *sr_zombie_cxts = NIL;	/* old lists of systems, likewise */
static int	sr_depth = 0;		/* entry points currently running */

static MemoryContext sr_systems_cxt = NULL;
static List *sr_systems = NIL;	/* SrSystem * */
static bool sr_systems_valid = false;

static Oid	sr_owner = InvalidOid;
static Oid	sr_policy_relids[6];
static bool sr_policy_relids_valid = false;

static const char *const strategy_names[] = {
	[SR_STRAT_OWNER] = "owner",
	[SR_STRAT_KEEP_LOCAL] = "keep_local",
	[SR_STRAT_TAKE_INCOMING] = "take_incoming",
	[SR_STRAT_LATEST] = "latest",
	[SR_STRAT_EARLIEST] = "earliest",
	[SR_STRAT_PRIORITY] = "priority",
	[SR_STRAT_MAX] = "max",
	[SR_STRAT_MIN] = "min",
	[SR_STRAT_SUM_DELTA] = "sum_delta",
	[SR_STRAT_UNION] = "union",
	[SR_STRAT_MERGE_JSON] = "merge_json",
	[SR_STRAT_REVIEW] = "review",
	[SR_STRAT_CUSTOM] = "custom",
};

const char *
sr_strategy_name(SrStrategy s)
{
	if ((int) s < 0 || (int) s >= (int) lengthof(strategy_names))
		return "?";
	return strategy_names[s];
}

static SrStrategy
strategy_from_name(const char *name, const char *what)
{
	int			i;

	for (i = 0; i < (int) lengthof(strategy_names); i++)
	{
		if (strcmp(strategy_names[i], name) == 0)
			return (SrStrategy) i;
	}
	/* the policy tables' triggers make this unreachable */
	elog(ERROR, "sync_resolve: unknown strategy \"%s\" in %s", name, what);
	return SR_STRAT_REVIEW;		/* keep the compiler quiet */
}

/* ------------------------------------------------------------------------
 * Invalidation
 * ------------------------------------------------------------------------
 */

/* Free the plans sr_table_plans() made, as far as they were made. */
static void
free_table_plans(SrTable *tab)
{
	SPIPlanPtr *plans[] = {
		&tab->plan_lock_row, &tab->plan_lock_row_for_delete, &tab->plan_delete_row,
		&tab->plan_read_shadow, &tab->plan_write_shadow, &tab->plan_write_shadow2,
		&tab->plan_read_row, &tab->plan_scan_rows, &tab->plan_scan_rows_ordered
	};
	int			i;

	for (i = 0; i < (int) lengthof(plans); i++)
	{
		if (*plans[i] != NULL)
			SPI_freeplan(*plans[i]);
		*plans[i] = NULL;
	}
	tab->plans_ready = false;
}

static void
free_table(SrTable *tab)
{
	ListCell   *lc;

	free_table_plans(tab);
	foreach(lc, tab->update_plans)
		SPI_freeplan(((SrColumnSetPlan *) lfirst(lc))->plan);
	foreach(lc, tab->insert_plans)
		SPI_freeplan(((SrColumnSetPlan *) lfirst(lc))->plan);
	foreach(lc, tab->lazy_plans)
		SPI_freeplan((SPIPlanPtr) lfirst(lc));
	MemoryContextDelete(tab->mcxt);
}

static void
free_zombies(void)
{
	List	   *zombies = sr_zombies;
	ListCell   *lc;

	sr_zombies = NIL;
	foreach(lc, zombies)
		free_table((SrTable *) lfirst(lc));
	/* the list cells themselves live in CacheMemoryContext */
	list_free(zombies);

	zombies = sr_zombie_cxts;
	sr_zombie_cxts = NIL;
	foreach(lc, zombies)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(zombies);
}

/* Every cached table is to be learnt again at its next use. */
static void
invalidate_tables(void)
{
	HASH_SEQ_STATUS status;
	SrTableEntry *entry;

	if (sr_tables == NULL)
		return;
	hash_seq_init(&status, sr_tables);
	while ((entry = (SrTableEntry *) hash_seq_search(&status)) != NULL)
		entry->tab->valid = false;
}

static void
invalidate_all(void)
{
	invalidate_tables();
	sr_systems_valid = false;
	sr_policy_relids_valid = false;
	sr_owner = InvalidOid;
	if (sr_partitions != NULL)
	{
		hash_destroy(sr_partitions);
		sr_partitions = NULL;
	}
}

static void
sr_relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	SrTableEntry *entry;
	int			i;

	if (!OidIsValid(relid))
	{
		invalidate_all();
		return;
	}
	if (sr_policy_relids_valid)
	{
		for (i = 0; i < (int) lengthof(sr_policy_relids); i++)
		{
			if (sr_policy_relids[i] == relid)
			{
				invalidate_all();
				return;
			}
		}
	}
	else
	{
		/*
		 * We do not know the policy tables' OIDs (first use, or the
		 * extension was re-created): be safe.
		 */
		invalidate_all();
		return;
	}
	/* attaching or detaching a partition invalidates it */
	if (sr_partitions != NULL)
		hash_search(sr_partitions, &relid, HASH_REMOVE, NULL);
	if (sr_tables == NULL)
		return;
	hash_seq_init(&status, sr_tables);
	while ((entry = (SrTableEntry *) hash_seq_search(&status)) != NULL)
	{
		if (entry->relid == relid || entry->tab->shadow_relid == relid)
			entry->tab->valid = false;
	}
}

static void
sr_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			sr_depth = 0;
			sr_applying.relid = InvalidOid;
			free_zombies();
			break;
		default:
			break;
	}
}

/*
 * A function changed (replaced, altered, dropped): the tables keep handles
 * on the functions they call -- custom strategies, field functions, the
 * columns' types' input and equality functions -- looked up as the function
 * was.  Relearn every table: a replaced body, or a function no longer
 * SECURITY DEFINER, counts from the next call on.
 */
static void
sr_function_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	invalidate_tables();
}

void
sr_cache_init(void)
{
	CacheRegisterRelcacheCallback(sr_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, sr_function_callback, (Datum) 0);
	RegisterXactCallback(sr_xact_callback, NULL);
}

void
sr_cache_enter(void)
{
	if (sr_depth == 0)
		free_zombies();
	sr_depth++;
}

void
sr_cache_leave(void)
{
	if (sr_depth > 0)
		sr_depth--;
}

/*
 * Statement trigger on the policy tables: every backend drops what it
 * cached, at this statement's end here and at commit elsewhere.
 */
PG_FUNCTION_INFO_V1(policy_changed_trigger);
Datum
policy_changed_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("policy_changed_trigger: not called by trigger manager")));
	if (!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("policy_changed_trigger: must be fired AFTER ... FOR EACH STATEMENT")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	PG_RETURN_POINTER(NULL);
}

/* ------------------------------------------------------------------------
 * Catalog lookups
 * ------------------------------------------------------------------------
 */

static Oid
sr_namespace(void)
{
	Oid			nsp = get_namespace_oid(SR_SCHEMA, true);

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", SR_SCHEMA),
				 errhint("Run CREATE EXTENSION sync_resolve.")));
	return nsp;
}

Oid
sr_internal_relid(const char *relname)
{
	Oid			relid = get_relname_relid(relname, sr_namespace());

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", SR_SCHEMA, relname),
				 errhint("The sync_resolve extension is damaged: recreate it.")));
	return relid;
}

static void
load_policy_relids(void)
{
	if (sr_policy_relids_valid)
		return;
	sr_policy_relids[0] = sr_internal_relid("system");
	sr_policy_relids[1] = sr_internal_relid("tracked");
	sr_policy_relids[2] = sr_internal_relid("column_policy");
	sr_policy_relids[3] = sr_internal_relid("field_map");
	sr_policy_relids[4] = sr_internal_relid("value_map");
	sr_policy_relids[5] = sr_internal_relid("transition");
	sr_policy_relids_valid = true;
}

Oid
sr_extension_owner(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	if (OidIsValid(sr_owner))
		return sr_owner;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("sync_resolve"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		sr_owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(sr_owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"sync_resolve\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION sync_resolve.")));
	return sr_owner;
}

/*
 * Run a catalog query on an internal table as the extension owner, inside
 * a connection of its own.  The caller copies what it needs before
 * SPI_finish.
 */
static void
owner_query(const char *sql, int nargs, Oid *argtypes, Datum *values)
{
	SrUserSwitch sw;
	MemoryContext cxt = CurrentMemoryContext;
	int			rc;

	sr_become_owner(&sw);
	/*
	 * Policies are read as they are now, not as the caller's snapshot saw
	 * them: a REPEATABLE READ transaction would otherwise cache a policy
	 * changed since it began, and keep it after it commits.
	 */
	PushActiveSnapshot(GetLatestSnapshot());
	rc = SPI_execute_with_args(sql, nargs, argtypes, values, NULL, true, 0);
	PopActiveSnapshot();
	sr_restore_user(&sw);
	MemoryContextSwitchTo(cxt);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "sync_resolve: catalog query failed: %s", SPI_result_code_string(rc));
}

static char *
spi_text(HeapTuple tup, int fnum, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, SPI_tuptable->tupdesc, fnum, &isnull);

	if (isnull)
		return NULL;
	return MemoryContextStrdup(cxt, TextDatumGetCString(d));
}

static List *
spi_text_array(HeapTuple tup, int fnum, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, SPI_tuptable->tupdesc, fnum, &isnull);
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	List	   *result = NIL;
	MemoryContext old;

	if (isnull)
		return NIL;
	arr = DatumGetArrayTypeP(d);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	old = MemoryContextSwitchTo(cxt);
	for (i = 0; i < n; i++)
	{
		if (!nulls[i])
			result = lappend(result, TextDatumGetCString(elems[i]));
	}
	MemoryContextSwitchTo(old);
	return result;
}

/* ------------------------------------------------------------------------
 * Systems
 * ------------------------------------------------------------------------
 */

static void
load_systems(void)
{
	uint64		i;
	MemoryContext old;
	List	   *systems = NIL;

	/*
	 * A caller may still hold an SrSystem of the old list (apply() does, for
	 * its whole length): the old context is freed like a zombie table.
	 */
	if (sr_systems_cxt != NULL)
	{
		MemoryContext old_cxt = MemoryContextSwitchTo(CacheMemoryContext);

		sr_zombie_cxts = lappend(sr_zombie_cxts, sr_systems_cxt);
		MemoryContextSwitchTo(old_cxt);
	}
	sr_systems_cxt = AllocSetContextCreate(CacheMemoryContext,
										   "sync_resolve systems",
										   ALLOCSET_SMALL_SIZES);
	sr_systems = NIL;
	sr_systems_valid = false;

	load_policy_relids();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	owner_query("SELECT name, priority, member_role::oid, replication_origin, ignore_unknown_fields"
				" FROM sync_resolve.system", 0, NULL, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		SrSystem   *sys;

		old = MemoryContextSwitchTo(sr_systems_cxt);
		sys = palloc0(sizeof(SrSystem));
		MemoryContextSwitchTo(old);
		sys->name = spi_text(tup, 1, sr_systems_cxt);
		sys->priority = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		if (isnull)
			sys->priority = 100;
		sys->member_role = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));
		if (isnull)
			sys->member_role = InvalidOid;
		sys->replication_origin = spi_text(tup, 4, sr_systems_cxt);
		sys->ignore_unknown_fields = DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 5, &isnull)) && !isnull;
		old = MemoryContextSwitchTo(sr_systems_cxt);
		systems = lappend(systems, sys);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	sr_systems = systems;
	sr_systems_valid = true;
}

const SrSystem *
sr_system_get(const char *name, bool missing_ok)
{
	ListCell   *lc;

	if (!sr_systems_valid)
		load_systems();
	if (name != NULL)
	{
		foreach(lc, sr_systems)
		{
			SrSystem   *sys = (SrSystem *) lfirst(lc);

			if (strcmp(sys->name, name) == 0)
				return sys;
		}
	}
	if (!missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown system \"%s\"", name ? name : "(null)"),
				 errhint("Register it with sync_resolve.add_system(); sync_resolve.system lists the known ones.")));
	return NULL;
}

const SrSystem *
sr_system_by_origin(const char *origin)
{
	ListCell   *lc;

	if (!sr_systems_valid)
		load_systems();
	foreach(lc, sr_systems)
	{
		SrSystem   *sys = (SrSystem *) lfirst(lc);

		if (sys->replication_origin && strcmp(sys->replication_origin, origin) == 0)
			return sys;
	}
	return NULL;
}

/* The position of a system in the table's list, or -1. */
int
sr_table_system_index(const SrTable *tab, const char *system)
{
	int			i;

	for (i = 0; i < tab->nsystems; i++)
	{
		if (strcmp(tab->systems[i], system) == 0)
			return i;
	}
	return -1;
}

bool
sr_table_has_system(const SrTable *tab, const char *system)
{
	return sr_table_system_index(tab, system) >= 0;
}

/*
 * May this system write the column?  An owner column with no explicit
 * writers is written by its owner alone; otherwise writers decides, NIL
 * meaning every system of the table.
 */
bool
sr_column_writable_by(const SrColumn *col, const char *system)
{
	ListCell   *lc;

	if (col->writers == NIL)
	{
		if (col->strategy == SR_STRAT_OWNER && col->owner != NULL)
			return strcmp(col->owner, system) == 0;
		return true;
	}
	foreach(lc, col->writers)
	{
		if (strcmp((char *) lfirst(lc), system) == 0)
			return true;
	}
	return false;
}

int
sr_column_by_name(const SrTable *tab, const char *name)
{
	int			i;

	for (i = 0; i < tab->ncols; i++)
	{
		if (strcmp(tab->cols[i].name, name) == 0)
			return i;
	}
	return -1;
}

/* ------------------------------------------------------------------------
 * Building a table entry
 * ------------------------------------------------------------------------
 */

static void
init_column_type(SrColumn *col, MemoryContext cxt)
{
	TypeCacheEntry *tce;
	Oid			typinput;
	FuncExpr   *fexpr;
	MemoryContext old;

	col->basetypid = getBaseType(col->typid);
	get_typlenbyvalalign(col->typid, &col->typlen, &col->typbyval, &col->typalign);
	col->is_json = (col->basetypid == JSONOID);

	getTypeInputInfo(col->typid, &typinput, &col->typioparam);
	fmgr_info_cxt(typinput, &col->in_finfo, cxt);

	tce = lookup_type_cache(col->basetypid,
							TYPECACHE_EQ_OPR_FINFO | TYPECACHE_CMP_PROC_FINFO);
	col->has_eq = OidIsValid(tce->eq_opr_finfo.fn_oid);
	if (col->has_eq)
		fmgr_info_copy(&col->eq_finfo, &tce->eq_opr_finfo, cxt);
	col->has_cmp = OidIsValid(tce->cmp_proc_finfo.fn_oid);
	if (col->has_cmp)
		fmgr_info_copy(&col->cmp_finfo, &tce->cmp_proc_finfo, cxt);

	/* to_jsonb(anyelement) needs to see its argument's type */
	old = MemoryContextSwitchTo(cxt);
	fexpr = makeFuncExpr(F_TO_JSONB, JSONBOID,
						 list_make1(makeNullConst(col->typid, col->typmod, col->collation)),
						 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	MemoryContextSwitchTo(old);
	fmgr_info_cxt(F_TO_JSONB, &col->to_jsonb_finfo, cxt);
	fmgr_info_set_expr((Node *) fexpr, &col->to_jsonb_finfo);

	col->elemtypid = get_element_type(col->basetypid);
	if (OidIsValid(col->elemtypid))
	{
		TypeCacheEntry *etce;

		get_typlenbyvalalign(col->elemtypid, &col->elemlen, &col->elembyval, &col->elemalign);
		etce = lookup_type_cache(col->elemtypid, TYPECACHE_EQ_OPR_FINFO);
		col->elem_has_eq = OidIsValid(etce->eq_opr_finfo.fn_oid);
		if (col->elem_has_eq)
			fmgr_info_copy(&col->elem_eq_finfo, &etce->eq_opr_finfo, cxt);
	}
}

/* "k1" = $1 AND "k2" = $2 (tracked table) or c1 = $1 ... (shadow) */
static void
append_key_match(StringInfo buf, const SrTable *tab, bool shadow, int first_param)
{
	int			i;

	for (i = 0; i < tab->nkeys; i++)
	{
		const SrColumn *col = &tab->cols[tab->keys[i]];

		if (i > 0)
			appendStringInfoString(buf, " AND ");
		if (shadow)
			appendStringInfo(buf, "c%d", col->attnum);
		else
			appendStringInfoString(buf, quote_identifier(col->name));
		appendStringInfo(buf, " OPERATOR(pg_catalog.=) $%d", first_param + i);
	}
}

static void
append_column_list(StringInfo buf, const SrTable *tab, bool shadow)
{
	int			i;

	for (i = 0; i < tab->ncols; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		if (shadow)
			appendStringInfo(buf, "c%d", tab->cols[i].attnum);
		else
			appendStringInfoString(buf, quote_identifier(tab->cols[i].name));
	}
}

static Oid *
key_argtypes(const SrTable *tab, int extra)
{
	Oid		   *types = palloc0(sizeof(Oid) * (tab->nkeys + extra + 1));
	int			i;

	for (i = 0; i < tab->nkeys; i++)
		types[i] = tab->cols[tab->keys[i]].typid;
	return types;
}

/*
 * SELECT of the table's columns in column order, of the row with the key
 * given as parameters ($1...) or of every row, then tail: a locking clause,
 * an ORDER BY, or "".
 */
static SPIPlanPtr
prepare_row_select(SrTable *tab, StringInfo buf, bool by_key, const char *tail)
{
	resetStringInfo(buf);
	appendStringInfoString(buf, "SELECT ");
	append_column_list(buf, tab, false);
	appendStringInfo(buf, " FROM %s", tab->relname);
	if (by_key)
	{
		appendStringInfoString(buf, " WHERE ");
		append_key_match(buf, tab, false, 1);
	}
	appendStringInfoString(buf, tail);
	return sr_prepare_kept(buf->data, by_key ? tab->nkeys : 0,
						   by_key ? key_argtypes(tab, 0) : NULL, false);
}

/*
 * The plans that only read the table, without a lock: its row with a key,
 * or all its rows for a cursor, in no order or ordered by the key columns
 * (each by its type's default ordering and its collation).  Prepared at
 * first use, kept with the table's other plans.
 */
SPIPlanPtr
sr_plan_read_rows(SrTable *tab, SrRowsRead which)
{
	SPIPlanPtr *plan = which == SR_ROWS_BY_KEY ? &tab->plan_read_row
		: which == SR_ROWS_ALL ? &tab->plan_scan_rows : &tab->plan_scan_rows_ordered;

	if (*plan == NULL)
	{
		StringInfoData tail;
		StringInfoData buf;
		int			i;

		initStringInfo(&tail);
		for (i = 0; which == SR_ROWS_IN_KEY_ORDER && i < tab->nkeys; i++)
			appendStringInfo(&tail, "%s%s", i ? ", " : " ORDER BY ",
							 quote_identifier(tab->cols[tab->keys[i]].name));
		initStringInfo(&buf);
		*plan = prepare_row_select(tab, &buf, which == SR_ROWS_BY_KEY, tail.data);
		pfree(buf.data);
		pfree(tail.data);
	}
	return *plan;
}

static void
prepare_plans(SrTable *tab)
{
	StringInfoData buf;
	Oid		   *types;
	Oid			vclock_type;
	int			i;
	int			nrows;
	int			nmeta = SR_SH_NMETA;

	vclock_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
								  CStringGetDatum("vclock"),
								  ObjectIdGetDatum(sr_namespace()));
	if (!OidIsValid(vclock_type))
		elog(ERROR, "sync_resolve: type sync_resolve.vclock is missing");

	initStringInfo(&buf);

	/* lock and read the local row */
	types = key_argtypes(tab, 0);
	tab->plan_lock_row = prepare_row_select(tab, &buf, true, " FOR NO KEY UPDATE");
	tab->plan_lock_row_for_delete = prepare_row_select(tab, &buf, true, " FOR UPDATE");

	resetStringInfo(&buf);
	appendStringInfo(&buf, "DELETE FROM %s WHERE ", tab->relname);
	append_key_match(&buf, tab, false, 1);
	tab->plan_delete_row = sr_prepare_kept(buf.data, tab->nkeys, types, false);

	/* read the local metadata and every system's base of a row */
	resetStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	append_column_list(&buf, tab, true);
	for (i = 0; i < nmeta; i++)
		appendStringInfo(&buf, ", %s", sr_shadow_meta_names[i]);
	appendStringInfo(&buf, " FROM %s WHERE ", tab->shadow_name);
	append_key_match(&buf, tab, true, 1);
	tab->plan_read_shadow = sr_prepare_kept(buf.data, tab->nkeys, types, true);

	/*
	 * write one shadow row, or two (a system's base and the local metadata)
	 * in one statement: every column, upserted
	 */
	for (nrows = 1; nrows <= 2; nrows++)
	{
		int			nparams = tab->ncols + nmeta;
		int			r;

		types = palloc0(sizeof(Oid) * nparams * nrows);
		for (i = 0; i < tab->ncols; i++)
			types[i] = tab->cols[i].basetypid;
		for (i = 0; i < nmeta; i++)
			types[tab->ncols + i] = sr_shadow_meta_type((SrShadowMeta) i, vclock_type);
		for (r = 1; r < nrows; r++)
			memcpy(types + r * nparams, types, sizeof(Oid) * nparams);
		resetStringInfo(&buf);
		appendStringInfo(&buf, "INSERT INTO %s (", tab->shadow_name);
		append_column_list(&buf, tab, true);
		for (i = 0; i < nmeta; i++)
			appendStringInfo(&buf, ", %s", sr_shadow_meta_names[i]);
		appendStringInfoString(&buf, ") VALUES ");
		for (r = 0; r < nrows; r++)
		{
			appendStringInfoString(&buf, r > 0 ? ", (" : "(");
			for (i = 0; i < nparams; i++)
				appendStringInfo(&buf, "%s$%d", i > 0 ? ", " : "", r * nparams + i + 1);
			appendStringInfoChar(&buf, ')');
		}
		appendStringInfoString(&buf, " ON CONFLICT (");
		for (i = 0; i < tab->nkeys; i++)
			appendStringInfo(&buf, "c%d, ", tab->cols[tab->keys[i]].attnum);
		appendStringInfoString(&buf, "system) DO UPDATE SET ");
		{
			bool		first = true;

			for (i = 0; i < tab->ncols; i++)
			{
				if (tab->cols[i].is_key)
					continue;
				appendStringInfo(&buf, "%sc%d = excluded.c%d", first ? "" : ", ",
								 tab->cols[i].attnum, tab->cols[i].attnum);
				first = false;
			}
			for (i = 1; i < nmeta; i++)
			{
				appendStringInfo(&buf, "%s%s = excluded.%s", first ? "" : ", ",
								 sr_shadow_meta_names[i], sr_shadow_meta_names[i]);
				first = false;
			}
		}
		if (nrows == 1)
			tab->plan_write_shadow = sr_prepare_kept(buf.data, nparams, types, true);
		else
			tab->plan_write_shadow2 = sr_prepare_kept(buf.data, nparams * nrows, types, true);
	}

	pfree(buf.data);
}

/*
 * The SQL statements that lock, delete and read rows of the table and
 * read and write its shadow, prepared at first use: most of them stand in
 * only when direct.c may not be used (shadow.c, sr_row_lock()).  SPI must
 * be connected.
 */
void
sr_table_plans(SrTable *tab)
{
	MemoryContext old;

	if (tab->plans_ready)
		return;
	free_table_plans(tab);		/* what an earlier, failed attempt left */
	old = MemoryContextSwitchTo(tab->mcxt);
	prepare_plans(tab);
	MemoryContextSwitchTo(old);
	tab->plans_ready = true;
}

/*
 * The UPDATE of a set of columns of one row, returning the row as it was
 * written (other BEFORE triggers may have changed it).  Parameters: the key
 * columns, then the set's columns in column order.
 */
SrColumnSetPlan *
sr_plan_update(SrTable *tab, Bitmapset *cols)
{
	ListCell   *lc;
	StringInfoData buf;
	Oid		   *types;
	int			nparams;
	int			i;
	bool		first = true;
	SrColumnSetPlan *slot;
	MemoryContext old;

	foreach(lc, tab->update_plans)
	{
		slot = (SrColumnSetPlan *) lfirst(lc);
		if (bms_equal(slot->cols, cols))
			return slot;
	}
	if (list_length(tab->update_plans) >= SR_MAX_COLUMN_SET_PLANS)
	{
		/* too many shapes: use the first one ever made for every column */
		Bitmapset  *all = NULL;

		for (i = 0; i < tab->ncols; i++)
			if (!tab->cols[i].is_key)
				all = bms_add_member(all, i);
		if (!bms_equal(all, cols))
			elog(DEBUG1, "sync_resolve: too many column sets for %s", tab->display_name);
		cols = all;
		foreach(lc, tab->update_plans)
		{
			slot = (SrColumnSetPlan *) lfirst(lc);
			if (bms_equal(slot->cols, cols))
				return slot;
		}
	}

	types = key_argtypes(tab, bms_num_members(cols));
	nparams = tab->nkeys;
	initStringInfo(&buf);
	appendStringInfo(&buf, "UPDATE %s SET ", tab->relname);
	i = -1;
	while ((i = bms_next_member(cols, i)) >= 0)
	{
		appendStringInfo(&buf, "%s%s = $%d", first ? "" : ", ",
						 quote_identifier(tab->cols[i].name), nparams + 1);
		/* base type: the assignment then runs the domain's checks */
		types[nparams++] = tab->cols[i].basetypid;
		first = false;
	}
	appendStringInfoString(&buf, " WHERE ");
	append_key_match(&buf, tab, false, 1);
	appendStringInfoString(&buf, " RETURNING ");
	append_column_list(&buf, tab, false);

	old = MemoryContextSwitchTo(tab->mcxt);
	slot = palloc(sizeof(SrColumnSetPlan));
	slot->cols = bms_copy(cols);
	slot->plan = sr_prepare_kept(buf.data, nparams, types, false);
	tab->update_plans = lappend(tab->update_plans, slot);
	MemoryContextSwitchTo(old);
	pfree(buf.data);
	return slot;
}

/*
 * The INSERT of a row given some of its columns (the rest take their
 * defaults).  ON CONFLICT DO NOTHING: a row inserted concurrently, or a
 * clash on another unique key, returns no row and the caller decides.
 * Parameters: the set's columns in column order.
 */
SPIPlanPtr
sr_plan_insert(SrTable *tab, Bitmapset *cols)
{
	ListCell   *lc;
	StringInfoData buf;
	Oid		   *types;
	int			nparams = 0;
	int			i;
	bool		identity = false;
	SrColumnSetPlan *slot;
	MemoryContext old;
	Relation	rel;
	TupleDesc	desc;

	foreach(lc, tab->insert_plans)
	{
		slot = (SrColumnSetPlan *) lfirst(lc);
		if (bms_equal(slot->cols, cols))
			return slot->plan;
	}

	rel = table_open(tab->relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	types = palloc0(sizeof(Oid) * (bms_num_members(cols) + 1));
	initStringInfo(&buf);
	appendStringInfo(&buf, "INSERT INTO %s (", tab->relname);
	i = -1;
	while ((i = bms_next_member(cols, i)) >= 0)
	{
		appendStringInfo(&buf, "%s%s", nparams > 0 ? ", " : "",
						 quote_identifier(tab->cols[i].name));
		types[nparams++] = tab->cols[i].basetypid;
		if (TupleDescAttr(desc, tab->cols[i].attnum - 1)->attidentity == ATTRIBUTE_IDENTITY_ALWAYS)
			identity = true;
	}
	table_close(rel, AccessShareLock);
	appendStringInfo(&buf, ")%s VALUES (", identity ? " OVERRIDING SYSTEM VALUE" : "");
	for (i = 0; i < nparams; i++)
		appendStringInfo(&buf, "%s$%d", i > 0 ? ", " : "", i + 1);
	/* ON CONFLICT cannot take a deferrable constraint: sr_row_insert catches */
	appendStringInfo(&buf, ")%s RETURNING ",
					 tab->deferrable_unique ? "" : " ON CONFLICT DO NOTHING");
	append_column_list(&buf, tab, false);

	if (list_length(tab->insert_plans) >= SR_MAX_COLUMN_SET_PLANS)
	{
		/*
		 * Too many shapes to keep them all: this one is prepared for this
		 * call only and goes with the SPI connection (a kept plan must not
		 * be freed here: an outer call may be running it).
		 */
		SPIPlanPtr	plan = SPI_prepare(buf.data, nparams, types);

		if (plan == NULL)
			elog(ERROR, "sync_resolve: could not prepare \"%s\": %s",
				 buf.data, SPI_result_code_string(SPI_result));
		return plan;
	}
	old = MemoryContextSwitchTo(tab->mcxt);
	slot = palloc(sizeof(SrColumnSetPlan));
	slot->cols = bms_copy(cols);
	slot->plan = sr_prepare_kept(buf.data, nparams, types, false);
	tab->insert_plans = lappend(tab->insert_plans, slot);
	MemoryContextSwitchTo(old);
	pfree(buf.data);
	return slot->plan;
}

static void
load_policies(SrTable *tab)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	uint64		r;
	int			i;
	List	   *group_names = NIL;

	args[0] = ObjectIdGetDatum(tab->relid);
	owner_query("SELECT attnum, strategy, owner, writers, col_group, custom_fn::oid,"
				" on_unauthorized, unmapped, check_expr, on_invalid, normalization"
				" FROM sync_resolve.column_policy"
				" WHERE relid OPERATOR(pg_catalog.=) $1 ORDER BY attnum",
				1, argtypes, args);
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		int			attnum;
		SrColumn   *col;
		char	   *s;

		attnum = DatumGetInt16(SPI_getbinval(tup, td, 1, &isnull));
		if (isnull || attnum < 1 || attnum > tab->natts || tab->col_of_attnum[attnum] < 0)
			continue;			/* a policy left behind by DDL; _sync_shadow tidies */
		col = &tab->cols[tab->col_of_attnum[attnum]];
		if (col->is_key)
			continue;
		col->has_policy = true;
		s = spi_text(tup, 2, tab->mcxt);
		col->strategy = strategy_from_name(s, "sync_resolve.column_policy");
		col->owner = spi_text(tup, 3, tab->mcxt);
		col->writers = spi_text_array(tup, 4, tab->mcxt);
		s = spi_text(tup, 5, tab->mcxt);
		if (s != NULL)
		{
			ListCell   *lc;
			int			g = 0;

			col->group = -1;
			foreach(lc, group_names)
			{
				if (strcmp((char *) lfirst(lc), s) == 0)
				{
					col->group = g;
					break;
				}
				g++;
			}
			if (col->group < 0)
			{
				MemoryContext old = MemoryContextSwitchTo(tab->mcxt);

				group_names = lappend(group_names, s);
				MemoryContextSwitchTo(old);
				col->group = list_length(group_names) - 1;
			}
		}
		col->custom_fn = DatumGetObjectId(SPI_getbinval(tup, td, 6, &isnull));
		if (isnull)
			col->custom_fn = InvalidOid;
		if (OidIsValid(col->custom_fn))
		{
			if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(col->custom_fn)))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_FUNCTION),
						 errmsg("the custom function of column \"%s\" of table %s no longer exists",
								col->name, tab->relname),
						 errhint("Set another policy for the column with sync_resolve.set_policy().")));
			fmgr_info_cxt(col->custom_fn, &col->custom_finfo, tab->mcxt);
		}
		s = spi_text(tup, 7, tab->mcxt);
		if (s == NULL || strcmp(s, "reject") == 0)
			col->on_unauthorized = SR_UNAUTH_REJECT;
		else if (strcmp(s, "review") == 0)
			col->on_unauthorized = SR_UNAUTH_REVIEW;
		else
			col->on_unauthorized = SR_UNAUTH_ACCEPT;
		s = spi_text(tup, 8, tab->mcxt);
		col->unmapped = s == NULL || strcmp(s, "pass") == 0 ? SR_UNMAPPED_PASS
			: strcmp(s, "null") == 0 ? SR_UNMAPPED_NULL
			: strcmp(s, "default") == 0 ? SR_UNMAPPED_DEFAULT
			: strcmp(s, "review") == 0 ? SR_UNMAPPED_REVIEW : SR_UNMAPPED_REJECT;
		col->check_expr = spi_text(tup, 9, tab->mcxt);
		s = spi_text(tup, 10, tab->mcxt);
		col->invalid_to_review = s != NULL && strcmp(s, "review") == 0;
		{
			List	   *norm = spi_text_array(tup, 11, tab->mcxt);
			ListCell   *lc;

			foreach(lc, norm)
			{
				if (strcmp((char *) lfirst(lc), "trim") == 0)
					col->norm_trim = true;
				else if (strcmp((char *) lfirst(lc), "case") == 0)
					col->norm_case = true;
			}
		}
	}

	tab->ngroups = list_length(group_names);
	tab->groups = MemoryContextAllocZero(tab->mcxt, sizeof(SrGroup) * (tab->ngroups + 1));
	for (i = 0; i < tab->ngroups; i++)
	{
		SrGroup    *g = &tab->groups[i];
		int			c;

		g->name = (char *) list_nth(group_names, i);
		g->cols = MemoryContextAlloc(tab->mcxt, sizeof(int) * tab->ncols);
		for (c = 0; c < tab->ncols; c++)
			if (tab->cols[c].has_policy && tab->cols[c].group == i)
				g->cols[g->ncols++] = c;
	}
}

/* A value of the column's type from its text, in the table's context. */
static Datum
column_value(SrTable *tab, SrColumn *col, const char *text)
{
	Datum		d = InputFunctionCall(&col->in_finfo, (char *) text, col->typioparam, col->typmod);
	MemoryContext old = MemoryContextSwitchTo(tab->mcxt);

	d = datumCopy(d, col->typbyval, col->typlen);
	MemoryContextSwitchTo(old);
	return d;
}

/* A conversion function of field_map, checked again: it may have changed. */
static void
field_function(SrTable *tab, Oid fn, FmgrInfo *finfo, const char *field)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Form_pg_proc p;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the conversion function of field \"%s\" of table %s no longer exists",
						field, tab->relname),
				 errhint("Update or delete the row of sync_resolve.field_map.")));
	p = (Form_pg_proc) GETSTRUCT(tup);
	if (p->pronargs != 1 || p->proargtypes.values[0] != JSONBOID || p->prorettype != JSONBOID || p->proretset)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %s can no longer convert field \"%s\" of table %s",
						format_procedure(fn), field, tab->relname),
				 errhint("A field conversion function takes jsonb and returns jsonb.")));
	ReleaseSysCache(tup);
	fmgr_info_cxt(fn, finfo, tab->mcxt);
}

/*
 * field_map, value_map and transition of the table.  Rows of columns that
 * no longer exist are left out (_sync_shadow tidies them after DDL).
 */
static void
load_maps(SrTable *tab)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	uint64		r;
	int			sidx;
	int			c;

	args[0] = ObjectIdGetDatum(tab->relid);
	tab->maps = MemoryContextAllocZero(tab->mcxt, sizeof(SrSystemMaps) * (tab->nsystems + 1));

	owner_query("SELECT system, external_field, column_name::text, inbound_fn::oid, outbound_fn::oid"
				" FROM sync_resolve.field_map WHERE relid OPERATOR(pg_catalog.=) $1"
				" ORDER BY system, external_field", 1, argtypes, args);
	for (sidx = 0; sidx < tab->nsystems; sidx++)
	{
		SrSystemMaps *m = &tab->maps[sidx];

		m->fields = MemoryContextAllocZero(tab->mcxt, sizeof(SrFieldMap) * (SPI_processed + 1));
		m->field_of_col = MemoryContextAllocZero(tab->mcxt, sizeof(char *) * (tab->ncols + 1));
		m->map_of_col = MemoryContextAllocZero(tab->mcxt, sizeof(SrFieldMap *) * (tab->ncols + 1));
		for (c = 0; c < tab->ncols; c++)
			m->field_of_col[c] = tab->cols[c].name;
	}
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		char	   *system = spi_text(tup, 1, tab->mcxt);
		char	   *field = spi_text(tup, 2, tab->mcxt);
		char	   *column = spi_text(tup, 3, tab->mcxt);
		SrSystemMaps *m;
		SrFieldMap *f;
		bool		isnull;
		Oid			fn;

		sidx = sr_table_system_index(tab, system);
		if (sidx < 0 || field == NULL || column == NULL)
			continue;
		m = &tab->maps[sidx];
		if (strcmp(column, "$external_id") == 0)
		{
			m->id_field = field;
			continue;
		}
		c = sr_column_by_name(tab, column);
		if (c < 0)
			continue;
		f = &m->fields[m->nfields++];
		f->field = field;
		f->col = c;
		fn = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 4, &isnull));
		if (!isnull)
		{
			field_function(tab, fn, &f->in_finfo, field);
			f->has_in = true;
		}
		fn = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 5, &isnull));
		if (!isnull)
		{
			field_function(tab, fn, &f->out_finfo, field);
			f->has_out = true;
		}
		m->field_of_col[c] = field;
		m->map_of_col[c] = f;
	}

	/* value maps, in external_value order: the first one of a value goes out */
	owner_query("SELECT column_name::text, system, external_value, local_value"
				" FROM sync_resolve.value_map WHERE relid OPERATOR(pg_catalog.=) $1"
				" ORDER BY column_name, system, external_value COLLATE \"C\"", 1, argtypes, args);
	for (c = 0; c < tab->ncols; c++)
		tab->cols[c].value_maps = MemoryContextAllocZero(tab->mcxt, sizeof(SrValueMap) * (SPI_processed + 1));
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		char	   *column = spi_text(tup, 1, tab->mcxt);
		char	   *system = spi_text(tup, 2, tab->mcxt);
		char	   *ext = spi_text(tup, 3, tab->mcxt);
		char	   *local = spi_text(tup, 4, tab->mcxt);
		SrColumn   *col;
		SrValueMap *vm;

		c = column ? sr_column_by_name(tab, column) : -1;
		sidx = system ? sr_table_system_index(tab, system) : -1;
		if (c < 0 || sidx < 0 || ext == NULL || local == NULL)
			continue;
		col = &tab->cols[c];
		vm = &col->value_maps[col->nvalue_maps++];
		vm->sidx = sidx;
		vm->external = ext;
		vm->local = column_value(tab, col, local);
	}

	owner_query("SELECT column_name::text, from_value, to_value"
				" FROM sync_resolve.transition WHERE relid OPERATOR(pg_catalog.=) $1",
				1, argtypes, args);
	for (c = 0; c < tab->ncols; c++)
		tab->cols[c].transitions = MemoryContextAllocZero(tab->mcxt, sizeof(SrTransition) * (SPI_processed + 1));
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		char	   *column = spi_text(tup, 1, tab->mcxt);
		char	   *from = spi_text(tup, 2, tab->mcxt);
		char	   *to = spi_text(tup, 3, tab->mcxt);
		SrColumn   *col;
		SrTransition *t;

		c = column ? sr_column_by_name(tab, column) : -1;
		if (c < 0 || to == NULL)
			continue;
		col = &tab->cols[c];
		t = &col->transitions[col->ntransitions++];
		t->from_null = from == NULL;
		if (from != NULL)
			t->from = column_value(tab, col, from);
		t->to = column_value(tab, col, to);
	}
}

/* A table's row of sync_resolve.tracked, as build_table() reads it */
#define TRACKED_QUERY \
	"SELECT systems, default_strategy, on_delete_conflict, pg_catalog.to_regclass(shadow)::oid," \
	" tracked_at, match_on::text[], alert_per_hour" \
	" FROM sync_resolve.tracked WHERE relid OPERATOR(pg_catalog.=) $1"

static SrTable *
build_table(Oid relid, bool missing_ok)
{
	MemoryContext cxt;
	MemoryContext old;
	SrTable    *tab;
	Relation	rel;
	TupleDesc	desc;
	Oid			pkoid;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	int			i;
	HeapTuple	tup;
	bool		isnull;
	char	   *s;

	load_policy_relids();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	args[0] = ObjectIdGetDatum(relid);
	owner_query(TRACKED_QUERY, 1, argtypes, args);
	if (SPI_processed == 1)
	{
		bool		isnull;

		(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
		if (isnull)
		{
			/* restored from a dump: the shadow is made at first use */
			owner_query("SELECT sync_resolve._ensure_shadow($1)", 1, argtypes, args);
			owner_query(TRACKED_QUERY, 1, argtypes, args);
		}
	}
	if (SPI_processed != 1)
	{
		char	   *name = get_rel_name(relid);

		SPI_finish();
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s is not tracked by sync_resolve",
						name ? quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), name)
						: "(dropped)"),
				 errhint("Track it first with sync_resolve.track().")));
	}

	cxt = AllocSetContextCreate(CacheMemoryContext, "sync_resolve table",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	tab = palloc0(sizeof(SrTable));
	tab->relid = relid;
	tab->mcxt = cxt;
	MemoryContextSwitchTo(old);

	PG_TRY();
	{
		List	   *systems;
		List	   *match_on;
		ListCell   *lc;

		tup = SPI_tuptable->vals[0];
		match_on = spi_text_array(tup, 6, cxt);
		systems = spi_text_array(tup, 1, cxt);
		tab->nsystems = list_length(systems);
		tab->systems = MemoryContextAlloc(cxt, sizeof(char *) * (tab->nsystems + 1));
		i = 0;
		foreach(lc, systems)
			tab->systems[i++] = (char *) lfirst(lc);
		s = spi_text(tup, 2, cxt);
		tab->default_strategy = strategy_from_name(s, "sync_resolve.tracked");
		s = spi_text(tup, 3, cxt);
		if (strcmp(s, "delete") == 0)
			tab->on_delete_conflict = SR_DELCONF_DELETE;
		else if (strcmp(s, "keep") == 0)
			tab->on_delete_conflict = SR_DELCONF_KEEP;
		else
			tab->on_delete_conflict = SR_DELCONF_REVIEW;
		tab->shadow_relid = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 4, &isnull));
		if (isnull)
			elog(ERROR, "sync_resolve: tracked table %u has no shadow", relid);
		tab->tracked_at = DatumGetTimestampTz(SPI_getbinval(tup, SPI_tuptable->tupdesc, 5, &isnull));
		tab->alert_per_hour = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 7, &isnull));
		if (isnull)
			tab->alert_per_hour = -1;

		/* the table's shape, from the relcache */
		rel = table_open(relid, AccessShareLock);
		desc = RelationGetDescr(rel);
		old = MemoryContextSwitchTo(cxt);
		tab->relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												  RelationGetRelationName(rel));
		tab->display_name = tab->relname;
		tab->natts = desc->natts;
		tab->cols = palloc0(sizeof(SrColumn) * (desc->natts + 1));
		tab->col_of_attnum = palloc(sizeof(int) * (desc->natts + 1));
		for (i = 0; i <= desc->natts; i++)
			tab->col_of_attnum[i] = -1;
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			SrColumn   *col;
			char		shadow_col[NAMEDATALEN];

			if (att->attisdropped || att->attgenerated)
				continue;

			/*
			 * A column added by a command whose event triggers have not all
			 * run yet has no shadow column until sync_resolve_ddl adds it (a
			 * user's event trigger named before it may write the table):
			 * left out until then, when the change to the shadow has this
			 * table learnt again.
			 */
			snprintf(shadow_col, sizeof(shadow_col), "c%d", att->attnum);
			if (get_attnum(tab->shadow_relid, shadow_col) == InvalidAttrNumber)
				continue;
			col = &tab->cols[tab->ncols];
			col->attnum = att->attnum;
			col->name = pstrdup(NameStr(att->attname));
			col->typid = att->atttypid;
			col->typmod = att->atttypmod;
			col->collation = att->attcollation;
			col->identity_always = att->attidentity == ATTRIBUTE_IDENTITY_ALWAYS;
			col->group = -1;
			col->strategy = tab->default_strategy;
			col->on_unauthorized = SR_UNAUTH_REJECT;
			tab->col_of_attnum[att->attnum] = tab->ncols;
			tab->ncols++;
		}
		MemoryContextSwitchTo(old);
		for (i = 0; i < tab->ncols; i++)
			init_column_type(&tab->cols[i], cxt);

		pkoid = RelationGetPrimaryKeyIndex(rel);
		if (!OidIsValid(pkoid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tracked table %s has no primary key", tab->relname),
					 errhint("Untrack the table, add a primary key, and track it again.")));
		{
			Relation	idx = index_open(pkoid, AccessShareLock);
			int			nkeys = idx->rd_index->indnkeyatts;

			tab->keys = MemoryContextAlloc(cxt, sizeof(int) * nkeys);
			for (i = 0; i < nkeys; i++)
			{
				AttrNumber	a = idx->rd_index->indkey.values[i];

				if (a < 1 || a > tab->natts || tab->col_of_attnum[a] < 0)
					elog(ERROR, "sync_resolve: primary key of %s uses an expression", tab->relname);
				tab->keys[tab->nkeys++] = tab->col_of_attnum[a];
				tab->cols[tab->col_of_attnum[a]].is_key = true;
			}
			/* a plain table's rows are looked up and locked without SQL */
			tab->pkey_oid = pkoid;
			if (rel->rd_rel->relkind == RELKIND_RELATION)
			{
				RegProcedure *eq = MemoryContextAlloc(cxt, sizeof(RegProcedure) * nkeys);

				if (sr_index_eq_procs(idx, eq))
					tab->pkey_eq = eq;
			}
			index_close(idx, AccessShareLock);
		}
		/* a unique or exclusion index besides the primary key: a write may clash */
		{
			List	   *indexes = RelationGetIndexList(rel);
			ListCell   *lc;

			foreach(lc, indexes)
			{
				HeapTuple	itup;
				Form_pg_index ind;

				itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
				if (!HeapTupleIsValid(itup))
					continue;
				ind = (Form_pg_index) GETSTRUCT(itup);
				if ((ind->indisunique || ind->indisexclusion) && !ind->indimmediate)
					tab->deferrable_unique = true;
				if ((ind->indisunique || ind->indisexclusion) && lfirst_oid(lc) != pkoid)
					tab->other_unique = true;
				ReleaseSysCache(itup);
			}
			list_free(indexes);
		}
		table_close(rel, AccessShareLock);

		s = get_rel_name(tab->shadow_relid);
		if (s == NULL)
			elog(ERROR, "sync_resolve: the shadow of %s is missing", tab->relname);
		old = MemoryContextSwitchTo(cxt);
		tab->shadow_name = quote_qualified_identifier(SR_SCHEMA, s);
		MemoryContextSwitchTo(old);

		load_policies(tab);
		tab->match_on = MemoryContextAlloc(cxt, sizeof(int) * (list_length(match_on) + 1));
		foreach(lc, match_on)
		{
			int			c = sr_column_by_name(tab, (char *) lfirst(lc));

			if (c >= 0)
				tab->match_on[tab->nmatch++] = c;
		}
		load_maps(tab);
		SPI_finish();
	}
	PG_CATCH();
	{
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();

	tab->valid = true;
	return tab;
}

/*
 * Keep tab's table open until sr_table_release(), as a statement keeps the
 * tables it works on.  A call that read the table's layout runs user code
 * -- a custom function, a check, a domain's constraint, a default -- that
 * might change it: ALTER TABLE of a table open in this session is refused
 * ("being used by active queries"), where the call would write rows of the
 * old layout into the new one.  The caller holds a lock on the table (from
 * sr_table_get()), and calls this outside any subtransaction of its own; an
 * error releases the table with the transaction's resources.
 */
Relation
sr_table_hold(const SrTable *tab)
{
	return table_open(tab->relid, NoLock);
}

void
sr_table_release(Relation rel)
{
	table_close(rel, NoLock);
}

SrTable *
sr_table_get(Oid relid, bool missing_ok, LOCKMODE lockmode)
{
	SrTableEntry *entry;
	bool		found;
	SrTable    *tab;

	if (sr_tables == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(SrTableEntry);
		ctl.hcxt = CacheMemoryContext;
		sr_tables = hash_create("sync_resolve tables", 32, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (sr_depth == 0)
		free_zombies();

	/*
	 * Lock the table before trusting the cache: the lock processes pending
	 * invalidations, and no ALTER TABLE can change it under us afterwards.
	 * The triggers pass NoLock: the statement holds the table already.
	 */
	if (lockmode != NoLock)
		LockRelationOid(relid, lockmode);
	AcceptInvalidationMessages();

	entry = (SrTableEntry *) hash_search(sr_tables, &relid, HASH_FIND, NULL);
	if (entry != NULL && entry->tab->valid)
		return entry->tab;

	tab = build_table(relid, missing_ok);
	entry = (SrTableEntry *) hash_search(sr_tables, &relid, HASH_ENTER, &found);
	if (found)
	{
		if (sr_depth == 0)
			free_table(entry->tab);
		else
		{
			MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);

			sr_zombies = lappend(sr_zombies, entry->tab);
			MemoryContextSwitchTo(old);
		}
	}
	if (tab == NULL)
	{
		hash_search(sr_tables, &relid, HASH_REMOVE, NULL);
		return NULL;
	}
	entry->tab = tab;
	return tab;
}

/*
 * The tracked table whose rows these are: the table itself, or for a
 * partition its nearest tracked ancestor; InvalidOid when none is tracked.
 */
Oid
sr_tracked_relid(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	SrPartitionEntry *entry;
	bool		found;
	List	   *ancestors;
	ListCell   *lc;
	Oid			tracked = InvalidOid;

	if (!rel->rd_rel->relispartition)
		return relid;
	if (sr_partitions == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(SrPartitionEntry);
		ctl.hcxt = CacheMemoryContext;
		sr_partitions = hash_create("sync_resolve partitions", 16, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = (SrPartitionEntry *) hash_search(sr_partitions, &relid, HASH_FIND, NULL);
	if (entry != NULL)
		return entry->tracked;

	if (sr_table_get(relid, true, NoLock) != NULL)
		tracked = relid;
	else
	{
		ancestors = get_partition_ancestors(relid);
		foreach(lc, ancestors)
		{
			if (sr_table_get(lfirst_oid(lc), true, AccessShareLock) != NULL)
			{
				tracked = lfirst_oid(lc);
				break;
			}
		}
		list_free(ancestors);
	}
	/* the lookups may have reset the map */
	if (sr_partitions != NULL)
	{
		entry = (SrPartitionEntry *) hash_search(sr_partitions, &relid, HASH_ENTER, &found);
		entry->tracked = tracked;
	}
	return tracked;
}

/* ------------------------------------------------------------------------
 * Type checks for the policy tables' triggers
 * ------------------------------------------------------------------------
 */

/*
 * Why a strategy does not fit a column's type, or NULL when it does.  The
 * rules match what strategies.c can compute.
 */
PG_FUNCTION_INFO_V1(strategy_problem);
Datum
strategy_problem(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	AttrNumber	attnum = PG_GETARG_INT16(1);
	char	   *strategy = text_to_cstring(PG_GETARG_TEXT_PP(2));
	Oid			typid = get_atttype(relid, attnum);
	Oid			base;
	char	   *problem = NULL;

	if (!OidIsValid(typid))
		PG_RETURN_TEXT_P(cstring_to_text("The column does not exist."));
	base = getBaseType(typid);

	if (strcmp(strategy, "sum_delta") == 0)
	{
		if (base != INT2OID && base != INT4OID && base != INT8OID &&
			base != NUMERICOID && base != FLOAT4OID && base != FLOAT8OID)
			problem = psprintf("sum_delta adds numbers; the column is of type %s.",
							   format_type_be(typid));
	}
	else if (strcmp(strategy, "union") == 0)
	{
		Oid			elem = get_element_type(base);

		if (!OidIsValid(elem))
			problem = psprintf("union merges arrays; the column is of type %s.",
							   format_type_be(typid));
		else if (!OidIsValid(lookup_type_cache(elem, TYPECACHE_EQ_OPR)->eq_opr))
			problem = psprintf("union compares array elements; type %s has no equality operator.",
							   format_type_be(elem));
	}
	else if (strcmp(strategy, "merge_json") == 0)
	{
		if (base != JSONBOID)
			problem = psprintf("merge_json merges jsonb objects; the column is of type %s.",
							   format_type_be(typid));
	}
	else if (strcmp(strategy, "max") == 0 || strcmp(strategy, "min") == 0)
	{
		if (!OidIsValid(lookup_type_cache(base, TYPECACHE_CMP_PROC)->cmp_proc))
			problem = psprintf("%s needs an ordering; type %s has no default btree operator class.",
							   strategy, format_type_be(typid));
	}

	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

/* The type of a shadow column: the column's type with domains resolved. */
PG_FUNCTION_INFO_V1(shadow_type);
Datum
shadow_type(PG_FUNCTION_ARGS)
{
	Oid			typid = PG_GETARG_OID(0);
	int32		typmod = PG_GETARG_INT32(1);
	Oid			base;

	if (!SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(typid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("type with OID %u does not exist", typid),
				 errhint("Pass the type of a column, pg_attribute.atttypid.")));
	base = getBaseTypeAndTypmod(typid, &typmod);

	PG_RETURN_TEXT_P(cstring_to_text(format_type_with_typemod(base, typmod)));
}

/*
 * untrack() of a table a statement of this session still has open: a write
 * of it whose custom strategy function or trigger untracks it (its shadow
 * and triggers would go from under it, and it would then fail on a relation
 * that no longer exists), or an open cursor.  Refused, as ALTER TABLE
 * refuses it (CheckTableNotInUse(), but for pending deferred trigger
 * events: none of them is sync_resolve's).  A table already dropped
 * (untracked by its DROP TABLE) is left alone.
 */
PG_FUNCTION_INFO_V1(check_not_in_use);
Datum
check_not_in_use(PG_FUNCTION_ARGS)
{
	Relation	rel = try_table_open(PG_GETARG_OID(0), AccessShareLock);

	if (rel != NULL)
	{
		/* this open's reference, as CheckTableNotInUse() counts them */
		int			expected = rel->rd_isnailed ? 2 : 1;

		if (rel->rd_refcnt != expected)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("cannot untrack table %s because it is being used by active queries in this session",
							RelationGetRelationName(rel)),
					 errdetail("A statement of this session still has the table open: a write of it that called untrack() "
							   "(from a custom strategy function or a trigger), or an open cursor. untrack() would "
							   "drop the shadow and the triggers a write is using."),
					 errhint("Untrack the table in a statement of its own, once those have finished.")));
		table_close(rel, AccessShareLock);
	}
	PG_RETURN_VOID();
}

/*
 * The row of one of sync_resolve's policy tables whose primary key (a
 * single column) equals key, as the given snapshot sees it: its xmin, or
 * InvalidTransactionId when there is none.
 */
static TransactionId
row_xmin(Relation rel, Oid keytype, Datum key, Snapshot snap)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	Relation	index;
	Oid			opfamily;
	Oid			eqop;
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tup;
	TransactionId xmin = InvalidTransactionId;

	if (!OidIsValid(pk))
		elog(ERROR, "sync_resolve: %s has no primary key", RelationGetRelationName(rel));
	index = index_open(pk, AccessShareLock);
	opfamily = index->rd_opfamily[0];
	eqop = get_opfamily_member(opfamily, keytype, keytype, BTEqualStrategyNumber);
	if (!OidIsValid(eqop))
		elog(ERROR, "sync_resolve: no equality of type %u in the primary key of %s",
			 keytype, RelationGetRelationName(rel));
	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, get_opcode(eqop), key);
	scan = systable_beginscan(rel, pk, true, snap, 1, &skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		xmin = HeapTupleHeaderGetXmin(tup->t_data);
	systable_endscan(scan);
	index_close(index, AccessShareLock);
	return xmin;
}

/*
 * The rows of sync_resolve.tracked (rel) whose systems include name, as
 * snap sees them: their tids, in scan order, *n of them.
 */
static ItemPointerData *
tracked_naming(Relation rel, const char *name, Snapshot snap, int *n)
{
	AttrNumber	att = get_attnum(RelationGetRelid(rel), "systems");
	SysScanDesc scan;
	HeapTuple	tup;
	ItemPointerData *tids = NULL;
	int			cap = 0;

	if (att == InvalidAttrNumber)
		elog(ERROR, "sync_resolve: sync_resolve.tracked has no column systems");
	*n = 0;
	scan = systable_beginscan(rel, InvalidOid, false, snap, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, att, RelationGetDescr(rel), &isnull);
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;
		int			i;

		if (isnull)
			continue;
		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &nelems);
		for (i = 0; i < nelems; i++)
			if (!nulls[i] && strcmp(TextDatumGetCString(elems[i]), name) == 0)
				break;
		if (i == nelems)
			continue;
		if (*n >= cap)
		{
			cap = cap ? cap * 2 : 8;
			tids = tids ? repalloc(tids, sizeof(ItemPointerData) * cap)
				: palloc(sizeof(ItemPointerData) * cap);
		}
		tids[(*n)++] = tup->t_self;
	}
	systable_endscan(scan);
	return tids;
}

/*
 * _unchanged_since_snapshot(tbl, key): under REPEATABLE READ or
 * SERIALIZABLE, a serialization failure if what a policy check is about to
 * read has changed since the transaction's snapshot: the row of
 * sync_resolve.tracked of table key (an oid), the row of sync_resolve.system
 * named key (text), or -- tbl sync_resolve.tracked, key a system's name --
 * the tracked tables that name that system.  The checks lock (advisory)
 * what they check against and then read it: a snapshot taken before that
 * lock could be waited for would check against what no longer is, where
 * row locks would have raised this same error.  Under READ COMMITTED each
 * check reads afresh: nothing to do.  Only those two tables: the function
 * reads past their privileges.
 */
PG_FUNCTION_INFO_V1(unchanged_since_snapshot);
Datum
unchanged_since_snapshot(PG_FUNCTION_ARGS)
{
	Oid			tracked = sr_internal_relid("tracked");
	Oid			systems = sr_internal_relid("system");
	Oid			relid;
	Oid			keytype = get_fn_expr_argtype(fcinfo->flinfo, 1);
	Datum		key;
	Relation	rel;
	bool		changed;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("_unchanged_since_snapshot() needs a table and a key"),
				 errhint("It is sync_resolve's own, for its policy checks.")));
	relid = PG_GETARG_OID(0);
	key = PG_GETARG_DATUM(1);
	if ((relid != tracked && relid != systems) ||
		!(keytype == OIDOID || keytype == TEXTOID) ||
		(relid == systems && keytype != TEXTOID))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("_unchanged_since_snapshot() checks sync_resolve.tracked by oid or system name, and sync_resolve.system by name"),
				 errhint("It is sync_resolve's own, for its policy checks.")));
	if (!IsolationUsesXactSnapshot())
		PG_RETURN_VOID();
	rel = table_open(relid, AccessShareLock);
	if (relid == tracked && keytype == TEXTOID)
	{
		char	   *name = TextDatumGetCString(key);
		int			nmine;
		int			nlatest;
		ItemPointerData *mine = tracked_naming(rel, name, GetTransactionSnapshot(), &nmine);
		ItemPointerData *latest = tracked_naming(rel, name, GetLatestSnapshot(), &nlatest);
		int			i;

		changed = nmine != nlatest;
		for (i = 0; !changed && i < nmine; i++)
			changed = !ItemPointerEquals(&mine[i], &latest[i]);
	}
	else
		changed = !TransactionIdEquals(row_xmin(rel, keytype, key, GetTransactionSnapshot()),
									   row_xmin(rel, keytype, key, GetLatestSnapshot()));
	table_close(rel, AccessShareLock);
	if (changed)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent change of %s",
						quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												   get_rel_name(relid))),
				 errdetail("Another transaction changed what this one checks against after its snapshot was taken."),
				 errhint("Retry the transaction.")));
	PG_RETURN_VOID();
}

/*
 * The column an ALTER TABLE ... RENAME COLUMN renamed, as {old, new}, or
 * NULL for any other command.  Reviews, waiting outbox entries and match_on
 * name a tracked table's columns by name: the event trigger follows the
 * rename into them, which pg_attribute alone (the new name only) cannot.
 */
PG_FUNCTION_INFO_V1(ddl_renamed_column);
Datum
ddl_renamed_column(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	RenameStmt *stmt;
	Datum		names[2];

	if (cmd == NULL || cmd->type != SCT_Simple || cmd->parsetree == NULL ||
		!IsA(cmd->parsetree, RenameStmt))
		PG_RETURN_NULL();
	stmt = (RenameStmt *) cmd->parsetree;
	if (stmt->renameType != OBJECT_COLUMN || stmt->subname == NULL || stmt->newname == NULL)
		PG_RETURN_NULL();
	names[0] = CStringGetTextDatum(stmt->subname);
	names[1] = CStringGetTextDatum(stmt->newname);
	PG_RETURN_ARRAYTYPE_P(construct_array(names, 2, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Whether a DDL command, as the event trigger collected it
 * (pg_event_trigger_ddl_commands().command), makes its table an inheritance
 * child: CREATE TABLE or CREATE FOREIGN TABLE ... INHERITS, or ALTER TABLE
 * ... INHERIT among the subcommands of an ALTER TABLE.  sync_resolve_ddl
 * warns about a child of a tracked table only then, not again at every
 * later ALTER TABLE of it.  A partition (PARTITION OF) is not one: it gets
 * the parent's triggers.
 */
PG_FUNCTION_INFO_V1(ddl_makes_inheritance);
Datum
ddl_makes_inheritance(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	Node	   *tree;
	ListCell   *lc;

	if (cmd == NULL)
		PG_RETURN_BOOL(false);
	tree = cmd->parsetree;
	if (cmd->type == SCT_Simple && tree != NULL)
	{
		CreateStmt *create = NULL;

		if (IsA(tree, CreateStmt))
			create = (CreateStmt *) tree;
		else if (IsA(tree, CreateForeignTableStmt))
			create = &((CreateForeignTableStmt *) tree)->base;
		PG_RETURN_BOOL(create != NULL && create->partbound == NULL && create->inhRelations != NIL);
	}
	if (cmd->type != SCT_AlterTable)
		PG_RETURN_BOOL(false);
	foreach(lc, cmd->d.alterTable.subcmds)
	{
		CollectedATSubcmd *sub = (CollectedATSubcmd *) lfirst(lc);

		if (sub != NULL && sub->parsetree != NULL && IsA(sub->parsetree, AlterTableCmd) &&
			((AlterTableCmd *) sub->parsetree)->subtype == AT_AddInherit)
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}
