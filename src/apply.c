/*-------------------------------------------------------------------------
 *
 * apply.c
 *		The entry points for incoming changes: apply(), apply_delete() and
 *		apply_batch(), and the row writes they share with resolve().
 *
 * One incoming image, in the caller's transaction (DESIGN section 5):
 *	1. parse and convert the payload (every error before any write);
 *	2. duplicate: the event_id was already received from this source;
 *	3. lock the local row, read the source's base and the local metadata;
 *	4. stale: not newer than what this source sent before, by version or by
 *	   its own clock, or older than a tombstone;
 *	5. gap: no local row -> insert;
 *	6. otherwise decide each column (resolve.c), then each column group,
 *	   compute merged values (strategies.c);
 *	7. write the row, open or update review items, write the base and the
 *	   local metadata, log the events, return the apply_result.
 *
 * Locking: the tracked row is locked first (FOR NO KEY UPDATE, or FOR
 * UPDATE for a delete), then the shadow rows are written; the local-write
 * trigger takes the same order, so neither path can deadlock the other.
 * Two images for a row that does not exist yet race on the INSERT: ON
 * CONFLICT DO NOTHING makes the loser wait, then lock the winner's row and
 * resolve against it.
 *
 * Memory: everything for one image is allocated in the current context,
 * which apply_batch resets per element; results are built in the caller's
 * context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"

#include "sync_resolve.h"

SrApplying sr_applying = {InvalidOid, NULL, NULL, InvalidCommandId};

/* vclock.c's SQL-callable conversions, used for apply_batch elements */
extern Datum vclock_in(PG_FUNCTION_ARGS);
extern Datum jsonb_to_vclock(PG_FUNCTION_ARGS);




/* apply_to_absent_row: another unique key refused the new row */
static const char SR_OUTCOME_CLASH[] = "clash";

static void take_other_bases(const SrTable *tab, int sidx, const SrRowState *now, SrRowState *st);
static void tell_source(const SrApplyCall *call, const SrImage *img, const SrShadowRow *lrow,
						const Datum *rowvals, const bool *rownulls, SrEventBatch *batch,
						SrOutboxWaiting *waiting);

static SPIPlanPtr delivery_plan = NULL;
static SPIPlanPtr rejected_plan = NULL;
static SPIPlanPtr dismiss_plan = NULL;

/* ------------------------------------------------------------------------
 * Row writes, shared with resolve()
 * ------------------------------------------------------------------------
 */

/* Copy a returned row (the table's columns in order) into values/nulls, by column index. */
void
sr_copy_row(const SrTable *tab, HeapTuple tup, TupleDesc td, Datum *values, bool *nulls)
{
	int			i;

	for (i = 0; i < tab->ncols; i++)
	{
		Datum		d = SPI_getbinval(tup, td, i + 1, &nulls[i]);

		values[i] = nulls[i] ? (Datum) 0 :
			datumCopy(d, tab->cols[i].typbyval, tab->cols[i].typlen);
	}
}

/*
 * An exclusive transaction lock on (table, key), for rows that do not exist
 * here: an advisory lock in sync_resolve's own space (its fourth field),
 * apart from the two-key advisory locks of applications.
 */
void
sr_lock_key(const SrTable *tab, Jsonb *key)
{
	LOCKTAG		tag;
	uint32		hash = DatumGetUInt32(DirectFunctionCall1(jsonb_hash, JsonbPGetDatum(key)));

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) tab->relid, hash, SR_ADVISORY_LOCK_SPACE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * Whether the caller may lock rows of rel found through its primary key
 * without SQL: a plain table, no row security, no inheritance children
 * (SQL would search them too), and SELECT and UPDATE on the whole table
 * (SQL checks column privileges and gives their errors).
 */
static bool
row_lock_direct(Relation rel)
{
	AclMode		need = ACL_SELECT | ACL_UPDATE;

	return rel->rd_rel->relkind == RELKIND_RELATION &&
		!rel->rd_rel->relrowsecurity && !rel->rd_rel->relhassubclass &&
		pg_class_aclmask(RelationGetRelid(rel), GetUserId(), need, ACLMASK_ALL) == need;
}

/* The table's columns of the row in slot, copied into values and nulls. */
static void
copy_slot_row(const SrTable *tab, TupleTableSlot *slot, Datum *values, bool *nulls)
{
	int			i;

	slot_getallattrs(slot);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		nulls[i] = slot->tts_isnull[a];
		values[i] = nulls[i] ? (Datum) 0 :
			datumCopy(slot->tts_values[a], tab->cols[i].typbyval, tab->cols[i].typlen);
	}
}

/*
 * Find the row of keyvals in rel through its primary key, without SQL, and
 * lock it in mode (sr_direct_lock_row()); its columns into values and
 * nulls when given.  False when there is none.
 */
static bool
lock_by_key(SrTable *tab, Relation rel, const Datum *keyvals, LockTupleMode mode,
			Datum *values, bool *nulls)
{
	Relation	index = index_open(tab->pkey_oid, RowShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	bool		found;

	found = sr_direct_lock_row(rel, index, tab->pkey_eq, tab->nkeys, keyvals, mode, slot);
	if (found && values != NULL)
		copy_slot_row(tab, slot, values, nulls);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	return found;
}

/*
 * SQL found no row for keyvals.  Where row security applies to the caller,
 * the row may be there all the same, hidden from it: taken for absent, a
 * delete from a source would be recorded for a row that stays, and a new
 * row would clash with it.  An error says so instead.  (Without an index
 * known to direct.c, a partitioned table, the row is taken for absent.)
 */
static void
refuse_hidden_row(SrTable *tab, const Datum *keyvals)
{
	Relation	rel;
	bool		found;

	if (tab->pkey_eq == NULL || check_enable_rls(tab->relid, InvalidOid, true) != RLS_ENABLED)
		return;
	rel = table_open(tab->relid, RowShareLock);
	found = lock_by_key(tab, rel, keyvals, LockTupleKeyShare, NULL, NULL);
	table_close(rel, NoLock);
	if (found)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("row %s of table %s exists, but row security does not let role \"%s\" change it",
						sr_jsonb_value_text(sr_build_key(tab, keyvals, NULL)), tab->display_name,
						GetUserNameFromId(GetUserId(), false)),
				 errhint("Call it as a role whose policies on %s let it see and update the row, or one with BYPASSRLS.",
						 tab->display_name)));
}

/*
 * Lock the local row, as SELECT ... FOR NO KEY UPDATE (for_delete: FOR
 * UPDATE) would; false when there is none.
 */
bool
sr_row_lock(SrTable *tab, const Datum *keyvals, bool for_delete,
			Datum *values, bool *nulls)
{
	int			n;

	if (tab->pkey_eq != NULL)
	{
		Relation	rel = table_open(tab->relid, RowShareLock);

		if (row_lock_direct(rel))
		{
			bool		found = lock_by_key(tab, rel, keyvals,
											for_delete ? LockTupleExclusive : LockTupleNoKeyExclusive,
											values, nulls);

			table_close(rel, NoLock);
			return found;
		}
		table_close(rel, NoLock);
	}

	sr_table_plans(tab);
	n = sr_spi_execute(for_delete ? tab->plan_lock_row_for_delete : tab->plan_lock_row,
					   (Datum *) keyvals, NULL, false, false, 0, SPI_OK_SELECT);
	if (n == 0)
	{
		refuse_hidden_row(tab, keyvals);
		return false;
	}
	if (values != NULL)
		sr_copy_row(tab, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, values, nulls);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/* Read the local row, locking nothing; false when there is none. */
bool
sr_row_read(SrTable *tab, const Datum *keyvals, Datum *values, bool *nulls)
{
	int			n;

	sr_table_plans(tab);
	n = sr_spi_execute(sr_plan_read_rows(tab, SR_ROWS_BY_KEY), (Datum *) keyvals, NULL, false, false,
					   0, SPI_OK_SELECT);
	if (n > 0 && values != NULL)
		sr_copy_row(tab, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, values, nulls);
	SPI_freetuptable(SPI_tuptable);
	return n > 0;
}

/*
 * Whether a trigger is one of sync_resolve's own on a tracked table: they
 * let sync_resolve's own writes pass (see own_write() in trigger.c).
 */
bool
sr_own_trigger(const Trigger *trig)
{
	char	   *name = get_func_name(trig->tgfoid);

	return name != NULL &&
		get_func_namespace(trig->tgfoid) == get_namespace_oid(SR_SCHEMA, false) &&
		(strcmp(name, "_local_write") == 0 || strcmp(name, "_source_write") == 0 ||
		 strcmp(name, "_truncate") == 0);
}

/*
 * Whether apply()'s UPDATE of a row of tab can be made without SQL, with
 * the same effect, beyond what row_lock_direct() asks of the table and the
 * caller: not a partition (whose constraint the statement checks), no
 * rules or stored generated columns, only sync_resolve's own triggers, and
 * columns that need nothing of an UPDATE's assignment but the value (no
 * typmod to coerce to, no domain to check, no identity GENERATED ALWAYS to
 * refuse).  Known once per SrTable, which any change to the table drops.
 */
static bool
update_direct_ok(SrTable *tab, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		ok;
	int			i;

	if (tab->update_direct != 0)
		return tab->update_direct == 'y';
	ok = tab->pkey_eq != NULL && !rel->rd_rel->relispartition && rel->rd_rules == NULL &&
		!(desc->constr != NULL && desc->constr->has_generated_stored);
	if (ok && rel->trigdesc != NULL)
		for (i = 0; i < rel->trigdesc->numtriggers; i++)
			ok = ok && sr_own_trigger(&rel->trigdesc->triggers[i]);
	for (i = 0; ok && i < tab->ncols; i++)
	{
		const SrColumn *col = &tab->cols[i];

		ok = col->attnum > 0 && col->attnum <= desc->natts &&
			col->typmod < 0 && col->typid == col->basetypid &&
			TupleDescAttr(desc, col->attnum - 1)->attidentity != ATTRIBUTE_IDENTITY_ALWAYS;
	}
	tab->update_direct = ok ? 'y' : 'n';
	return ok;
}

/*
 * The UPDATE of sr_row_update() without SQL, where row_lock_direct() and
 * update_direct_ok() allow it: true if made (*found: the row was there),
 * false if it must go through SQL.
 */
static bool
row_update_direct(SrTable *tab, const Datum *keyvals, Bitmapset *cols,
				  const Datum *values, const bool *nulls,
				  Datum *out_values, bool *out_nulls, bool *found)
{
	Relation	rel = table_open(tab->relid, RowExclusiveLock);
	Relation	index;
	TupleTableSlot *slot;
	int			natts = RelationGetDescr(rel)->natts;
	Datum	   *v;
	bool	   *n;
	bool	   *set;
	int			i;

	if (!row_lock_direct(rel) || !update_direct_ok(tab, rel))
	{
		table_close(rel, NoLock);
		return false;
	}
	v = palloc0(sizeof(Datum) * natts);
	n = palloc0(sizeof(bool) * natts);
	set = palloc0(sizeof(bool) * natts);
	i = -1;
	while ((i = bms_next_member(cols, i)) >= 0)
	{
		int			a = tab->cols[i].attnum - 1;

		set[a] = true;
		v[a] = values[i];
		n[a] = nulls[i];
	}
	index = index_open(tab->pkey_oid, RowExclusiveLock);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
	*found = sr_direct_update_row(rel, index, tab->pkey_eq, tab->nkeys, keyvals,
								  set, v, n, slot);
	if (*found && out_values != NULL)
		copy_slot_row(tab, slot, out_values, out_nulls);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(rel, NoLock);
	return true;
}

/*
 * Run a write on the tracked table with our own triggers told that it is
 * not a local write.  The flag is reset on the way out, errors included, so
 * that a caller catching the error does not leave local writes unrecorded.
 */
static int
tracked_write(SrTable *tab, const Datum *keyvals, SPIPlanPtr plan, Datum *values,
			  const char *nulls, int expected)
{
	SrApplying	saved = sr_applying;
	int			n;

	/*
	 * A command of its own, which the statement then runs as (SPI advances
	 * the counter only past a command that was used): a trigger of the
	 * table that writes the row again does so as a later command, and that
	 * write is a local one.
	 */
	CommandCounterIncrement();
	sr_applying.relid = tab->relid;
	sr_applying.tab = tab;
	sr_applying.keyvals = keyvals;
	sr_applying.cid = GetCurrentCommandId(false);
	PG_TRY();
	{
		n = sr_spi_execute(plan, values, nulls, false, false, 0, expected);
	}
	PG_FINALLY();
	{
		sr_applying = saved;
	}
	PG_END_TRY();
	return n;
}

/* An error of the table refusing a write: an integrity constraint */
static bool
refused_by_table(const ErrorData *edata)
{
	return ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION;
}

/*
 * fn(arg) in a subtransaction, for a write that another row may stand in
 * the way of.  False when the table refused it (an integrity constraint: a
 * unique key, a check), with the table's message in *why when why is not
 * NULL; any other error goes on up.
 */
static bool
try_write(void (*fn) (void *), void *arg, char **why)
{
	ErrorData  *edata;

	if (sr_try_subxact(fn, arg, refused_by_table, &edata))
		return true;
	if (why != NULL)
		*why = edata->message;
	return false;
}

typedef struct SrRowWrite
{
	SrTable    *tab;
	const Datum *keyvals;
	SPIPlanPtr	plan;
	Datum	   *values;
	const char *nulls;
	int			expected;
	int			n;				/* out */
} SrRowWrite;

static void
row_write(void *arg)
{
	SrRowWrite *w = (SrRowWrite *) arg;

	w->n = tracked_write(w->tab, w->keyvals, w->plan, w->values, w->nulls, w->expected);
}

/*
 * UPDATE the given columns of the row; the row as written (other BEFORE
 * triggers may have changed it) comes back in out_values/out_nulls.  False
 * when a BEFORE trigger of the table skipped the write.
 */
bool
sr_row_update(SrTable *tab, const Datum *keyvals, Bitmapset *cols,
			  const Datum *values, const bool *nulls,
			  Datum *out_values, bool *out_nulls)
{
	SrColumnSetPlan *slot;
	int			nparams;
	Datum	   *args;
	char	   *argnulls;
	int			p = 0;
	int			i;
	int			n;
	bool		found;

	if (row_update_direct(tab, keyvals, cols, values, nulls, out_values, out_nulls, &found))
		return found;
	slot = sr_plan_update(tab, cols);
	nparams = tab->nkeys + bms_num_members(slot->cols);
	args = palloc(sizeof(Datum) * (nparams + 1));
	argnulls = palloc(nparams + 1);
	for (i = 0; i < tab->nkeys; i++)
	{
		args[p] = keyvals[i];
		argnulls[p++] = ' ';
	}
	/* the plan's set may be wider than asked for: every column then */
	i = -1;
	while ((i = bms_next_member(slot->cols, i)) >= 0)
	{
		args[p] = values[i];
		argnulls[p++] = nulls[i] ? 'n' : ' ';
	}
	argnulls[p] = '\0';
	n = tracked_write(tab, keyvals, slot->plan, args, argnulls, SPI_OK_UPDATE_RETURNING);
	if (n == 1 && out_values != NULL)
		sr_copy_row(tab, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, out_values, out_nulls);
	SPI_freetuptable(SPI_tuptable);
	return n == 1;
}

/*
 * INSERT a row from the given columns (keys included); false when a row
 * with that key was inserted concurrently or another unique key clashed.
 */
bool
sr_row_insert(SrTable *tab, const Datum *keyvals, Bitmapset *cols,
			  const Datum *values, const bool *nulls,
			  Datum *out_values, bool *out_nulls)
{
	SPIPlanPtr	plan = sr_plan_insert(tab, cols);
	int			nparams = bms_num_members(cols);
	Datum	   *args = palloc(sizeof(Datum) * (nparams + 1));
	char	   *argnulls = palloc(nparams + 1);
	int			p = 0;
	int			i = -1;
	int			n;

	while ((i = bms_next_member(cols, i)) >= 0)
	{
		args[p] = values[i];
		argnulls[p++] = nulls[i] ? 'n' : ' ';
	}
	argnulls[p] = '\0';
	if (tab->deferrable_unique)
	{
		/* no ON CONFLICT for a deferrable constraint: its error says no */
		SrRowWrite	w = {tab, keyvals, plan, args, argnulls, SPI_OK_INSERT_RETURNING, 0};

		n = try_write(row_write, &w, NULL) ? w.n : 0;
	}
	else
		n = tracked_write(tab, keyvals, plan, args, argnulls, SPI_OK_INSERT_RETURNING);
	if (n == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return false;
	}
	if (out_values != NULL)
		sr_copy_row(tab, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, out_values, out_nulls);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

void
sr_row_delete(SrTable *tab, const Datum *keyvals)
{
	sr_table_plans(tab);
	/* the row is locked: only a rule or a row security policy keeps it */
	if (tracked_write(tab, keyvals, tab->plan_delete_row, (Datum *) keyvals, NULL,
					  SPI_OK_DELETE) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("row %s of table %s was not deleted",
						sr_jsonb_value_text(sr_build_key(tab, keyvals, NULL)), tab->display_name),
				 errdetail("A rule or a row security policy of the table turned the DELETE into nothing."),
				 errhint("sync_resolve deletes a row with a plain DELETE of it: let that through, or untrack the table.")));
}

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------
 */

static void
add_review_id(SrReviewIds *ids, int64 id)
{
	if (ids->n >= ids->cap)
	{
		ids->cap = ids->cap ? ids->cap * 2 : 4;
		ids->ids = ids->ids ? repalloc(ids->ids, sizeof(int64) * ids->cap)
			: palloc(sizeof(int64) * ids->cap);
	}
	ids->ids[ids->n++] = id;
}

/* timestamptz_to_str() returns a static buffer: copy it */
char *
sr_time_text(TimestampTz t)
{
	return pstrdup(timestamptz_to_str(t));
}

static TimestampTz
incoming_time(const SrApplyCall *call)
{
	return call->has_changed_at ? call->changed_at : call->received_at;
}

/*
 * The system acting must exist, sync this table, not be local, and let
 * the current user act for it.
 */
const SrSystem *
sr_check_source(const SrTable *tab, const char *source)
{
	const SrSystem *sys = sr_system_get(source, true);

	if (sys == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown system \"%s\" for table %s", source, tab->display_name),
				 errhint("Register it with sync_resolve.add_system(); sync_resolve.system lists the known ones.")));
	if (strcmp(source, SR_LOCAL) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"local\" cannot send changes to table %s", tab->display_name),
				 errdetail("local stands for this database's own writes, which the table's trigger records."),
				 errhint("Name the external system the change comes from.")));
	if (!sr_table_has_system(tab, source))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("system \"%s\" does not sync table %s", source, tab->display_name),
				 errhint("Add it to the table's systems: UPDATE sync_resolve.tracked SET systems = systems || '{%s}' WHERE relid = '%s'::regclass.",
						 source, tab->display_name)));
	if (OidIsValid(sys->member_role) &&
		!has_privs_of_role(GetUserId(), sys->member_role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not act as system \"%s\"",
						GetUserNameFromId(GetUserId(), false), source),
				 errhint("Only members of role \"%s\" may; GRANT it to the integration's role.",
						 GetUserNameFromId(sys->member_role, false))));
	return sys;
}


void
sr_init_image(const SrTable *tab, SrImage *img)
{
	int			i;

	img->present = palloc0(sizeof(bool) * (tab->ncols + 1));
	img->values = palloc0(sizeof(Datum) * (tab->ncols + 1));
	img->nulls = palloc(sizeof(bool) * (tab->ncols + 1));
	img->keyvals = palloc(sizeof(Datum) * (tab->nkeys + 1));
	img->key = NULL;
	img->npresent = 0;
	img->external_id = NULL;
	img->identity_known = false;
	img->linked = NULL;
	img->unkeyed = false;
	img->key_made = false;
	img->screened = NIL;
	for (i = 0; i <= tab->ncols; i++)
		img->nulls[i] = true;
}

/* Copy a present value of an image into another, in the current context. */
static void
copy_image_value(const SrTable *tab, SrImage *into, const SrImage *img, int c)
{
	const SrColumn *col = &tab->cols[c];

	into->nulls[c] = img->nulls[c];
	into->values[c] = img->nulls[c] ? (Datum) 0 :
		datumCopy(img->values[c], col->typbyval, col->typlen);
	if (!into->present[c] && !col->is_key)
		into->npresent++;
	into->present[c] = true;
}

/* A deep copy of an image, in the current memory context. */
SrImage *
sr_copy_image(const SrTable *tab, const SrImage *img)
{
	SrImage    *copy = palloc(sizeof(SrImage));
	ListCell   *lc;
	int			c;
	int			i;

	sr_init_image(tab, copy);
	for (c = 0; c < tab->ncols; c++)
		if (img->present[c])
			copy_image_value(tab, copy, img, c);
	for (i = 0; i < tab->nkeys; i++)
		copy->keyvals[i] = copy->values[tab->keys[i]];
	copy->key = img->key ? (Jsonb *) PG_DETOAST_DATUM_COPY(JsonbPGetDatum(img->key)) : NULL;
	copy->external_id = img->external_id ? pstrdup(img->external_id) : NULL;
	copy->identity_known = img->identity_known;
	copy->linked = img->linked ? pstrdup(img->linked) : NULL;
	copy->unkeyed = img->unkeyed;
	foreach(lc, img->screened)
	{
		SrScreened *s = (SrScreened *) lfirst(lc);
		SrScreened *t = palloc(sizeof(SrScreened));

		*t = *s;
		t->value = s->value ? (Jsonb *) PG_DETOAST_DATUM_COPY(JsonbPGetDatum(s->value)) : NULL;
		t->rule = s->rule ? pstrdup(s->rule) : NULL;
		copy->screened = lappend(copy->screened, t);
	}
	return copy;
}

/*
 * A later image of the same row over an earlier one: what it sends
 * replaces, what it leaves out stays.  Copied into into's memory context.
 */
void
sr_merge_image(const SrTable *tab, SrImage *into, const SrImage *img)
{
	MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(into->values));
	int			c;

	for (c = 0; c < tab->ncols; c++)
		if (img->present[c] && !tab->cols[c].is_key)
			copy_image_value(tab, into, img, c);
	MemoryContextSwitchTo(old);
}

/*
 * Find the row of an image whose payload has no primary key: by the
 * source's record id (sync_resolve.identity), else by the table's match_on
 * columns (a record created on both sides), else a new row keyed by the
 * key columns' defaults.  Lookups of one record id are serialized, so that
 * two deliveries of a new record make one row.
 */
static void
find_row(const SrApplyCall *call, SrImage *img)
{
	SrTable    *tab = call->tab;
	Jsonb	   *key = NULL;
	int			i;

	if (img->external_id != NULL)
	{
		const char *keys[2] = {"external_id", "system"};
		Jsonb	   *vals[2];

		vals[0] = sr_jsonb_string(img->external_id);
		vals[1] = sr_jsonb_string(call->source);
		if (!call->peek)
			sr_lock_key(tab, sr_jsonb_object(2, keys, vals));
		key = sr_identity_key(tab, call->source, img->external_id);
	}
	if (key != NULL)
	{
		sr_parse_key(tab, key, call->source, "the row linked to a record id", img->keyvals);
		img->identity_known = true;
	}
	else
	{
		int			n = sr_match_row(tab, img, img->keyvals, call->peek);
		StringInfoData cols;

		initStringInfo(&cols);
		for (i = 0; i < tab->nmatch; i++)
			appendStringInfo(&cols, "%s%s", i ? ", " : "", tab->cols[tab->match_on[i]].name);
		if (n > 1)
			ereport(ERROR,
					(errcode(ERRCODE_CARDINALITY_VIOLATION),
					 errmsg("record %s from system \"%s\" matches more than one row of table %s by %s",
							img->external_id ? img->external_id : "(no id)", call->source,
							tab->display_name, cols.data),
					 errhint("match_on must name a natural key: make those columns unique, or send the primary key.")));
		if (n < 0 && img->external_id == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("payload for table %s from system \"%s\" has no key column \"%s\"",
							tab->display_name, call->source, tab->cols[tab->keys[0]].name),
					 errhint("Send every primary-key column (%s), or the record id, or every match_on column (%s).",
							 sr_key_column_list(tab), cols.data)));
		if (n == 1)
			img->linked = psprintf("new record %s of %s has the same %s as this row: linked to it",
								   img->external_id ? img->external_id : "(no id)", call->source, cols.data);
		else if (call->peek)
		{
			/* a new row's key would come from its defaults: not taken to look */
			img->unkeyed = true;
			return;
		}
		else
		{
			for (i = 0; i < tab->nkeys; i++)
			{
				int			c = tab->keys[i];
				bool		isnull;

				img->keyvals[i] = sr_column_default(tab, c, &isnull);
				if (isnull)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("payload for table %s from system \"%s\" has no key column \"%s\"",
									tab->display_name, call->source, tab->cols[c].name),
							 img->external_id
							 ? errdetail("Record %s of %s is linked to no row%s.", img->external_id, call->source,
										 tab->nmatch ? " and matches none by match_on" : "")
							 : 0,
							 errhint("Send every primary-key column (%s), or give the key a default so that new records get one.",
									 sr_key_column_list(tab))));
			}
			img->key_made = true;
		}
	}
	for (i = 0; i < tab->nkeys; i++)
	{
		int			c = tab->keys[i];

		img->values[c] = img->keyvals[i];
		img->nulls[c] = false;
		img->present[c] = true;
	}
}

/* A value set aside: not taken as it came */
static void
screen(SrImage *img, int c, const char *kind, Jsonb *value, char *rule, bool review)
{
	SrScreened *s = palloc(sizeof(SrScreened));

	s->col = c;
	s->kind = kind;
	s->value = value;
	s->rule = rule;
	s->review = review;
	img->screened = lappend(img->screened, s);
}

/* Whether column c is one match_on looks a row up by */
static bool
is_match_column(const SrTable *tab, int c)
{
	int			i;

	for (i = 0; i < tab->nmatch; i++)
		if (tab->match_on[i] == c)
			return true;
	return false;
}

/*
 * One payload field into the image: through the source's field and value
 * maps to a column and a value of its type.
 */
static void
parse_field(const SrApplyCall *call, SrImage *img, const char *field, JsonbValue *v,
			bool *seen)
{
	SrTable    *tab = call->tab;
	SrErrorTarget where = {tab, call->source, NULL};
	SrFieldMap *map;
	SrColumn   *col;
	int			c = sr_field_column(tab, call->sidx, field, &map);
	Datum		mapped;

	if (c == SR_FIELD_ID)
	{
		char	   *id = v->type == jbvBool ? NULL : sr_external_text(v);

		if (id == NULL || id[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("record id field \"%s\" from system \"%s\" for table %s is not a string or number",
							field, call->source, tab->display_name),
					 errhint("sync_resolve.field_map names \"%s\" as the record id of %s.", field, call->source)));
		img->external_id = id;
		return;
	}
	if (c == SR_FIELD_UNKNOWN)
	{
		if (call->sys->ignore_unknown_fields || call->keys_only)
			return;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("field \"%s\" from system \"%s\" matches no column of table %s",
						field, call->source, tab->display_name),
				 errdetail("Fields name columns exactly, case included, or as sync_resolve.field_map maps them; generated columns are never written."),
				 errhint("Leave the field out, map it in sync_resolve.field_map, or mark the system to ignore unknown fields (sync_resolve.system.ignore_unknown_fields).")));
	}
	col = &tab->cols[c];
	/* by its name and by a mapped field, or by two mapped fields */
	if (seen[c])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("field \"%s\" from system \"%s\" sets column \"%s\" of table %s, which another field of the payload set",
						field, call->source, col->name, tab->display_name),
				 errhint("Send each column once: by its name or by the field sync_resolve.field_map maps to it.")));
	seen[c] = true;
	if (call->keys_only && !col->is_key && !is_match_column(tab, c))
		return;
	/* the table makes its values (a key's is taken: it names the row) */
	if (col->identity_always && !col->is_key)
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("field \"%s\" from system \"%s\" sets column \"%s\" of table %s, an identity column GENERATED ALWAYS",
						field, call->source, col->name, tab->display_name),
				 errhint("Leave the field out, or make the column GENERATED BY DEFAULT AS IDENTITY so that sources may set it.")));
	sr_field_in(tab, call->source, map, v);
	switch (col->is_key ? SR_VALUE_AS_IS : sr_value_in(col, call->sidx, v, &mapped))
	{
		case SR_VALUE_MAPPED:
			img->values[c] = mapped;
			img->nulls[c] = false;
			break;
		case SR_VALUE_UNMAPPED:
			{
				Jsonb	   *raw = JsonbValueToJsonb(v);
				char	   *rule = psprintf("%s's value %s of %s has no mapping (sync_resolve.value_map)",
											call->source, sr_jsonb_value_text(raw), col->name);

				switch (col->unmapped)
				{
					case SR_UNMAPPED_PASS:
						img->values[c] = sr_jsonb_value_to_datum(col, v, &img->nulls[c], &where);
						break;
					case SR_UNMAPPED_NULL:
						img->values[c] = (Datum) 0;
						img->nulls[c] = true;
						break;
					case SR_UNMAPPED_DEFAULT:
						/* only reading: its default, maybe nextval(), is not taken to compare */
						if (call->peek)
							return;
						img->values[c] = sr_column_default(tab, c, &img->nulls[c]);
						break;
					case SR_UNMAPPED_REVIEW:
					case SR_UNMAPPED_REJECT:
						screen(img, c, "unmapped", raw, rule, col->unmapped == SR_UNMAPPED_REVIEW);
						return;
				}
				break;
			}
		default:
			img->values[c] = sr_jsonb_value_to_datum(col, v, &img->nulls[c], &where);
			break;
	}
	if (!img->present[c] && !col->is_key)
		img->npresent++;
	img->present[c] = true;
}

void
sr_parse_image(const SrApplyCall *call, SrImage *img)
{
	const SrTable *tab = call->tab;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *field = NULL;
	bool		has_key = true;
	bool	   *seen = palloc0(sizeof(bool) * (tab->ncols + 1));
	int			i;

	sr_init_image(tab, img);

	if (!JB_ROOT_IS_OBJECT(call->payload))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload for table %s from system \"%s\" is not a JSON object",
						tab->display_name, call->source),
				 errdetail("It was %s.", sr_jsonb_value_text(call->payload)),
				 errhint("Send the row as an object of column names and values.")));

	it = JsonbIteratorInit(&call->payload->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			field = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			parse_field(call, img, field, &v, seen);
	}

	for (i = 0; i < tab->nkeys; i++)
	{
		int			c = tab->keys[i];

		if (img->present[c] && img->nulls[c])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("key column \"%s\" of table %s is null in the payload from system \"%s\"",
							tab->cols[c].name, tab->display_name, call->source),
					 errhint("A row is identified by its primary key; send a value for it.")));
		if (!img->present[c])
			has_key = false;
		else
			img->keyvals[i] = img->values[c];
	}
	if (!has_key)
	{
		/* a partial key is a mistake, not a record to look up */
		for (i = 0; i < tab->nkeys; i++)
			if (img->present[tab->keys[i]])
			{
				int			missing = 0;

				while (img->present[tab->keys[missing]])
					missing++;
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("payload for table %s from system \"%s\" has no key column \"%s\"",
								tab->display_name, call->source, tab->cols[tab->keys[missing]].name),
						 errhint("Every primary-key column must be sent: %s.", sr_key_column_list(tab))));
			}
		if (img->external_id == NULL && tab->nmatch == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("payload for table %s from system \"%s\" has no key column \"%s\"",
							tab->display_name, call->source, tab->cols[tab->keys[0]].name),
					 errhint("Every primary-key column must be sent: %s.", sr_key_column_list(tab))));
		find_row(call, img);
	}
	if (!img->unkeyed)
		img->key = sr_build_key(tab, img->keyvals, NULL);
}

/* Record the delivery id; false when it was already there. */
static bool
record_delivery(const SrApplyCall *call, Jsonb *key)
{
	Datum		values[4];

	if (delivery_plan == NULL)
	{
		Oid			types[4] = {TEXTOID, TEXTOID, REGCLASSOID, JSONBOID};
		SPIPlanPtr	plan;

		plan = sr_prepare_kept("INSERT INTO sync_resolve.delivery (system, event_id, relid, key)"
						   " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", 4, types, true);
		delivery_plan = plan;
	}
	values[0] = CStringGetTextDatum(call->source);
	values[1] = CStringGetTextDatum(call->event_id);
	values[2] = ObjectIdGetDatum(call->tab->relid);
	values[3] = JsonbPGetDatum(key);
	return sr_spi_execute(delivery_plan, values, NULL, true, false, 0, SPI_OK_INSERT) == 1;
}

/*
 * The row's open reviews have nothing left to decide (it was deleted, or
 * is back after a delete, by `by`): dismissed, with why, and their columns
 * released.
 */
void
sr_release_reviews(const SrTable *tab, Jsonb *key, SrShadowRow *lrow, const char *by,
				   const char *why)
{
	bool		any = false;
	int			c;

	for (c = 0; c < tab->ncols; c++)
		if (lrow->held[c])
		{
			lrow->held[c] = false;
			lrow->dirty = true;
			any = true;
		}
	if (any)
		sr_dismiss_reviews(tab, key, by, why);
}

/*
 * Dismiss the open reviews of a row whose question went away with what
 * `by` did (why says what), each with a review_resolved event, so that
 * the row's history tells where its open items went.
 */
void
sr_dismiss_reviews(const SrTable *tab, Jsonb *key, const char *by, const char *why)
{
	Datum		values[3];
	SrEventBatch batch;
	uint64		n;
	uint64		i;
	int64	   *ids;
	char	  **cols;

	if (dismiss_plan == NULL)
	{
		Oid			types[3] = {REGCLASSOID, JSONBOID, TEXTOID};
		SPIPlanPtr	plan;

		plan = sr_prepare_kept("UPDATE sync_resolve.review SET status = 'dismissed',"
						   " resolved_at = pg_catalog.now(), updated_at = pg_catalog.now(), note = $3"
						   " WHERE relid OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2"
						   " AND status OPERATOR(pg_catalog.=) 'open'"
						   " RETURNING id, column_name", 3, types, true);
		dismiss_plan = plan;
	}
	values[0] = ObjectIdGetDatum(tab->relid);
	values[1] = JsonbPGetDatum(key);
	values[2] = CStringGetTextDatum(why);
	n = sr_spi_execute(dismiss_plan, values, NULL, true, false, 0, SPI_OK_UPDATE_RETURNING);
	if (n == 0)
		return;
	/* read before the events are written: that reuses SPI's result */
	ids = palloc(sizeof(int64) * n);
	cols = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		cols[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
	}
	SPI_freetuptable(SPI_tuptable);

	memset(&batch, 0, sizeof(batch));
	batch.relid = tab->relid;
	batch.key = key;
	batch.source = by;
	batch.received_at = GetCurrentTimestamp();
	for (i = 0; i < n; i++)
		sr_event_add(&batch, "review_resolved", cols[i], NULL, NULL, NULL, NULL, why,
					 "dismissed", ids[i]);
	sr_events_flush(&batch);
}

/*
 * Why the image is stale, or NULL.  The version and changed_at are compared
 * with what this same source sent before; a tombstone with the time of the
 * delete.
 */
static char *
stale_reason(const SrApplyCall *call, const SrShadowRow *srow,
			 const SrShadowRow *lrow, bool row_found)
{
	if (call->version != NULL && srow->version != NULL)
	{
		SrVclockOrder o = sr_vclock_compare(call->version, srow->version);

		if (o == SR_VC_BEFORE || o == SR_VC_EQUAL)
			return psprintf("version %s is not newer than %s, the last seen from %s",
							sr_vclock_to_cstring(call->version),
							sr_vclock_to_cstring(srow->version), call->source);
	}
	if (call->has_changed_at && srow->has_changed_at && !call->in_order &&
		call->changed_at < srow->changed_at)
		return psprintf("%s changed it at %s, before %s, its last change already seen",
						call->source, sr_time_text(call->changed_at),
						sr_time_text(srow->changed_at));
	if (!row_found && lrow->found && lrow->deleted && call->has_changed_at &&
		call->changed_at < lrow->deleted_at)
		return psprintf("the row was deleted by %s at %s, after this change of %s",
						lrow->deleted_by ? lrow->deleted_by : SR_LOCAL,
						sr_time_text(lrow->deleted_at),
						sr_time_text(call->changed_at));
	return NULL;
}

/* Object {column: value} of the given non-key columns of a row (NULL: all) */
Jsonb *
sr_row_object(const SrTable *tab, const Datum *values, const bool *nulls,
		   const bool *which)
{
	const char **names = palloc(sizeof(char *) * (tab->ncols + 1));
	Jsonb	  **vals = palloc(sizeof(Jsonb *) * (tab->ncols + 1));
	int			i;

	for (i = 0; i < tab->ncols; i++)
	{
		names[i] = tab->cols[i].name;
		vals[i] = (!tab->cols[i].is_key && (which == NULL || which[i]))
			? sr_datum_to_jsonb(&tab->cols[i], values[i], nulls[i]) : NULL;
	}
	return sr_jsonb_object(tab->ncols, names, vals);
}

static SrSide
local_side(const SrTable *tab, const SrShadowRow *lrow, int c)
{
	SrSide		s;
	const SrSystem *sys;

	s.system = lrow->col_writer[c] ? lrow->col_writer[c] : SR_LOCAL;
	sys = sr_system_get(s.system, true);
	s.priority = sys ? sys->priority : 100;
	s.since_tracking = TIMESTAMP_IS_NOBEGIN(lrow->col_changed_at[c]);
	s.changed_at = s.since_tracking ? tab->tracked_at : lrow->col_changed_at[c];
	return s;
}

/*
 * What the decision on column c needs to know: the incoming value I
 * against the local L and the source's base srow, with the row's local
 * metadata lrow; the caller sets present and dominated.
 */
void
sr_column_input(const SrApplyCall *call, int c, Datum I, bool Inull, Datum L, bool Lnull,
				const SrShadowRow *srow, const SrShadowRow *lrow, const SrSide *incoming,
				SrColumnInput *in)
{
	const SrColumn *col = &call->tab->cols[c];

	in->delta_remote = !srow->known[c] ||
		!sr_datum_equal(col, I, Inull, srow->values[c], srow->nulls[c]);
	in->incoming_equals_local = sr_datum_equal(col, I, Inull, L, Lnull);
	/*
	 * Without a base for the column, the local value counts as changed
	 * unless it came from this same source (a column it left to its default
	 * when it created the row, say).
	 */
	if (srow->known[c])
		in->delta_local = !sr_datum_equal(col, L, Lnull, srow->values[c], srow->nulls[c]);
	else
		in->delta_local = !in->incoming_equals_local &&
			!(lrow->col_writer[c] != NULL && strcmp(lrow->col_writer[c], call->source) == 0);
	in->held = lrow->held[c];
	in->authorized = sr_column_writable_by(col, call->source);
	in->local = local_side(call->tab, lrow, c);
	in->incoming = *incoming;
}

/*
 * A value-computing strategy's decision on column c (dec->needs_value):
 * the value it computes in M, Mnull, and what that comes to -- the local
 * value kept, the incoming taken, a value of both merged, or review when
 * the strategy cannot merge them.
 */
void
sr_merge_column(const SrApplyCall *call, Jsonb *key, int c, Datum I, bool Inull,
				Datum L, bool Lnull, const SrShadowRow *srow, const SrColumnInput *in,
				SrColumnDecision *dec, Datum *M, bool *Mnull)
{
	const SrColumn *col = &call->tab->cols[c];
	SrMergeInput mi;
	char	   *why = NULL;

	memset(&mi, 0, sizeof(mi));
	mi.tab = call->tab;
	mi.col = col;
	mi.key = key;
	mi.source = call->source;
	mi.local = L;
	mi.local_null = Lnull;
	mi.incoming = I;
	mi.incoming_null = Inull;
	mi.base = srow->values[c];
	mi.base_null = srow->nulls[c];
	mi.base_known = srow->known[c];
	mi.local_side = in->local;
	mi.incoming_side = in->incoming;
	if (!sr_merge_value(col->strategy, &mi, M, Mnull, &why))
		dec->action = SR_ACT_REVIEW;
	else if (sr_datum_equal(col, *M, *Mnull, L, Lnull))
		dec->action = SR_ACT_KEEP;	/* max/min, custom: one side won */
	else if (sr_datum_equal(col, *M, *Mnull, I, Inull))
		dec->action = SR_ACT_TAKE;
	else
		dec->action = SR_ACT_MERGE;
	dec->rule = why;
}

/* Open a review item (or update the open one) and hold its columns. */
static int64
open_review(const SrApplyCall *call, SrEventBatch *batch, SrShadowRow *lrow,
			Jsonb *key, const char *label, List *cols, const char *kind,
			Jsonb *local_value, Jsonb *incoming_value, Jsonb *base_value,
			const char *strategy, const char *reason)
{
	SrReviewRequest req;
	bool		updated;
	int64		id;
	ListCell   *lc;

	req.relid = call->tab->relid;
	req.key = key;
	req.column_name = label;
	req.columns = NIL;
	foreach(lc, cols)
		req.columns = lappend(req.columns, call->tab->cols[lfirst_int(lc)].name);
	req.kind = kind;
	req.source = call->source;
	req.local_value = local_value;
	req.incoming_value = incoming_value;
	req.base_value = base_value;
	req.strategy = strategy;
	req.reason = reason;
	id = sr_review_open(&req, &updated);
	foreach(lc, cols)
	{
		if (!lrow->held[lfirst_int(lc)])
		{
			lrow->held[lfirst_int(lc)] = true;
			lrow->dirty = true;
		}
	}
	if (updated)
		sr_event_add(batch, "review_updated", label, local_value, incoming_value,
					 base_value, NULL, reason, NULL, id);
	else
		sr_event_add(batch, "review_opened", label, local_value, incoming_value,
					 base_value, NULL, reason, NULL, id);
	return id;
}

/*
 * Column group g, when a member is in conflict or held by an open review, is
 * decided as one (DESIGN 6): true, with the decision in *gd -- for custom,
 * the function's values of the members in M, Mnull.  dec: each column's own
 * decision; I, Inull: the incoming values, where a member the source did not
 * send is given its base value (or the local one, with no base).  Nothing is
 * written: the caller holds the columns for review and logs the conflict.
 */
bool
sr_decide_group(const SrApplyCall *call, const SrImage *img, int g, const Datum *L,
				const bool *Lnull, const SrShadowRow *srow, const SrShadowRow *lrow,
				const SrColumnDecision *dec, const SrSide *incoming, Datum *I, bool *Inull,
				Datum *M, bool *Mnull, SrGroupDecision *gd)
{
	const SrTable *tab = call->tab;
	int			ncols = tab->ncols;
	SrGroup    *grp = &tab->groups[g];
	const SrColumn *first = &tab->cols[grp->cols[0]];
	bool		conflict = false;
	SrColumnInput gin;
	SrColumnDecision *gdec = &gd->dec;
	char	   *label;
	int			k;
	int			c;
	bool	   *bknown = palloc0(sizeof(bool) * ncols);
	bool		any_base = false;

	memset(gd, 0, sizeof(*gd));
	gd->members = palloc0(sizeof(bool) * ncols);
	for (k = 0; k < grp->ncols; k++)
	{
		c = grp->cols[k];
		gd->members[c] = true;
		if (dec[c].delta == SR_DELTA_CONFLICT && dec[c].kind != NULL &&
			strcmp(dec[c].kind, "conflict") == 0)
			conflict = true;
		if (lrow->held[c] && dec[c].delta != SR_DELTA_NONE)
			gd->held = true;
	}
	if (!conflict && !gd->held)
		return false;

	/* a member the source did not send counts at its base value */
	for (k = 0; k < grp->ncols; k++)
	{
		c = grp->cols[k];
		if (!img->present[c])
		{
			if (srow->known[c])
			{
				I[c] = srow->values[c];
				Inull[c] = srow->nulls[c];
			}
			else
			{
				I[c] = L[c];
				Inull[c] = Lnull[c];
			}
		}
		if (srow->known[c])
		{
			bknown[c] = true;
			any_base = true;
		}
	}
	label = psprintf("group %s", grp->name);
	gd->lobj = sr_row_object(tab, L, Lnull, gd->members);
	gd->iobj = sr_row_object(tab, I, Inull, gd->members);
	if (any_base)
		gd->bobj = sr_row_object(tab, srow->values, srow->nulls, bknown);

	memset(&gin, 0, sizeof(gin));
	gin.incoming = *incoming;
	gin.local = local_side(tab, lrow, grp->cols[0]);
	for (k = 1; k < grp->ncols; k++)
	{
		SrSide		s = local_side(tab, lrow, grp->cols[k]);

		if (s.changed_at > gin.local.changed_at)
			gin.local = s;
	}

	memset(gdec, 0, sizeof(*gdec));
	if (gd->held)
	{
		gdec->action = SR_ACT_REVIEW;
		gdec->rule = psprintf("%s is held by an open review", label);
	}
	else
	{
		sr_decide_winner(first->strategy, first->owner, label, &gin, gdec);
		if (gdec->needs_value)
		{
			/* custom is the only value strategy a group may have */
			SrMergeInput mi;
			Jsonb	   *r;

			memset(&mi, 0, sizeof(mi));
			mi.tab = tab;
			mi.col = first;
			mi.key = img->key;
			mi.source = call->source;
			mi.local_side = gin.local;
			mi.incoming_side = gin.incoming;
			r = sr_call_custom(first, grp->name, &mi, gd->lobj, gd->iobj, gd->bobj);
			gdec->needs_value = false;
			if (r == NULL)
			{
				gdec->action = SR_ACT_REVIEW;
				gdec->rule = psprintf("%s returned NULL for %s: a person decides",
									  format_procedure(first->custom_fn), label);
			}
			else
			{
				SrErrorTarget where = {tab, call->source,
				psprintf("returned by %s", format_procedure(first->custom_fn))};

				if (!JB_ROOT_IS_OBJECT(r))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("custom function %s returned %s for %s of table %s, not an object",
									format_procedure(first->custom_fn), sr_jsonb_value_text(r),
									label, tab->display_name),
							 errhint("For a column group, return an object of the group's columns.")));
				gdec->action = SR_ACT_MERGE;
				gdec->rule = psprintf("%s decided %s", format_procedure(first->custom_fn), label);
				for (k = 0; k < grp->ncols; k++)
				{
					JsonbValue	v;

					c = grp->cols[k];
					if (sr_jsonb_get_field(r, tab->cols[c].name, &v))
						M[c] = sr_jsonb_value_to_datum(&tab->cols[c], &v, &Mnull[c], &where);
					else
					{
						M[c] = L[c];
						Mnull[c] = Lnull[c];
					}
				}
			}
		}
	}
	return true;
}

/*
 * Leave a row to a person, as a delete from call->source that crossed a
 * change here is left under on_delete_conflict = review: a review item of
 * kind 'delete' holding every column, which take_incoming decides by
 * deleting the row and keep_local by sending it back to the source.  For
 * reconcile's repair of a row the source held but has no record of.  The
 * item's id, or 0 when the row is gone by now.
 */
int64
sr_review_row_gone(const SrApplyCall *call, const Datum *keyvals, Jsonb *key,
				   const char *reason, SrEventBatch *batch)
{
	SrTable    *tab = call->tab;
	Datum	   *L = palloc0(sizeof(Datum) * (tab->ncols + 1));
	bool	   *Lnull = palloc0(sizeof(bool) * (tab->ncols + 1));
	SrRowState	st;
	List	   *held = NIL;
	int64		id;
	int			c;

	if (!sr_row_lock(tab, keyvals, false, L, Lnull))
		return 0;
	sr_shadow_load(tab, keyvals, &st);
	for (c = 0; c < tab->ncols; c++)
		if (!tab->cols[c].is_key)
			held = lappend_int(held, c);
	id = open_review(call, batch, &st.local, key, NULL, held, "delete",
					 sr_row_object(tab, L, Lnull, NULL), NULL, NULL, NULL, reason);
	if (st.local.dirty)
		sr_shadow_local_write(tab, keyvals, &st.local);
	return id;
}

/*
 * A delete and a change that crossed: the conflict on the whole row, which
 * tracked.on_delete_conflict decides.
 */
static void
delete_conflict_event(SrEventBatch *batch, Jsonb *old_value, Jsonb *incoming_value,
					  Jsonb *new_value, const char *rule, const char *decision)
{
	sr_event_add(batch, "conflict", NULL, old_value, incoming_value, NULL, new_value, rule,
				 decision, 0)->strategy = "on_delete_conflict";
}

static const char *
decision_words(SrAction action, const char *source)
{
	switch (action)
	{
		case SR_ACT_TAKE:
			return psprintf("took %s", source);
		case SR_ACT_KEEP:
			return "kept local";
		case SR_ACT_MERGE:
			return "merged";
		case SR_ACT_REVIEW:
			return "held for review";
		case SR_ACT_REJECT:
			return "refused";
		case SR_ACT_NOTHING:
			break;
	}
	return "nothing to do";
}

/* The row's version (own) with the source's merged in, if it may be. */
static SrVclock *
merge_source_version(const SrApplyCall *call, SrVclock *own)
{
	sr_vclock_check_incoming(call->version, own, call->source, call->tab->display_name);
	return own ? sr_vclock_merge(own, call->version) : call->version;
}

/* The row's version takes in the source's. */
static void
finish_versions(const SrApplyCall *call, SrShadowRow *lrow)
{
	SrVclock   *merged;

	if (call->version == NULL)
		return;
	merged = merge_source_version(call, lrow->version);
	if (lrow->version == NULL || sr_vclock_compare(merged, lrow->version) != SR_VC_EQUAL)
	{
		lrow->version = merged;
		lrow->dirty = true;
	}
}

/*
 * Does an image that changes nothing only repeat what this database sent
 * the source?  Either every column it sent equals a base value we sent and
 * the source confirmed, or it matches an entry still waiting for
 * confirmation, which it then confirms.
 */
static bool
is_echo(const SrApplyCall *call, const SrImage *img, const SrColumnInput *in,
		SrShadowRow *srow)
{
	const SrTable *tab = call->tab;
	bool		all_sent = true;
	bool		convergent = false;
	int64		id;
	int			c;

	for (c = 0; c < tab->ncols; c++)
	{
		if (tab->cols[c].is_key || !img->present[c])
			continue;
		if (in[c].delta_remote || !srow->sent[c])
			all_sent = false;
		if (in[c].delta_remote && in[c].incoming_equals_local)
			convergent = true;
	}
	if (all_sent)
		return true;
	if (!convergent)
		return false;
	id = sr_outbox_find_echo(tab, img->key, call->source, NULL,
							 sr_row_object(tab, img->values, img->nulls, img->present));
	if (id == 0)
		return false;
	sr_outbox_confirm_echo(id);
	/* what the source holds now is what we sent */
	for (c = 0; c < tab->ncols; c++)
		if (!tab->cols[c].is_key && img->present[c])
			srow->sent[c] = true;
	return true;
}

/* Two writers of a column, as the local metadata names them (NULL: unknown). */
static bool
same_writer(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/*
 * sync_resolve wrote shadow rows while this call's own write of the row
 * ran: a trigger of the table wrote the row again (a local write, recorded
 * then) or applied another image to it.  Those writes came after this
 * call's, and what they recorded stands: the row as it now is goes to
 * rowvals/rownulls, the local metadata of the columns they changed
 * (orig_*: as this call read it) and the other systems' bases they
 * advanced go into st, and st's rows are the shadow's current versions.
 * Returns, per column, whether such a write changed it: its change is
 * theirs to send, not this call's.  *gone: such a write deleted the row (or
 * moved it to another key); its tombstone is then st's, and there is
 * nothing left for this call to send.
 */
static bool *
take_nested_writes(const SrApplyCall *call, const SrImage *img, SrRowState *st,
				   char **orig_writer, const TimestampTz *orig_changed_at,
				   Datum *rowvals, bool *rownulls, bool *gone)
{
	SrTable    *tab = call->tab;
	SrRowState	now;
	Datum	   *cur = palloc(sizeof(Datum) * (tab->ncols + 1));
	bool	   *curnull = palloc(sizeof(bool) * (tab->ncols + 1));
	bool	   *nested = palloc0(sizeof(bool) * (tab->ncols + 1));
	bool		row_there;
	int			c;

	sr_shadow_load(tab, img->keyvals, &now);
	/* the row is this call's to lock already: its values as they are now */
	row_there = sr_row_lock(tab, img->keyvals, false, cur, curnull);
	*gone = !row_there;
	for (c = 0; c < tab->ncols; c++)
	{
		if (tab->cols[c].is_key)
			continue;
		/* a review a nested call opened holds its column */
		st->local.held[c] |= now.local.held[c];
		/* not written since (every column is, when the row went) */
		if (row_there &&
			same_writer(now.local.col_writer[c], orig_writer[c]) &&
			now.local.col_changed_at[c] == orig_changed_at[c] &&
			sr_datum_equal(&tab->cols[c], cur[c], curnull[c], rowvals[c], rownulls[c]))
			continue;
		nested[c] = true;
		st->local.col_writer[c] = now.local.col_writer[c];
		st->local.col_changed_at[c] = now.local.col_changed_at[c];
		if (row_there)
		{
			rowvals[c] = cur[c];
			rownulls[c] = curnull[c];
		}
	}
	if (!row_there)
	{
		st->local.deleted = now.local.deleted;
		st->local.deleted_at = now.local.deleted_at;
		st->local.deleted_by = now.local.deleted_by;
	}
	st->local.found = now.local.found;
	st->local.has_tid = now.local.has_tid;
	st->local.tid = now.local.tid;
	st->local.xmin = now.local.xmin;
	st->local.version = now.local.version;
	take_other_bases(tab, call->sidx, &now, st);
	return nested;
}

/*
 * The other systems' bases as now read (a nested call may have advanced
 * them), and the source's base's current version to write over (its
 * content stays this call's).
 */
static void
take_other_bases(const SrTable *tab, int sidx, const SrRowState *now, SrRowState *st)
{
	int			i;

	for (i = 0; i < tab->nsystems; i++)
	{
		if (i != sidx)
		{
			st->bases[i] = now->bases[i];
			continue;
		}
		st->bases[i].found = now->bases[i].found;
		st->bases[i].has_tid = now->bases[i].has_tid;
		st->bases[i].tid = now->bases[i].tid;
		st->bases[i].xmin = now->bases[i].xmin;
	}
}

/* ------------------------------------------------------------------------
 * An image for a row that exists
 * ------------------------------------------------------------------------
 */

static void
apply_to_row(SrApplyCall *call, SrImage *img, Datum *L, bool *Lnull,
			 SrRowState *st, SrEventBatch *batch,
			 SrApplyResult *res, SrReviewIds *reviews)
{
	SrTable    *tab = call->tab;
	SrShadowRow *srow = &st->bases[call->sidx];
	SrShadowRow *lrow = &st->local;
	int			ncols = tab->ncols;
	SrColumnInput *in = palloc0(sizeof(SrColumnInput) * ncols);
	SrColumnDecision *dec = palloc0(sizeof(SrColumnDecision) * ncols);
	Datum	   *I = palloc(sizeof(Datum) * ncols);
	bool	   *Inull = palloc(sizeof(bool) * ncols);
	Datum	   *M = palloc0(sizeof(Datum) * ncols);
	bool	   *Mnull = palloc0(sizeof(bool) * ncols);
	bool	   *in_group_decision = palloc0(sizeof(bool) * ncols);
	Datum	   *newvals = palloc(sizeof(Datum) * ncols);
	bool	   *newnulls = palloc(sizeof(bool) * ncols);
	bool	   *changed_cols = palloc0(sizeof(bool) * ncols);
	char	  **saved_writer = palloc(sizeof(char *) * ncols);
	TimestampTz *saved_changed_at = palloc(sizeof(TimestampTz) * ncols);
	Bitmapset  *changed = NULL;
	bool		dominated = false;
	SrSide		incoming;
	SrOutboxWaiting waiting;
	bool		gone = false;
	int			c;
	int			g;
	TimestampTz tin = incoming_time(call);

	if (call->version != NULL && lrow->version != NULL)
	{
		SrVclockOrder o = sr_vclock_compare(call->version, lrow->version);

		dominated = (o == SR_VC_AFTER || o == SR_VC_EQUAL);
	}
	incoming.system = call->source;
	incoming.priority = call->sys->priority;
	incoming.changed_at = tin;
	incoming.since_tracking = false;

	memcpy(I, img->values, sizeof(Datum) * ncols);
	memcpy(Inull, img->nulls, sizeof(bool) * ncols);

	/* 1. each column on its own */
	for (c = 0; c < ncols; c++)
	{
		const SrColumn *col = &tab->cols[c];

		if (col->is_key)
			continue;
		in[c].present = img->present[c];
		if (!img->present[c])
			continue;
		sr_column_input(call, c, I[c], Inull[c], L[c], Lnull[c], srow, lrow, &incoming,
						&in[c]);
		in[c].dominated = dominated;
		sr_decide(col, &in[c], &dec[c]);
	}

	/* 2. column groups with a conflict are decided as one */
	for (g = 0; g < tab->ngroups; g++)
	{
		SrGroup    *grp = &tab->groups[g];
		const SrColumn *first = &tab->cols[grp->cols[0]];
		SrGroupDecision gd;
		SrColumnDecision gdec;
		int			k;

		if (!sr_decide_group(call, img, g, L, Lnull, srow, lrow, dec, &incoming, I, Inull, M,
							 Mnull, &gd))
			continue;
		gdec = gd.dec;
		for (k = 0; k < grp->ncols; k++)
		{
			c = grp->cols[k];
			in_group_decision[c] = true;
			dec[c].action = gdec.action;
			dec[c].kind = "conflict";
			dec[c].rule = gdec.rule;
			dec[c].needs_value = false;
			if (dec[c].delta == SR_DELTA_NONE)
				dec[c].delta = SR_DELTA_CONFLICT;
		}

		if (gdec.action == SR_ACT_REVIEW)
		{
			List	   *cols = NIL;

			for (k = 0; k < grp->ncols; k++)
				cols = lappend_int(cols, grp->cols[k]);
			add_review_id(reviews,
						  open_review(call, batch, lrow, img->key, grp->name, cols, "conflict",
									  gd.lobj, gd.iobj, gd.bobj, sr_strategy_name(first->strategy),
									  gdec.rule));
		}
		if (!gd.held)
			sr_event_add(batch, "conflict", grp->name, gd.lobj, gd.iobj, gd.bobj,
						 gdec.action == SR_ACT_TAKE ? gd.iobj :
						 gdec.action == SR_ACT_MERGE ? sr_row_object(tab, M, Mnull, gd.members) : gd.lobj,
						 gdec.rule, decision_words(gdec.action, call->source), 0)->strategy =
				sr_strategy_name(first->strategy);
	}

	/* 3. values the strategies compute */
	for (c = 0; c < ncols; c++)
		if (!tab->cols[c].is_key && !in_group_decision[c] && dec[c].needs_value)
			sr_merge_column(call, img->key, c, I[c], Inull[c], L[c], Lnull[c], srow, &in[c],
							&dec[c], &M[c], &Mnull[c]);

	/* 4. the new row, the lists, the per-column events and reviews */
	memcpy(saved_writer, lrow->col_writer, sizeof(char *) * ncols);
	memcpy(saved_changed_at, lrow->col_changed_at, sizeof(TimestampTz) * ncols);
	memcpy(newvals, L, sizeof(Datum) * ncols);
	memcpy(newnulls, Lnull, sizeof(bool) * ncols);
	for (c = 0; c < ncols; c++)
	{
		const SrColumn *col = &tab->cols[c];
		SrColumnDecision *d = &dec[c];
		Jsonb	   *jl = NULL,
				   *ji = NULL,
				   *jb = NULL;
		bool		explain = false;
		const char *kind;

		if (col->is_key || d->delta == SR_DELTA_NONE)
			continue;

		if (d->accepted_unauthorized)
		{
			jl = sr_datum_to_jsonb(col, L[c], Lnull[c]);
			ji = sr_datum_to_jsonb(col, I[c], Inull[c]);
			jb = srow->known[c] ? sr_datum_to_jsonb(col, srow->values[c], srow->nulls[c]) : NULL;
			sr_event_add(batch, "unauthorized", col->name, jl, ji, jb, NULL,
						 d->accepted_unauthorized, "accepted", 0);
		}

		switch (d->action)
		{
			case SR_ACT_TAKE:
			case SR_ACT_MERGE:
				{
					bool		take = (d->action == SR_ACT_TAKE);
					Datum		v = take ? I[c] : M[c];
					bool		vnull = take ? Inull[c] : Mnull[c];

					if (sr_datum_equal(col, v, vnull, L[c], Lnull[c]))
						break;
					newvals[c] = v;
					newnulls[c] = vnull;
					changed_cols[c] = true;
					lrow->col_writer[c] = (char *) call->source;
					/* a merged value is as recent as the later of its sides */
					lrow->col_changed_at[c] = take ? tin : Max(tin, in[c].local.changed_at);
				}
				break;
			case SR_ACT_KEEP:
				res->kept = lappend(res->kept, col->name);
				break;
			case SR_ACT_REVIEW:
				res->queued = lappend(res->queued, col->name);
				break;
			case SR_ACT_REJECT:
				res->rejected = lappend(res->rejected, col->name);
				break;
			case SR_ACT_NOTHING:
				break;
		}
		if (changed_cols[c])
		{
			changed = bms_add_member(changed, c);
			res->applied = lappend(res->applied, col->name);
			lrow->dirty = true;
		}

		/* conflicts, refusals and reviews are explained column by column */
		if (in_group_decision[c])
			continue;
		explain = (d->delta == SR_DELTA_CONFLICT || d->action == SR_ACT_REJECT ||
				   d->action == SR_ACT_REVIEW);
		if (!explain)
			continue;
		kind = d->kind ? d->kind : "conflict";
		jl = sr_datum_to_jsonb(col, L[c], Lnull[c]);
		ji = sr_datum_to_jsonb(col, I[c], Inull[c]);
		jb = srow->known[c] ? sr_datum_to_jsonb(col, srow->values[c], srow->nulls[c]) : NULL;

		/* an update of a held column is logged by open_review() */
		if (strcmp(kind, "review_updated") != 0)
		{
			SrEvent    *ev = sr_event_add(batch, kind, col->name, jl, ji, jb,
										  d->action == SR_ACT_TAKE ? ji :
										  d->action == SR_ACT_MERGE ? sr_datum_to_jsonb(col, M[c], Mnull[c]) : jl,
										  d->rule, decision_words(d->action, call->source), 0);

			if (strcmp(kind, "conflict") == 0)
				ev->strategy = sr_strategy_name(col->strategy);
		}
		if (d->action == SR_ACT_REVIEW)
		{
			const char *label = col->name;
			List	   *cols = list_make1_int(c);

			/* a held member of a group is held by the group's item */
			if (col->group >= 0)
			{
				SrGroup    *grp = &tab->groups[col->group];
				int			k;

				label = grp->name;
				cols = NIL;
				for (k = 0; k < grp->ncols; k++)
					cols = lappend_int(cols, grp->cols[k]);
			}
			add_review_id(reviews,
						  open_review(call, batch, lrow, img->key, label, cols,
									  strcmp(kind, "unauthorized") == 0 ? "unauthorized" : "conflict",
									  jl, ji, jb, sr_strategy_name(col->strategy), d->rule));
		}
	}

	/* 5. an image that only repeats what this database sent: an echo */
	if (changed == NULL && res->queued == NIL && res->kept == NIL &&
		res->rejected == NIL && img->npresent > 0 && is_echo(call, img, in, srow))
	{
		sr_event_add(batch, "echo", NULL, NULL, NULL, NULL, NULL,
					 psprintf("%s reported back what this database sent it", call->source),
					 NULL, 0);
		res->outcome = "echo";
		if (call->rewrite)
			call->out_write = false;
		finish_versions(call, lrow);
		return;
	}

	/* 6. write the row */
	if (changed != NULL)
	{
		Datum	   *written = palloc(sizeof(Datum) * ncols);
		bool	   *written_null = palloc(sizeof(bool) * ncols);
		bool	   *nested = NULL;
		bool		ok;

		if (call->rewrite)
		{
			/* the statement writes the row: what it is to write */
			memcpy(call->out_values, newvals, sizeof(Datum) * ncols);
			memcpy(call->out_nulls, newnulls, sizeof(bool) * ncols);
			memset(call->out_take, true, sizeof(bool) * ncols);
			call->out_write = true;
			memcpy(written, newvals, sizeof(Datum) * ncols);
			memcpy(written_null, newnulls, sizeof(bool) * ncols);
			ok = true;
		}
		else
		{
			uint64		writes = sr_shadow_writes;

			ok = sr_row_update(tab, img->keyvals, changed, newvals, newnulls,
							   written, written_null);
			if (ok && sr_shadow_writes != writes)
				nested = take_nested_writes(call, img, st, saved_writer, saved_changed_at,
											written, written_null, &gone);
		}
		if (ok)
		{
			/* a BEFORE trigger of the table may have changed the row: its own doing */
			for (c = 0; c < ncols; c++)
			{
				if (nested != NULL && nested[c])
				{
					changed_cols[c] = false;
					continue;
				}
				if (tab->cols[c].is_key ||
					sr_datum_equal(&tab->cols[c], written[c], written_null[c],
								   newvals[c], newnulls[c]))
					continue;
				lrow->col_writer[c] = SR_LOCAL;
				lrow->col_changed_at[c] = call->received_at;
				lrow->dirty = true;
				changed_cols[c] = true;
			}
			sr_event_add(batch, "applied", NULL, sr_row_object(tab, L, Lnull, changed_cols),
						 NULL, NULL, sr_row_object(tab, written, written_null, changed_cols),
						 psprintf("changed by %s", call->source), NULL, 0);
			res->outcome = "updated";
			memcpy(newvals, written, sizeof(Datum) * ncols);
			memcpy(newnulls, written_null, sizeof(bool) * ncols);
		}
		else
		{
			/* a BEFORE trigger of the table skipped the write: nothing changed */
			Jsonb	   *oldobj = sr_row_object(tab, L, Lnull, changed_cols);

			memcpy(lrow->col_writer, saved_writer, sizeof(char *) * ncols);
			memcpy(lrow->col_changed_at, saved_changed_at, sizeof(TimestampTz) * ncols);
			memset(changed_cols, false, sizeof(bool) * ncols);
			memcpy(newvals, L, sizeof(Datum) * ncols);
			memcpy(newnulls, Lnull, sizeof(bool) * ncols);
			res->applied = NIL;
			sr_event_add(batch, "received", NULL, oldobj, NULL, NULL, NULL,
						 psprintf("a trigger on table %s skipped the write of %s's changes",
								  tab->display_name, call->source), NULL, 0);
			res->outcome = "unchanged";
		}
	}
	else
	{
		if (call->rewrite)
			call->out_write = false;	/* nothing to write: no WAL, no loop */
		if (res->queued != NIL)
			res->outcome = "held";
		else if (res->rejected != NIL && res->kept == NIL)
			res->outcome = "rejected";
		else
			res->outcome = "unchanged";
	}

	if (batch->events == NIL)
		sr_event_add(batch, "received", NULL, NULL, NULL, NULL, NULL,
					 img->npresent == 0
					 ? psprintf("%s sent the key and no column", call->source)
					 : psprintf("%s sent nothing new: local already agrees", call->source),
					 NULL, 0);

	/* 7. versions merge */
	finish_versions(call, lrow);

	/*
	 * 8. the outbox: what changed goes to the other systems; where the row
	 * now differs from what the source sent (its change was refused, kept
	 * or merged), the source hears the row's value.  Held columns wait for
	 * their review.
	 */
	if (gone)
		return;					/* a trigger deleted the row: its delete is queued */
	sr_outbox_waiting_init(&waiting, tab, img->key);
	sr_outbox_fan_out(tab, img->key, st, call->source, newvals, newnulls, changed_cols,
					  false, lrow->version, call->source, batch, &waiting);
	tell_source(call, img, lrow, newvals, newnulls, batch, &waiting);
}

/*
 * The source holds what it sent; where the row as written (rowvals) holds
 * something else -- its change refused, kept or merged, or changed by a
 * BEFORE trigger of the table -- it hears the row's value.  Held columns
 * wait for their review.  A peer (PostgreSQL replication) is left alone.
 * waiting: the row's waiting entries (sr_outbox_waiting_init()), or NULL
 * for a row just inserted, which has none.
 */
static void
tell_source(const SrApplyCall *call, const SrImage *img, const SrShadowRow *lrow,
			const Datum *rowvals, const bool *rownulls, SrEventBatch *batch,
			SrOutboxWaiting *waiting)
{
	SrTable    *tab = call->tab;
	bool	   *differs;
	bool		any = false;
	int			c;

	if (sr_system_is_peer(call->source))
		return;
	/* what waits for it of those columns is moot: it sent them (a new row: nothing waits) */
	if (waiting != NULL)
		sr_outbox_forget(tab, img->key, call->source, img->present, waiting);
	differs = palloc0(sizeof(bool) * tab->ncols);
	for (c = 0; c < tab->ncols; c++)
	{
		if (tab->cols[c].is_key || !img->present[c] || lrow->held[c] ||
			sr_datum_equal(&tab->cols[c], rowvals[c], rownulls[c],
						   img->values[c], img->nulls[c]))
			continue;
		differs[c] = true;
		any = true;
	}
	if (any)
	{
		Jsonb	   *payload = sr_row_object(tab, rowvals, rownulls, differs);
		int64		id = sr_outbox_queue(tab, img->key, call->source, false, payload,
										 lrow->version, call->source);

		sr_event_add(batch, "outbound_queued", NULL, NULL, NULL, NULL, payload,
					 psprintf("queued for %s, which holds other values (outbox #%lld)",
							  call->source, (long long) id), NULL, 0);
	}
}

/* ------------------------------------------------------------------------
 * An image for a row that does not exist here
 * ------------------------------------------------------------------------
 */

/* Returns false when the row turned out to exist (a concurrent insert). */
static bool
apply_to_absent_row(SrApplyCall *call, SrImage *img, SrRowState *st,
					SrEventBatch *batch, SrApplyResult *res, SrReviewIds *reviews)
{
	SrTable    *tab = call->tab;
	SrShadowRow *srow = &st->bases[call->sidx];
	SrShadowRow *lrow = &st->local;
	Bitmapset  *cols = NULL;
	bool	   *inserted = palloc0(sizeof(bool) * tab->ncols);
	Datum	   *written = palloc(sizeof(Datum) * (tab->ncols + 1));
	bool	   *written_null = palloc(sizeof(bool) * (tab->ncols + 1));
	char	  **orig_writer = palloc(sizeof(char *) * (tab->ncols + 1));
	TimestampTz *orig_changed_at = palloc(sizeof(TimestampTz) * (tab->ncols + 1));
	bool	   *nested = NULL;
	bool		gone = false;
	uint64		writes;
	TimestampTz tin = incoming_time(call);
	bool		revived = lrow->found && lrow->deleted;
	List	   *to_review = NIL;
	ListCell   *lc;
	int			c;

	/* in a trigger, the statement's INSERT goes ahead only where said below */
	if (call->rewrite)
		call->out_write = false;

	/* an image crossing a delete made here (or by another system) */
	if (lrow->found && lrow->deleted &&
		(lrow->deleted_by == NULL || strcmp(lrow->deleted_by, call->source) != 0))
	{
		bool		any_change = false;
		const char *deleter = lrow->deleted_by ? lrow->deleted_by : SR_LOCAL;
		char	   *rule;

		for (c = 0; c < tab->ncols; c++)
		{
			if (tab->cols[c].is_key || !img->present[c])
				continue;
			if (srow->deleted || !srow->known[c] ||
				!sr_datum_equal(&tab->cols[c], img->values[c], img->nulls[c],
								srow->values[c], srow->nulls[c]))
				any_change = true;
		}
		/*
		 * What the source holds is its image over its base: a partial
		 * image must not bring the row back with the rest of it NULL.
		 */
		if (any_change && !srow->deleted)
		{
			for (c = 0; c < tab->ncols; c++)
			{
				if (tab->cols[c].is_key || img->present[c] || !srow->known[c])
					continue;
				img->values[c] = srow->values[c];
				img->nulls[c] = srow->nulls[c];
				img->present[c] = true;
				img->npresent++;
			}
		}
		if (!any_change)
		{
			sr_event_add(batch, "received", NULL, NULL, NULL, NULL, NULL,
						 psprintf("%s sent no change since %s deleted the row", call->source,
								  deleter), NULL, 0);
			res->outcome = "unchanged";
			return true;
		}
		switch (tab->on_delete_conflict)
		{
			case SR_DELCONF_DELETE:
				rule = psprintf("%s changed a row that %s deleted at %s; on_delete_conflict = delete keeps it deleted",
								call->source, deleter, sr_time_text(lrow->deleted_at));
				delete_conflict_event(batch, NULL, sr_row_object(tab, img->values, img->nulls, img->present),
									  NULL, rule, "kept deleted");
				res->outcome = "unchanged";
				return true;
			case SR_DELCONF_REVIEW:
				{
					List	   *held = NIL;

					rule = psprintf("%s changed a row that %s deleted at %s: a person decides",
									call->source, deleter, sr_time_text(lrow->deleted_at));
					delete_conflict_event(batch, NULL, sr_row_object(tab, img->values, img->nulls, img->present),
										  NULL, rule, "held for review");
					for (c = 0; c < tab->ncols; c++)
						if (!tab->cols[c].is_key && img->present[c])
						{
							held = lappend_int(held, c);
							res->queued = lappend(res->queued, tab->cols[c].name);
						}
					add_review_id(reviews,
								  open_review(call, batch, lrow, img->key, NULL, held,
											  "update_after_delete", NULL,
											  sr_row_object(tab, img->values, img->nulls, img->present),
											  NULL, NULL, rule));
					res->outcome = "held";
					return true;
				}
			case SR_DELCONF_KEEP:
				delete_conflict_event(batch, NULL, sr_row_object(tab, img->values, img->nulls, img->present),
									  NULL,
									  psprintf("%s changed a row that %s deleted at %s; on_delete_conflict = keep brings it back",
											   call->source, deleter, sr_time_text(lrow->deleted_at)),
									  "re-inserted");
				break;
		}
	}

	/* back after a delete: whether to bring it back is no longer a question */
	if (revived)
		sr_release_reviews(tab, img->key, lrow, call->source,
						   psprintf("row re-created by %s", call->source));

	/* a sync gap: insert what the source may write */
	for (c = 0; c < tab->ncols; c++)
	{
		const SrColumn *col = &tab->cols[c];

		if (!img->present[c])
			continue;
		if (col->is_key)
		{
			cols = bms_add_member(cols, c);
			continue;
		}
		if (lrow->held[c])
		{
			/* held by a review left from before the delete */
			res->queued = lappend(res->queued, col->name);
			continue;
		}
		if (!sr_column_writable_by(col, call->source))
		{
			Jsonb	   *ji = sr_datum_to_jsonb(col, img->values[c], img->nulls[c]);
			char	   *rule = psprintf("%s may not write %s", call->source, col->name);

			if (col->on_unauthorized == SR_UNAUTH_REJECT)
			{
				res->rejected = lappend(res->rejected, col->name);
				sr_event_add(batch, "unauthorized", col->name, NULL, ji, NULL, NULL,
							 rule, "refused", 0);
				continue;
			}
			if (col->on_unauthorized == SR_UNAUTH_REVIEW)
			{
				/* opened once the row is in: the insert may yet lose a race */
				res->queued = lappend(res->queued, col->name);
				to_review = lappend_int(to_review, c);
				continue;
			}
			sr_event_add(batch, "unauthorized", col->name, NULL, ji, NULL, NULL,
						 psprintf("%s; accepted anyway", rule), "accepted", 0);
		}
		cols = bms_add_member(cols, c);
		inserted[c] = true;
	}

	/* the row as inserted: what was taken, unless a BEFORE trigger changed it */
	memcpy(written, img->values, sizeof(Datum) * tab->ncols);
	memcpy(written_null, img->nulls, sizeof(bool) * tab->ncols);
	/* the local metadata as read: a trigger's writes during the insert show against it */
	memcpy(orig_writer, lrow->col_writer, sizeof(char *) * tab->ncols);
	memcpy(orig_changed_at, lrow->col_changed_at, sizeof(TimestampTz) * tab->ncols);
	writes = sr_shadow_writes;
	if (call->rewrite)
	{
		/* the statement inserts the row; columns not taken get their defaults */
		memcpy(call->out_values, img->values, sizeof(Datum) * tab->ncols);
		memcpy(call->out_nulls, img->nulls, sizeof(bool) * tab->ncols);
		for (c = 0; c < tab->ncols; c++)
			call->out_take[c] = bms_is_member(c, cols);
		call->out_write = true;
	}
	else if (!sr_row_insert(tab, img->keyvals, cols, img->values, img->nulls, written, written_null))
	{
		if (sr_row_lock(tab, img->keyvals, false, NULL, NULL))
		{
			/* inserted concurrently: resolve against that row instead */
			list_free(batch->events);
			batch->events = NIL;
			res->applied = res->kept = res->queued = res->rejected = NIL;
			return false;
		}
		list_free(batch->events);
		batch->events = NIL;
		res->applied = res->kept = res->queued = res->rejected = NIL;
		if (!tab->other_unique)
		{
			/* no other unique key to clash with: a BEFORE trigger of the table skipped it */
			sr_event_add(batch, "received", NULL, NULL,
						 sr_row_object(tab, img->values, img->nulls, img->present), NULL, NULL,
						 psprintf("a trigger on table %s skipped the insert of %s's new row",
								  tab->display_name, call->source), NULL, 0);
			res->outcome = "unchanged";
			return true;
		}

		/*
		 * Another row holds a value of another unique key.  An apply
		 * worker's image is tried again after the rest of its transaction
		 * (replication.c): an error tells it so.  Otherwise a person decides.
		 */
		if (call->in_order)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("new row %s from system \"%s\" clashes with an existing row of table %s on another unique key",
							sr_jsonb_value_text(img->key), call->source, tab->display_name),
					 errhint("The same record may exist here under another primary key; link them, or change the unique value.")));
		res->outcome = SR_OUTCOME_CLASH;
		return true;
	}

	if (!call->rewrite && sr_shadow_writes != writes)
		nested = take_nested_writes(call, img, st, orig_writer, orig_changed_at,
									written, written_null, &gone);

	foreach(lc, to_review)
	{
		const SrColumn *col = &tab->cols[lfirst_int(lc)];

		add_review_id(reviews,
					  open_review(call, batch, lrow, img->key, col->name, list_make1_int(lfirst_int(lc)),
								  "unauthorized", NULL,
								  sr_datum_to_jsonb(col, img->values[lfirst_int(lc)], img->nulls[lfirst_int(lc)]),
								  NULL, sr_strategy_name(col->strategy),
								  psprintf("%s may not write %s; a person decides", call->source, col->name)));
	}

	/*
	 * The row as inserted is the source's: the columns it sent, and those it
	 * left to their defaults (not the ones it was refused or that are held).
	 * A column a BEFORE trigger of the table changed is its own doing.
	 */
	for (c = 0; c < tab->ncols; c++)
	{
		if (tab->cols[c].is_key || (img->present[c] && !inserted[c]))
			continue;
		if (inserted[c])
			res->applied = lappend(res->applied, tab->cols[c].name);
		if (nested != NULL && nested[c])
		{
			/* written again meanwhile: that write's metadata stands, and it sends it */
			inserted[c] = false;
			continue;
		}
		if (inserted[c] && !sr_datum_equal(&tab->cols[c], written[c], written_null[c],
										   img->values[c], img->nulls[c]))
		{
			lrow->col_writer[c] = SR_LOCAL;
			lrow->col_changed_at[c] = call->received_at;
			continue;
		}
		lrow->col_writer[c] = (char *) call->source;
		lrow->col_changed_at[c] = tin;
	}
	if (!gone)
	{
		lrow->deleted = false;
		lrow->deleted_by = NULL;
	}
	if (call->version)
		lrow->version = merge_source_version(call, lrow->version);
	lrow->dirty = true;
	sr_event_add(batch, "inserted", NULL, NULL, NULL, NULL,
				 sr_row_object(tab, written, written_null, inserted),
				 psprintf("new row from %s", call->source), NULL, 0);
	res->outcome = "inserted";
	if (gone)
		return true;			/* a trigger deleted it again: its delete is queued */
	/* the other systems learn of the new row; the source holds it as it sent it */
	sr_outbox_fan_out(tab, img->key, st, call->source, written, written_null, inserted,
					  revived, lrow->version, call->source, batch, NULL);
	if (revived)
		sr_outbox_withdraw(tab, img->key, call->source, true, batch);
	else
		tell_source(call, img, lrow, written, written_null, batch, NULL);
	return true;
}

/* The base of (source, row) after the image: its columns over the old base. */
static void
advance_base(const SrApplyCall *call, const SrImage *img, SrShadowRow *srow, bool echo)
{
	const SrTable *tab = call->tab;
	int			c;

	for (c = 0; c < tab->ncols; c++)
	{
		if (tab->cols[c].is_key || !img->present[c])
			continue;
		srow->values[c] = img->values[c];
		srow->nulls[c] = img->nulls[c];
		srow->known[c] = true;
		/* the source's own value, unless it repeats what we sent */
		if (!echo)
			srow->sent[c] = false;
	}
	if (call->has_changed_at &&
		(!srow->has_changed_at || call->changed_at > srow->changed_at))
	{
		srow->changed_at = call->changed_at;
		srow->has_changed_at = true;
	}
	if (call->version)
		srow->version = srow->version ? sr_vclock_merge(srow->version, call->version)
			: call->version;
	srow->received_at = call->received_at;
	srow->deleted = false;
}

static void
init_batch(const SrApplyCall *call, Jsonb *key, SrEventBatch *batch)
{
	memset(batch, 0, sizeof(*batch));
	batch->relid = call->tab->relid;
	batch->key = key;
	batch->source = call->source;
	batch->version = call->version;
	batch->has_changed_at = call->has_changed_at;
	batch->changed_at = call->changed_at;
	batch->received_at = call->received_at;
	batch->event_id = call->event_id;
	batch->alert = call->tab->alert_per_hour >= 0;
	batch->alert_per_hour = call->tab->alert_per_hour;
	batch->relname = call->tab->relname;
}

/*
 * Lock the local row; when there is none, lock its key instead (an advisory
 * lock of sync_resolve's own kind), so that two images for an absent row,
 * or an image and a resolve() bringing it back, do not overwrite each
 * other's local metadata.  Then look again: the row may have come meanwhile.
 */
bool
sr_lock_row_or_key(SrTable *tab, const Datum *keyvals, Jsonb *key, bool for_delete,
				Datum *L, bool *Lnull)
{
	if (sr_row_lock(tab, keyvals, for_delete, L, Lnull))
		return true;
	sr_lock_key(tab, key);
	return sr_row_lock(tab, keyvals, for_delete, L, Lnull);
}

/*
 * A new record's key, made by the key columns' defaults, is one a row
 * already has (a sequence behind keys inserted by hand): that row is
 * another record's, and the new one must not be written over it.
 */
static void
refuse_made_key(const SrApplyCall *call, const SrImage *img)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("new record %s from system \"%s\" was given key %s by the key's default, which a row of table %s already has",
					img->external_id ? img->external_id : "(no id)", call->source,
					sr_jsonb_value_text(img->key), call->tab->display_name),
			 errhint("Move the key's sequence past the keys in use (setval), or send the key.")));
}

/* A delivery id seen before: log it, and say so. */
static bool
is_duplicate(const SrApplyCall *call, Jsonb *key, SrEventBatch *batch, SrApplyResult *res)
{
	if (call->event_id == NULL || record_delivery(call, key))
		return false;
	sr_event_add(batch, "duplicate", NULL, NULL, NULL, NULL, NULL,
				 psprintf("event %s was already received from %s", call->event_id, call->source),
				 NULL, 0);
	sr_events_flush(batch);
	res->outcome = "duplicate";
	return true;
}

/* Older than what was seen: log it, and say so. */
static bool
is_stale(const SrApplyCall *call, const SrShadowRow *srow, const SrShadowRow *lrow,
		 bool found, Jsonb *image, SrEventBatch *batch, SrApplyResult *res)
{
	char	   *why = stale_reason(call, srow, lrow, found);

	if (why == NULL)
		return false;
	sr_event_add(batch, "stale", NULL, NULL, image, NULL, NULL, why, NULL, 0);
	sr_events_flush(batch);
	res->outcome = "stale";
	return true;
}

/* Write the source's base, the local metadata when it changed, the events. */
static void
finish_image(const SrApplyCall *call, const Datum *keyvals, SrRowState *st,
			 SrEventBatch *batch)
{
	if (st->local.dirty)
		st->local.received_at = call->received_at;
	sr_shadow_write_rows(call->tab, keyvals, call->source, &st->bases[call->sidx],
						 st->local.dirty ? &st->local : NULL);
	sr_events_flush(batch);
}

/*
 * An image whose delivery id is the idempotency key of an outbox entry to
 * its source is the echo of that entry: confirm it; nothing else happens.
 */
static bool
is_echo_by_id(SrApplyCall *call, SrImage *img, SrEventBatch *batch, SrApplyResult *res)
{
	int64		id;
	SrRowState	st;
	SrShadowRow *srow;
	int			c;

	if (call->event_id == NULL)
		return false;
	id = sr_outbox_find_echo(call->tab, img->key, call->source, call->event_id, NULL);
	if (id == 0)
		return false;
	(void) record_delivery(call, img->key);
	sr_outbox_confirm_echo(id);
	sr_shadow_load(call->tab, img->keyvals, &st);
	srow = &st.bases[call->sidx];
	advance_base(call, img, srow, true);
	for (c = 0; c < call->tab->ncols; c++)
		if (!call->tab->cols[c].is_key && img->present[c])
			srow->sent[c] = true;
	sr_event_add(batch, "echo", NULL, NULL, NULL, NULL, NULL,
				 psprintf("%s reported back outbox #%lld, naming its idempotency key",
						  call->source, (long long) id), NULL, 0);
	if (call->rewrite)
		call->out_write = false;
	st.local.dirty = false;
	finish_image(call, img->keyvals, &st, batch);
	res->outcome = "echo";
	return true;
}

/*
 * A PostgreSQL peer's image of a change the row already has (this node's
 * own, back from the peer, or another peer's, relayed): it tells what the
 * peer holds now, nothing more.
 */
static bool
is_peer_echo(SrApplyCall *call, SrImage *img, SrRowState *st, SrEventBatch *batch,
			 SrApplyResult *res)
{
	if (!call->in_order || !call->has_changed_at ||
		!sr_change_seen(call->tab, &st->local, call->source, call->changed_at))
		return false;
	advance_base(call, img, &st->bases[call->sidx], true);
	sr_event_add(batch, "echo", NULL, NULL, NULL, NULL, NULL,
				 psprintf("%s sent back a change this row already has (committed at %s): only its base moves",
						  call->source, sr_time_text(call->changed_at)),
				 NULL, 0);
	if (call->rewrite)
		call->out_write = false;
	finish_image(call, img->keyvals, st, batch);
	res->outcome = "echo";
	return true;
}

/*
 * Set aside the present columns whose incoming change is not valid: an
 * allowed transition from the local value is missing, or the column's
 * check fails.  A value the row or the source's base already has is no
 * change and is not judged.  Done before the decision, so that the latest
 * change taken is the latest valid one.
 */
void
sr_screen_invalid(SrApplyCall *call, SrImage *img, const Datum *L, const bool *Lnull,
				  bool found, const SrShadowRow *srow)
{
	SrTable    *tab = call->tab;
	int			c;

	for (c = 0; c < tab->ncols; c++)
	{
		SrColumn   *col = &tab->cols[c];
		char	   *why;

		if (col->is_key || !img->present[c] || (col->ntransitions == 0 && col->check_expr == NULL))
			continue;
		if (found && sr_datum_equal(col, img->values[c], img->nulls[c], L[c], Lnull[c]))
			continue;
		if (srow->found && srow->known[c] &&
			sr_datum_equal(col, img->values[c], img->nulls[c], srow->values[c], srow->nulls[c]))
			continue;
		why = sr_invalid_reason(tab, c, found, L[c], Lnull[c], img->values[c], img->nulls[c]);
		if (why == NULL)
			continue;
		screen(img, c, "invalid", sr_datum_to_jsonb(col, img->values[c], img->nulls[c]),
			   psprintf("%s sent an invalid value: %s", call->source, why), col->invalid_to_review);
		img->present[c] = false;
		img->npresent--;
	}
}

/*
 * What became of the columns set aside: refused, or held for a person;
 * each logged.  An image of nothing else is "rejected" or "held".
 */
static void
finish_screened(SrApplyCall *call, SrImage *img, SrRowState *st, SrEventBatch *batch,
				SrApplyResult *res, SrReviewIds *reviews)
{
	ListCell   *lc;
	bool		any_review = false;

	foreach(lc, img->screened)
	{
		SrScreened *sc = lfirst(lc);
		const SrColumn *col = &call->tab->cols[sc->col];

		if (sc->review)
		{
			any_review = true;
			res->queued = lappend(res->queued, col->name);
			add_review_id(reviews,
						  open_review(call, batch, &st->local, img->key, col->name, list_make1_int(sc->col),
									  sc->kind, NULL, sc->value, NULL, NULL,
									  psprintf("%s; a person decides", sc->rule)));
		}
		else
		{
			res->rejected = lappend(res->rejected, col->name);
			sr_event_add(batch, sc->kind, col->name, NULL, sc->value, NULL, NULL,
						 sc->rule, "refused", 0);
		}
	}
	if (img->screened != NIL && strcmp(res->outcome, "unchanged") == 0 &&
		res->applied == NIL && res->kept == NIL)
		res->outcome = any_review ? "held" : "rejected";
}

/* An image given as JSON (apply, apply_batch). */
static void
apply_json(SrApplyCall *call, SrApplyResult *res, SrReviewIds *reviews)
{
	SrImage		img;

	sr_parse_image(call, &img);
	sr_apply_image(call, &img, res, reviews);
}

/*
 * One incoming image, start to end.  SPI is connected.  In a trigger
 * (call->rewrite), the statement's row is the row, locked already.
 */
void
sr_apply_image(SrApplyCall *call, SrImage *img, SrApplyResult *res, SrReviewIds *reviews)
{
	SrTable    *tab = call->tab;
	SrEventBatch batch;
	SrRowState	st;
	Datum	   *L = palloc0(sizeof(Datum) * (tab->ncols + 1));
	bool	   *Lnull = palloc0(sizeof(bool) * (tab->ncols + 1));
	bool		found;
	bool		checked_duplicate = false;

	res->key = img->key;
	init_batch(call, img->key, &batch);

	for (;;)
	{
		if (call->old_values != NULL)
		{
			memcpy(L, call->old_values, sizeof(Datum) * tab->ncols);
			memcpy(Lnull, call->old_nulls, sizeof(bool) * tab->ncols);
			found = true;
		}
		else
			found = sr_lock_row_or_key(tab, img->keyvals, img->key, false, L, Lnull);
		if (found && img->key_made)
			refuse_made_key(call, img);
		if (!checked_duplicate)
		{
			checked_duplicate = true;
			if (is_echo_by_id(call, img, &batch, res) ||
				is_duplicate(call, img->key, &batch, res))
				return;
		}
		sr_shadow_load(tab, img->keyvals, &st);

		if (is_peer_echo(call, img, &st, &batch, res))
			return;
		if (is_stale(call, &st.bases[call->sidx], &st.local, found, call->payload, &batch, res))
			return;
		sr_screen_invalid(call, img, L, Lnull, found, &st.bases[call->sidx]);
		if (found)
		{
			apply_to_row(call, img, L, Lnull, &st, &batch, res, reviews);
			break;
		}
		if (apply_to_absent_row(call, img, &st, &batch, res, reviews))
			break;
		/* the row was inserted concurrently: go round once more */
		reviews->n = 0;
	}
	if (res->outcome == SR_OUTCOME_CLASH)
	{
		sr_apply_refused(call, img, "another row has the same value of a unique key", res, reviews);
		return;
	}
	if (img->linked != NULL)
		sr_event_add(&batch, "linked", NULL, NULL, NULL, NULL, NULL, img->linked, NULL, 0);
	finish_screened(call, img, &st, &batch, res, reviews);
	if (img->external_id != NULL && !img->identity_known &&
		strcmp(res->outcome, "held") != 0 && strcmp(res->outcome, "rejected") != 0)
		sr_identity_add(tab, call->source, img->external_id, img->key);

	advance_base(call, img, &st.bases[call->sidx], strcmp(res->outcome, "echo") == 0);
	if (call->in_order && call->has_changed_at)
		sr_note_seen(&st.local, call->changed_at);
	finish_image(call, img->keyvals, &st, &batch);
}

typedef struct SrImageWrite
{
	SrApplyCall *call;
	SrImage    *img;
	SrApplyResult *res;
	SrReviewIds *reviews;
} SrImageWrite;

static void
image_write(void *arg)
{
	SrImageWrite *w = (SrImageWrite *) arg;

	sr_apply_image(w->call, w->img, w->res, w->reviews);
}

/*
 * sr_apply_image in a subtransaction, for a write that another row may
 * stand in the way of until later in the transaction: false when the table
 * refused it (see try_write).
 */
bool
sr_try_apply_image(SrApplyCall *call, SrImage *img, SrApplyResult *res,
				   SrReviewIds *reviews, char **why)
{
	/* on a copy: a refused attempt leaves the image as it came, for the next */
	SrImageWrite w = {call, sr_copy_image(call->tab, img), res, reviews};

	return try_write(image_write, &w, why);
}

/*
 * An image whose write the table refused (a unique key another row holds,
 * a check constraint): the row keeps its values, the columns it was to
 * change are held for a person, and the source's base follows what the
 * source holds.  why is the table's error.  SPI is connected.
 */
void
sr_apply_refused(SrApplyCall *call, SrImage *img, const char *why,
				 SrApplyResult *res, SrReviewIds *reviews)
{
	SrTable    *tab = call->tab;
	SrEventBatch batch;
	SrRowState	st;
	Datum	   *L = palloc0(sizeof(Datum) * (tab->ncols + 1));
	bool	   *Lnull = palloc0(sizeof(bool) * (tab->ncols + 1));
	bool	   *which = palloc0(sizeof(bool) * (tab->ncols + 1));
	SrShadowRow *srow;
	List	   *cols = NIL;
	bool		found;
	char	   *rule;
	int			c;

	res->key = img->key;
	init_batch(call, img->key, &batch);
	found = sr_lock_row_or_key(tab, img->keyvals, img->key, false, L, Lnull);
	sr_shadow_load(tab, img->keyvals, &st);
	srow = &st.bases[call->sidx];
	for (c = 0; c < tab->ncols; c++)
	{
		if (tab->cols[c].is_key || !img->present[c] ||
			(found && sr_datum_equal(&tab->cols[c], img->values[c], img->nulls[c], L[c], Lnull[c])))
			continue;
		which[c] = true;
		cols = lappend_int(cols, c);
		res->queued = lappend(res->queued, tab->cols[c].name);
	}
	rule = psprintf("table %s refused %s's change: %s; a person decides",
					tab->display_name, call->source, why);
	if (cols != NIL)
	{
		bool	   *known = palloc0(sizeof(bool) * (tab->ncols + 1));
		bool		any_base = false;

		for (c = 0; c < tab->ncols; c++)
			if (which[c] && srow->known[c])
				known[c] = any_base = true;
		sr_event_add(&batch, "conflict", NULL,
					 found ? sr_row_object(tab, L, Lnull, which) : NULL,
					 sr_row_object(tab, img->values, img->nulls, which),
					 any_base ? sr_row_object(tab, srow->values, srow->nulls, known) : NULL,
					 NULL, rule, "held for review", 0)->strategy = "constraint";
		add_review_id(reviews,
					  open_review(call, &batch, &st.local, img->key, NULL, cols, "refused",
								  found ? sr_row_object(tab, L, Lnull, which) : NULL,
								  sr_row_object(tab, img->values, img->nulls, which),
								  any_base ? sr_row_object(tab, srow->values, srow->nulls, known) : NULL,
								  NULL, rule));
		res->outcome = "held";
	}
	else
	{
		sr_event_add(&batch, "received", NULL, NULL, NULL, NULL, NULL,
					 psprintf("%s sent nothing new: local already agrees", call->source),
					 NULL, 0);
		res->outcome = "unchanged";
	}
	advance_base(call, img, srow, false);
	if (call->in_order && call->has_changed_at)
		sr_note_seen(&st.local, call->changed_at);
	finish_image(call, img->keyvals, &st, &batch);
}

/*
 * Delete the row for system sidx's delete (apply_delete(), or resolve()
 * taking it): true when a trigger of the table wrote it again meanwhile
 * (re-inserted it, as a local write recorded then), which stands -- st
 * then holds the row's shadow as that write left it, and the delete is
 * neither recorded as the row's nor sent.
 */
bool
sr_delete_row_then_back(SrTable *tab, int sidx, const Datum *keyvals, SrRowState *st)
{
	uint64		writes = sr_shadow_writes;
	SrRowState	now;

	sr_row_delete(tab, keyvals);
	if (sr_shadow_writes == writes || !sr_row_lock(tab, keyvals, true, NULL, NULL))
		return false;
	sr_shadow_load(tab, keyvals, &now);
	st->local = now.local;
	take_other_bases(tab, sidx, &now, st);
	return true;
}

/*
 * A delete from a source.  SPI is connected.  In a trigger (call->rewrite)
 * the statement's row is the row, and out_write says whether the
 * statement's DELETE goes ahead.
 */
void
sr_apply_delete_image(SrApplyCall *call, SrApplyResult *res, SrReviewIds *reviews)
{
	SrTable    *tab = call->tab;
	SrEventBatch batch;
	SrRowState	st;
	SrShadowRow *srow;
	SrShadowRow *lrow;
	Datum	   *keyvals = palloc(sizeof(Datum) * (tab->nkeys + 1));
	Datum	   *L = palloc0(sizeof(Datum) * (tab->ncols + 1));
	bool	   *Lnull = palloc0(sizeof(bool) * (tab->ncols + 1));
	bool		found;
	bool		crossing = false;
	bool		delete_row = true;
	bool		dominated = false;
	char	   *rule = NULL;
	Jsonb	   *rowobj = NULL;
	int			c;

	sr_parse_key(tab, call->payload, call->source, "key", keyvals);
	res->key = sr_build_key(tab, keyvals, NULL);
	init_batch(call, res->key, &batch);

	if (call->rewrite)
		call->out_write = false;
	if (call->old_values != NULL)
	{
		memcpy(L, call->old_values, sizeof(Datum) * tab->ncols);
		memcpy(Lnull, call->old_nulls, sizeof(bool) * tab->ncols);
		found = true;
	}
	else
		found = sr_lock_row_or_key(tab, keyvals, res->key, true, L, Lnull);
	if (is_duplicate(call, res->key, &batch, res))
		return;

	sr_shadow_load(tab, keyvals, &st);
	srow = &st.bases[call->sidx];
	lrow = &st.local;
	if (is_stale(call, srow, lrow, found, NULL, &batch, res))
		return;

	if (!found)
	{
		sr_event_add(&batch, "deleted", NULL, NULL, NULL, NULL, NULL,
					 psprintf("%s deleted the row, which was already absent here", call->source),
					 "nothing to delete", 0);
		res->outcome = "unchanged";
		delete_row = false;
	}
	else
	{
		if (call->version != NULL && lrow->version != NULL)
		{
			SrVclockOrder o = sr_vclock_compare(call->version, lrow->version);

			dominated = (o == SR_VC_AFTER || o == SR_VC_EQUAL);
		}
		rowobj = sr_row_object(tab, L, Lnull, NULL);
		if (!dominated)
		{
			if (!srow->found)
			{
				crossing = true;
				rule = psprintf("%s deleted the row, but never sent it, so local changes to it cannot be told apart",
								call->source);
			}
			else if (srow->deleted)
			{
				crossing = true;
				rule = psprintf("%s deleted the row again after it was kept here", call->source);
			}
			else
			{
				for (c = 0; c < tab->ncols; c++)
				{
					if (tab->cols[c].is_key || !srow->known[c])
						continue;
					if (!sr_datum_equal(&tab->cols[c], L[c], Lnull[c], srow->values[c], srow->nulls[c]) ||
						lrow->held[c])
					{
						crossing = true;
						rule = psprintf("%s deleted the row, but %s was changed here since %s last saw it",
										call->source, tab->cols[c].name, call->source);
						break;
					}
				}
			}
		}
		if (!crossing)
			rule = psprintf("%s deleted the row; nothing changed here since it last saw it", call->source);
		else
		{
			switch (tab->on_delete_conflict)
			{
				case SR_DELCONF_DELETE:
					rule = psprintf("%s; on_delete_conflict = delete", rule);
					delete_conflict_event(&batch, rowobj, NULL, NULL, rule, "deleted");
					break;
				case SR_DELCONF_KEEP:
					rule = psprintf("%s; on_delete_conflict = keep", rule);
					delete_conflict_event(&batch, rowobj, NULL, rowobj, rule, "kept the row");
					delete_row = false;
					res->outcome = "unchanged";
					for (c = 0; c < tab->ncols; c++)
						if (!tab->cols[c].is_key)
							res->kept = lappend(res->kept, tab->cols[c].name);
					break;
				case SR_DELCONF_REVIEW:
					{
						List	   *held = NIL;

						rule = psprintf("%s; a person decides", rule);
						delete_conflict_event(&batch, rowobj, NULL, NULL, rule, "held for review");
						for (c = 0; c < tab->ncols; c++)
							if (!tab->cols[c].is_key)
							{
								held = lappend_int(held, c);
								res->queued = lappend(res->queued, tab->cols[c].name);
							}
						add_review_id(reviews,
									  open_review(call, &batch, lrow, res->key, NULL, held, "delete",
												  rowobj, NULL, NULL, NULL, rule));
						delete_row = false;
						res->outcome = "held";
					}
					break;
			}
		}
	}

	if (found && delete_row)
	{
		bool		back = false;

		if (call->rewrite)
			call->out_write = true; /* the statement deletes it */
		else
			back = sr_delete_row_then_back(tab, call->sidx, keyvals, &st);
		sr_dismiss_reviews(tab, res->key, call->source, psprintf("row deleted by %s", call->source));
		sr_event_add(&batch, "deleted", NULL, rowobj, NULL, NULL, NULL, rule, NULL, 0);
		res->outcome = "deleted";
		if (back)
		{
			/* a trigger of the table wrote the row again: that local write stands */
			sr_event_add(&batch, "received", NULL, NULL, NULL, NULL, NULL,
						 psprintf("a trigger on table %s wrote the row again after %s's delete",
								  tab->display_name, call->source), NULL, 0);
			delete_row = false;
		}
		else
		{
			lrow->deleted = true;
			lrow->deleted_at = incoming_time(call);
			lrow->deleted_by = (char *) call->source;
			for (c = 0; c < tab->ncols; c++)
				lrow->held[c] = false;
			lrow->dirty = true;
			/* the other systems that hold it learn of the delete */
			sr_outbox_fan_out_delete(tab, res->key, &st, call->source, lrow->version,
									 call->source, &batch);
		}
	}
	else if (found && tab->on_delete_conflict == SR_DELCONF_KEEP && crossing &&
			 !sr_system_is_peer(call->source))
	{
		/* the row stays: the source gets it back */
		Jsonb	   *payload = sr_row_object(tab, L, Lnull, NULL);
		int64		id;

		id = sr_outbox_queue(tab, res->key, call->source, false, payload, lrow->version,
							 call->source);
		sr_event_add(&batch, "outbound_queued", NULL, NULL, NULL, NULL, payload,
					 psprintf("re-create queued for %s (outbox #%lld)", call->source, (long long) id),
					 NULL, 0);
	}
	/* gone here, as at the source: nothing waiting for the source applies */
	if (!found || delete_row)
		sr_outbox_withdraw(tab, res->key, call->source, false, &batch);
	if (call->version != NULL)
	{
		lrow->version = merge_source_version(call, lrow->version);
		lrow->dirty = true;
	}

	/* the source's tombstone: it holds nothing any more */
	for (c = 0; c < tab->ncols; c++)
		if (!tab->cols[c].is_key)
			srow->known[c] = false;
	if (call->has_changed_at &&
		(!srow->has_changed_at || call->changed_at > srow->changed_at))
	{
		srow->changed_at = call->changed_at;
		srow->has_changed_at = true;
	}
	if (call->version)
		srow->version = srow->version ? sr_vclock_merge(srow->version, call->version) : call->version;
	srow->received_at = call->received_at;
	srow->deleted = true;
	srow->deleted_at = incoming_time(call);
	srow->deleted_by = (char *) call->source;
	finish_image(call, keyvals, &st, &batch);
}

/* ------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------
 */

static HeapTuple
result_tuple(TupleDesc td, const SrApplyResult *res, const SrReviewIds *reviews)
{
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	Datum	   *ids = palloc(sizeof(Datum) * (reviews->n + 1));
	int			i;

	values[0] = CStringGetTextDatum(res->outcome ? res->outcome : "unchanged");
	if (res->key)
		values[1] = JsonbPGetDatum(res->key);
	else
		nulls[1] = true;
	values[2] = sr_text_array(res->applied);
	values[3] = sr_text_array(res->kept);
	values[4] = sr_text_array(res->queued);
	values[5] = sr_text_array(res->rejected);
	for (i = 0; i < reviews->n; i++)
		ids[i] = Int64GetDatum(reviews->ids[i]);
	values[6] = PointerGetDatum(construct_array(ids, reviews->n, INT8OID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	return heap_form_tuple(td, values, nulls);
}

/* A call from a source that may act on the table. */
void
sr_init_call(SrApplyCall *call, SrTable *tab, const char *source)
{
	memset(call, 0, sizeof(*call));
	call->tab = tab;
	call->sys = sr_check_source(tab, source);
	/* copied: a reload of the systems may come in the middle of the call */
	call->source = pstrdup(call->sys->name);
	call->sidx = sr_table_system_index(tab, call->source);
	call->received_at = GetCurrentTimestamp();
}

static void
init_call(SrApplyCall *call, Oid relid, const char *source, FunctionCallInfo fcinfo,
		  int changed_at_arg, AclMode needed)
{
	SrTable    *tab = sr_table_get(relid, false, RowExclusiveLock);

	/*
	 * The statements on the table check its privileges again; this check
	 * comes first, so that a caller who may not write the table leaves no
	 * trace in sync_resolve's own tables (deliveries, history, rejects).
	 */
	if (pg_class_aclmask(relid, GetUserId(), needed, ACLMASK_ANY) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", tab->display_name),
				 errhint("sync_resolve writes the table as the calling role, which needs %s on it.",
						 needed == ACL_DELETE ? "DELETE" : "INSERT or UPDATE")));
	sr_init_call(call, tab, source);
	if (fcinfo != NULL)
	{
		call->has_changed_at = !PG_ARGISNULL(changed_at_arg);
		if (call->has_changed_at)
			call->changed_at = PG_GETARG_TIMESTAMPTZ(changed_at_arg);
		if (!PG_ARGISNULL(changed_at_arg + 1))
			call->version = DatumGetSrVclockP(PG_GETARG_DATUM(changed_at_arg + 1));
		if (!PG_ARGISNULL(changed_at_arg + 2))
			call->event_id = text_to_cstring(PG_GETARG_TEXT_PP(changed_at_arg + 2));
	}
	if (call->has_changed_at && TIMESTAMP_NOT_FINITE(call->changed_at))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("changed_at from system \"%s\" for table %s is not a finite time",
						source, call->tab->display_name),
				 errhint("Send the time the source changed the record, or NULL.")));
}

static void
require_args(FunctionCallInfo fcinfo, int n, const char *const *names)
{
	int			i;

	for (i = 0; i < n; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", names[i]),
					 errhint("Pass the tracked table, the source system and the change.")));
}

static Datum
single_call(FunctionCallInfo fcinfo, bool is_delete)
{
	static const char *const names[] = {"tbl", "source", "payload"};
	static const char *const delete_names[] = {"tbl", "source", "key"};
	MemoryContext callercxt = CurrentMemoryContext;
	TupleDesc	td;
	SrApplyCall call;
	SrApplyResult res;
	SrReviewIds reviews = {0, 0, NULL};
	HeapTuple	tup;
	Relation	rel;
	char	   *source;

	PreventCommandIfReadOnly(is_delete ? "sync_resolve.apply_delete()" : "sync_resolve.apply()");
	require_args(fcinfo, 3, is_delete ? delete_names : names);
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "sync_resolve: apply must return a composite type");
	td = BlessTupleDesc(td);
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	init_call(&call, PG_GETARG_OID(0), source, fcinfo, 3,
			  is_delete ? ACL_DELETE : (ACL_INSERT | ACL_UPDATE));
	rel = sr_table_hold(call.tab);
	call.payload = PG_GETARG_JSONB_P(2);
	memset(&res, 0, sizeof(res));
	if (is_delete)
		sr_apply_delete_image(&call, &res, &reviews);
	else
		apply_json(&call, &res, &reviews);

	sr_table_release(rel);
	MemoryContextSwitchTo(callercxt);
	tup = result_tuple(td, &res, &reviews);
	SPI_finish();
	sr_cache_leave();
	PG_RETURN_DATUM(HeapTupleGetDatum(tup));
}

PG_FUNCTION_INFO_V1(apply);
Datum
apply(PG_FUNCTION_ARGS)
{
	return single_call(fcinfo, false);
}

PG_FUNCTION_INFO_V1(apply_delete);
Datum
apply_delete(PG_FUNCTION_ARGS)
{
	return single_call(fcinfo, true);
}

/* ------------------------------------------------------------------------
 * apply_batch
 * ------------------------------------------------------------------------
 */

typedef struct SrBatchContext
{
	int			position;		/* 1-based */
} SrBatchContext;

static void
batch_error_context(void *arg)
{
	SrBatchContext *ctx = (SrBatchContext *) arg;

	errcontext("element %d of the batch", ctx->position);
}

/* Fill call from one element: {"op", "data", "changed_at", "version", "event_id"} */
static bool
parse_element(SrApplyCall *call, Jsonb *elem)
{
	JsonbValue	v;
	bool		is_delete = false;

	if (!JB_ROOT_IS_OBJECT(elem))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch element for table %s from system \"%s\" is not a JSON object",
						call->tab->display_name, call->source),
				 errdetail("It was %s.", sr_jsonb_value_text(elem)),
				 errhint("Each element is {\"op\": \"upsert\" or \"delete\", \"data\": {...}, \"changed_at\": ..., \"version\": ..., \"event_id\": ...}.")));
	if (sr_jsonb_get_field(elem, "op", &v) && v.type != jbvNull)
	{
		char	   *op = v.type == jbvString ? pnstrdup(v.val.string.val, v.val.string.len) : "?";

		if (strcmp(op, "delete") == 0)
			is_delete = true;
		else if (strcmp(op, "upsert") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown op %s in a batch for table %s from system \"%s\"",
							sr_jsonb_value_text(JsonbValueToJsonb(&v)),
							call->tab->display_name, call->source),
					 errhint("Use \"upsert\" or \"delete\".")));
	}
	if (!sr_jsonb_get_field(elem, "data", &v) || v.type != jbvBinary ||
		!JsonContainerIsObject(v.val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch element for table %s from system \"%s\" has no \"data\" object",
						call->tab->display_name, call->source),
				 errdetail("It was %s.", sr_jsonb_value_text(elem)),
				 errhint("Put the row (or, for a delete, its key) under \"data\".")));
	call->payload = JsonbValueToJsonb(&v);

	call->has_changed_at = false;
	call->version = NULL;
	call->event_id = NULL;
	if (sr_jsonb_get_field(elem, "changed_at", &v) && v.type != jbvNull)
	{
		if (v.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
					 errmsg("changed_at in a batch for table %s from system \"%s\" is not a string",
							call->tab->display_name, call->source),
					 errhint("Send a timestamp such as \"2026-11-23T10:00:00Z\".")));
		call->changed_at = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																   CStringGetDatum(pnstrdup(v.val.string.val, v.val.string.len)),
																   ObjectIdGetDatum(InvalidOid),
																   Int32GetDatum(-1)));
		call->has_changed_at = true;
		if (TIMESTAMP_NOT_FINITE(call->changed_at))
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("changed_at in a batch for table %s from system \"%s\" is not a finite time",
							call->tab->display_name, call->source),
					 errhint("Send the time the source changed the record.")));
	}
	if (sr_jsonb_get_field(elem, "version", &v) && v.type != jbvNull)
	{
		if (v.type == jbvString)
			call->version = DatumGetSrVclockP(DirectFunctionCall1(vclock_in,
																  CStringGetDatum(pnstrdup(v.val.string.val, v.val.string.len))));
		else
			call->version = DatumGetSrVclockP(DirectFunctionCall1(jsonb_to_vclock,
																  JsonbPGetDatum(JsonbValueToJsonb(&v))));
	}
	if (sr_jsonb_get_field(elem, "event_id", &v) && v.type != jbvNull)
	{
		if (v.type == jbvString)
			call->event_id = pnstrdup(v.val.string.val, v.val.string.len);
		else
			call->event_id = sr_jsonb_value_text(JsonbValueToJsonb(&v));
	}
	return is_delete;
}

/*
 * The key fields of a batch element as sent, for the result of an element
 * that failed (NULL when it has none): not converted, since converting may
 * be what failed.
 */
static Jsonb *
element_key(const SrTable *tab, Jsonb *elem)
{
	JsonbValue	d;
	Jsonb	   *data;
	const char **names;
	Jsonb	  **vals;
	int			i;

	if (!JB_ROOT_IS_OBJECT(elem) || !sr_jsonb_get_field(elem, "data", &d) ||
		d.type != jbvBinary || !JsonContainerIsObject(d.val.binary.data))
		return NULL;
	data = JsonbValueToJsonb(&d);
	names = palloc(sizeof(char *) * tab->nkeys);
	vals = palloc(sizeof(Jsonb *) * tab->nkeys);
	for (i = 0; i < tab->nkeys; i++)
	{
		JsonbValue	v;

		names[i] = tab->cols[tab->keys[i]].name;
		if (!sr_jsonb_get_field(data, names[i], &v))
			return NULL;
		vals[i] = JsonbValueToJsonb(&v);
	}
	return sr_jsonb_object(tab->nkeys, names, vals);
}

/*
 * Is this error the element's own fault (set aside by on_error = reject),
 * or the session's or the server's (raised for the whole call)?
 */
static bool
element_error(const ErrorData *edata)
{
	switch (ERRCODE_TO_CATEGORY(edata->sqlerrcode))
	{
		case ERRCODE_TRANSACTION_ROLLBACK:	/* serialization, deadlock */
		case ERRCODE_INSUFFICIENT_RESOURCES:
		case ERRCODE_OPERATOR_INTERVENTION: /* cancel, shutdown */
		case ERRCODE_SYSTEM_ERROR:
		case ERRCODE_CONFIG_FILE_ERROR:
		case ERRCODE_INTERNAL_ERROR:
			return false;
		default:
			break;
	}
	return edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE &&
		edata->sqlerrcode != ERRCODE_OBJECT_IN_USE;
}

static void
record_rejected(const SrApplyCall *call, int position, Jsonb *elem, ErrorData *edata)
{
	Datum		values[9];
	char		nulls[10] = "         ";

	if (rejected_plan == NULL)
	{
		Oid			types[9] = {REGCLASSOID, TEXTOID, INT4OID, JSONBOID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID};
		SPIPlanPtr	plan;

		plan = sr_prepare_kept("INSERT INTO sync_resolve.rejected (relid, source, position, element,"
						   " sqlstate, message, detail, hint, actor)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9, types, true);
		rejected_plan = plan;
	}
	values[0] = ObjectIdGetDatum(call->tab->relid);
	values[1] = CStringGetTextDatum(call->source);
	values[2] = Int32GetDatum(position);
	values[3] = JsonbPGetDatum(elem);
	values[4] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	values[5] = CStringGetTextDatum(edata->message ? edata->message : "?");
	values[6] = edata->detail ? CStringGetTextDatum(edata->detail) : (Datum) 0;
	nulls[6] = edata->detail ? ' ' : 'n';
	values[7] = edata->hint ? CStringGetTextDatum(edata->hint) : (Datum) 0;
	nulls[7] = edata->hint ? ' ' : 'n';
	values[8] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	sr_spi_execute(rejected_plan, values, nulls, true, false, 0, SPI_OK_INSERT);
}

/* One element of a batch, applied: upsert or delete */
static void
apply_element(SrApplyCall *call, Jsonb *elem, SrApplyResult *res, SrReviewIds *reviews)
{
	if (parse_element(call, elem))
		sr_apply_delete_image(call, res, reviews);
	else
		apply_json(call, res, reviews);
}

/* The elements of a batch, up to SR_RUN_MAX of them, and their results */
typedef struct SrBatchRun
{
	SrApplyCall *call;
	SrBatchContext *bctx;
	TupleDesc	td;
	Jsonb	  **elems;
	int			first;			/* the position of elems[0] in the batch (1-based) */
	HeapTuple  *results;		/* their result rows, once applied */
	MemoryContext elemcxt;		/* emptied for each element */
	MemoryContext runcxt;		/* the elements and their results */
} SrBatchRun;

/* Apply element i in elemcxt, and keep its result row. */
static void
apply_item(void *arg, int i)
{
	SrBatchRun *run = (SrBatchRun *) arg;
	SrApplyResult res;
	SrReviewIds reviews = {0, 0, NULL};
	MemoryContext old;

	run->bctx->position = run->first + i;
	MemoryContextReset(run->elemcxt);
	old = MemoryContextSwitchTo(run->elemcxt);
	memset(&res, 0, sizeof(res));
	apply_element(run->call, run->elems[i], &res, &reviews);
	MemoryContextSwitchTo(run->runcxt);
	run->results[i] = result_tuple(run->td, &res, &reviews);
	MemoryContextSwitchTo(old);
}

/* Set element i aside (on_error => 'reject'): sync_resolve.rejected. */
static void
reject_item(void *arg, int i, ErrorData *edata)
{
	SrBatchRun *run = (SrBatchRun *) arg;
	SrApplyResult res;
	SrReviewIds reviews = {0, 0, NULL};
	MemoryContext old = MemoryContextSwitchTo(run->runcxt);

	record_rejected(run->call, run->first + i, run->elems[i], edata);
	memset(&res, 0, sizeof(res));
	res.outcome = "rejected";
	res.key = element_key(run->call->tab, run->elems[i]);
	run->results[i] = result_tuple(run->td, &res, &reviews);
	MemoryContextSwitchTo(old);
}

/*
 * Apply the n elements of run, in runs with on_error => 'reject' (see
 * sr_runs(): a batch takes a few subtransaction ids, not one per element),
 * and add their result rows to out.
 */
static void
apply_elements(SrBatchRun *run, SrRuns *runs, int n, Tuplestorestate *out)
{
	MemoryContext old = MemoryContextSwitchTo(run->runcxt);
	int			i;

	if (runs != NULL)
		sr_runs(runs, 0, n);
	else
		for (i = 0; i < n; i++)
			apply_item(run, i);
	for (i = 0; i < n; i++)
		tuplestore_puttuple(out, run->results[i]);
	MemoryContextSwitchTo(old);
	MemoryContextReset(run->runcxt);
}

PG_FUNCTION_INFO_V1(apply_batch);
Datum
apply_batch(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"tbl", "source", "changes"};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SrApplyCall call;
	Jsonb	   *changes;
	bool		reject;
	char	   *on_error;
	char	   *source;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	SrBatchContext bctx = {0};
	ErrorContextCallback errcb;
	SrBatchRun	run;
	SrRuns		runs = {&run, apply_item, element_error, reject_item, SR_RUN_MIN};
	Relation	rel;
	int			n = 0;

	PreventCommandIfReadOnly("sync_resolve.apply_batch()");
	require_args(fcinfo, 3, names);
	on_error = PG_ARGISNULL(3) ? "raise" : text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (strcmp(on_error, "raise") == 0)
		reject = false;
	else if (strcmp(on_error, "reject") == 0)
		reject = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid on_error \"%s\"", on_error),
				 errhint("Use raise (the first bad element fails the call) or reject (bad elements go to sync_resolve.rejected).")));
	changes = PG_GETARG_JSONB_P(2);
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));

	InitMaterializedSRF(fcinfo, 0);

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	init_call(&call, PG_GETARG_OID(0), source, NULL, 0,
			  ACL_INSERT | ACL_UPDATE | ACL_DELETE);
	if (!JB_ROOT_IS_ARRAY(changes) || JB_ROOT_IS_SCALAR(changes))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("changes for table %s from system \"%s\" is not a JSON array",
						call.tab->display_name, call.source),
				 errhint("Send an array of {\"op\": ..., \"data\": {...}} elements.")));
	rel = sr_table_hold(call.tab);

	memset(&run, 0, sizeof(run));
	run.call = &call;
	run.bctx = &bctx;
	run.td = rsinfo->setDesc;
	run.elems = palloc(sizeof(Jsonb *) * SR_RUN_MAX);
	run.first = 1;
	run.results = palloc(sizeof(HeapTuple) * SR_RUN_MAX);
	run.elemcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_resolve batch element",
										ALLOCSET_DEFAULT_SIZES);
	run.runcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_resolve batch run",
									   ALLOCSET_DEFAULT_SIZES);
	errcb.callback = batch_error_context;
	errcb.arg = &bctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	/* the elements, SR_RUN_MAX at a time */
	it = JsonbIteratorInit(&changes->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		MemoryContext old;

		if (tok != WJB_ELEM)
			continue;
		old = MemoryContextSwitchTo(run.runcxt);
		run.elems[n] = JsonbValueToJsonb(&v);
		MemoryContextSwitchTo(old);
		if (++n == SR_RUN_MAX)
		{
			apply_elements(&run, reject ? &runs : NULL, n, rsinfo->setResult);
			run.first += n;
			n = 0;
		}
	}
	if (n > 0)
		apply_elements(&run, reject ? &runs : NULL, n, rsinfo->setResult);

	error_context_stack = errcb.previous;
	sr_table_release(rel);
	MemoryContextDelete(run.elemcxt);
	MemoryContextDelete(run.runcxt);
	SPI_finish();
	sr_cache_leave();
	return (Datum) 0;
}
