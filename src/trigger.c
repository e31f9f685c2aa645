/*-------------------------------------------------------------------------
 *
 * trigger.c
 *		The two triggers track() installs on a tracked table, both enabled
 *		ALWAYS so that they fire under logical replication's apply worker.
 *
 * sync_resolve_before (BEFORE INSERT OR UPDATE OR DELETE, FOR EACH ROW)
 * takes writes that come from a source: a session that set
 * sync_resolve.source, or an apply worker whose replication origin (or its
 * subscription's name) is some system's replication_origin.  Such a write is
 * an incoming image, resolved exactly as apply() resolves one:
 *	- UPDATE: the columns the statement changed are the image; NEW is
 *	  rewritten column by column, or the write is skipped when nothing is to
 *	  change (so that nothing is written, and nothing replicated back);
 *	- INSERT of a key the table has: an image of that row, applied to it,
 *	  and the INSERT skipped: a replication stream never stops on a
 *	  duplicate key;
 *	- INSERT of a new key: NEW keeps the columns the source may write, the
 *	  others get their defaults;
 *	- DELETE: goes ahead, or is skipped, as apply_delete() decides.
 * A local write passes, unless sync_resolve.enforce_ownership refuses it.
 *
 * sync_resolve_after (AFTER INSERT OR UPDATE OR DELETE, FOR EACH ROW)
 * records local writes: for each column the statement really changed (by
 * the type's equality), when and by whom; it ticks the row's version for
 * local, and queues what changed for every system that does not hold it
 * yet.  A delete leaves a local tombstone and queues the delete.  Writes
 * from a source, and sync_resolve's own writes, are not local.
 *
 * A partition of a tracked partitioned table works under its ancestor,
 * its tuples converted to the ancestor's layout and back.
 *
 * Locking: the tracked row is locked by the statement; the shadow rows and
 * outbox entries are written after, in the order apply() uses.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/tupconvert.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_subscription.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "replication/logicalworker.h"
#include "replication/origin.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "sync_resolve.h"

/* Key values of a heap tuple, in primary-key order. */
static void
tuple_keys(const SrTable *tab, HeapTuple tup, TupleDesc td, Datum *keyvals)
{
	int			i;

	for (i = 0; i < tab->nkeys; i++)
	{
		bool		isnull;

		keyvals[i] = heap_getattr(tup, tab->cols[tab->keys[i]].attnum, td, &isnull);
		if (isnull)
			elog(ERROR, "sync_resolve: null primary key in %s", tab->display_name);
	}
}

static bool
keys_equal(const SrTable *tab, HeapTuple a, HeapTuple b, TupleDesc td)
{
	int			i;

	for (i = 0; i < tab->nkeys; i++)
	{
		const SrColumn *col = &tab->cols[tab->keys[i]];
		bool		an,
					bn;
		Datum		av = heap_getattr(a, col->attnum, td, &an);
		Datum		bv = heap_getattr(b, col->attnum, td, &bn);

		if (!sr_datum_equal(col, av, an, bv, bn))
			return false;
	}
	return true;
}

/* Every tracked column of a tuple, by column index. */
static void
tuple_values(const SrTable *tab, HeapTuple tup, TupleDesc td, Datum *values, bool *nulls)
{
	int			c;

	for (c = 0; c < tab->ncols; c++)
		values[c] = heap_getattr(tup, tab->cols[c].attnum, td, &nulls[c]);
}

/*
 * Is this the row sync_resolve itself is writing?  stored: for an AFTER
 * trigger, the row as the table holds it (the trigger's own tuple, with its
 * header), which sync_resolve's own command must have written (INSERT,
 * UPDATE) or deleted (DELETE) -- a trigger of the table that writes or
 * deletes the same row again during that write does so as a later command,
 * and that is a local write to record.  NULL: the key alone says.
 */
static bool
own_write(const SrTable *tab, HeapTuple tup, TupleDesc td, HeapTuple stored, bool deleted)
{
	int			i;

	if (sr_applying.relid != tab->relid || sr_applying.keyvals == NULL)
		return false;
	if (stored != NULL && stored->t_data != NULL)
	{
		HeapTupleHeader h = stored->t_data;

		if (!deleted &&
			(!TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(h)) ||
			 HeapTupleHeaderGetCmin(h) != sr_applying.cid))
			return false;
		if (deleted &&
			((h->t_infomask & HEAP_XMAX_IS_MULTI) ||
			 !TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmax(h)) ||
			 HeapTupleHeaderGetCmax(h) != sr_applying.cid))
			return false;
	}
	for (i = 0; i < tab->nkeys; i++)
	{
		const SrColumn *col = &tab->cols[tab->keys[i]];
		bool		isnull;
		Datum		v = heap_getattr(tup, col->attnum, td, &isnull);

		if (!sr_datum_equal(col, v, isnull, sr_applying.keyvals[i], false))
			return false;
	}
	return true;
}

/*
 * The system the current write comes from, or NULL for a local write:
 * sync_resolve.source, or the system mapped to the replication origin of
 * an apply worker (by the origin's own name, or by its subscription's).
 */
static const char *
write_source(bool *by_replication)
{
	char	   *origin;
	const SrSystem *sys;

	*by_replication = false;
	if (sr_source_guc != NULL && sr_source_guc[0] != '\0')
		return sr_source_guc;
	if (replorigin_session_origin == InvalidRepOriginId ||
		replorigin_session_origin == DoNotReplicateId ||
		!replorigin_by_oid(replorigin_session_origin, true, &origin))
		return NULL;
	sys = sr_system_by_origin(origin);
	if (sys == NULL)
	{
		/* a subscription's origin is named pg_<subscription oid> */
		Oid			subid;
		HeapTuple	tup;

		if (sscanf(origin, "pg_%u", &subid) != 1)
			return NULL;
		tup = SearchSysCache1(SUBSCRIPTIONOID, ObjectIdGetDatum(subid));
		if (!HeapTupleIsValid(tup))
			return NULL;
		sys = sr_system_by_origin(NameStr(((Form_pg_subscription) GETSTRUCT(tup))->subname));
		ReleaseSysCache(tup);
	}
	if (sys == NULL)
		return NULL;
	*by_replication = true;
	return sys->name;
}

/*
 * Does another row hold a value of one of rel's unique or exclusion
 * constraints that tup would insert?  The check an INSERT ... ON CONFLICT
 * makes before it inserts (the key's own index, and deferrable constraints,
 * left out), so that a source's INSERT is not refused by the executor with
 * a bare unique-violation error after this trigger has let it through.
 */
static bool
unique_clash(Relation rel, HeapTuple tup)
{
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	List	   *arbiters = NIL;
	bool		clash = false;
	int			i;

	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, true);
	for (i = 0; i < rri->ri_NumIndices; i++)
	{
		Form_pg_index ind = rri->ri_IndexRelationDescs[i]->rd_index;

		if ((ind->indisunique || ind->indisexclusion) && !ind->indisprimary &&
			ind->indimmediate)
			arbiters = lappend_oid(arbiters, ind->indexrelid);
	}
	if (arbiters != NIL)
	{
		TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
		ItemPointerData conflict;

		ExecStoreHeapTuple(tup, slot, false);
		clash = !ExecCheckIndexConstraints(rri, slot, estate, &conflict, arbiters);
		ExecDropSingleTupleTableSlot(slot);
	}
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	return clash;
}

/* The tracked table of a trigger's relation, and the tuples in its layout. */
typedef struct SrTrigRow
{
	SrTable    *tab;
	TupleDesc	td;				/* the tracked table's */
	HeapTuple	oldtup;			/* converted */
	HeapTuple	newtup;
	TupleConversionMap *back;	/* tracked table -> partition, or NULL */
} SrTrigRow;

static bool
trig_row(TriggerData *trigdata, SrTrigRow *r)
{
	Relation	rel = trigdata->tg_relation;
	Oid			relid = sr_tracked_relid(rel);

	memset(r, 0, sizeof(*r));
	if (!OidIsValid(relid))
		return false;
	r->tab = sr_table_get(relid, true, relid == RelationGetRelid(rel) ? NoLock : AccessShareLock);
	if (r->tab == NULL)
		return false;
	r->td = RelationGetDescr(rel);
	r->oldtup = trigdata->tg_trigtuple;
	r->newtup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : NULL;
	if (relid != RelationGetRelid(rel))
	{
		/* a partition's columns may be laid out otherwise */
		Relation	parent = relation_open(relid, NoLock);
		TupleConversionMap *map = convert_tuples_by_name(r->td, RelationGetDescr(parent));

		r->back = convert_tuples_by_name(RelationGetDescr(parent), r->td);
		r->td = CreateTupleDescCopy(RelationGetDescr(parent));
		relation_close(parent, NoLock);
		if (map != NULL)
		{
			r->oldtup = execute_attr_map_tuple(r->oldtup, map);
			if (r->newtup)
				r->newtup = execute_attr_map_tuple(r->newtup, map);
		}
	}
	return true;
}

/* A tuple in the tracked table's layout back in the trigger relation's. */
static HeapTuple
trig_back(SrTrigRow *r, HeapTuple tup)
{
	return r->back ? execute_attr_map_tuple(tup, r->back) : tup;
}

static void
check_trigger(FunctionCallInfo fcinfo, bool before, const char *name)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: not called by trigger manager", name)));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BEFORE(trigdata->tg_event) != before)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: must be fired %s ... FOR EACH ROW", name, before ? "BEFORE" : "AFTER")));
}

/* ------------------------------------------------------------------------
 * Local writes (AFTER)
 * ------------------------------------------------------------------------
 */

/* Record a local write of some columns (all when old is NULL). */
static void
record_write(SrTable *tab, HeapTuple tup, HeapTuple old, TupleDesc td,
			 TimestampTz now)
{
	Datum	   *keyvals = palloc(sizeof(Datum) * (tab->nkeys + 1));
	Datum	   *values = palloc(sizeof(Datum) * (tab->ncols + 1));
	bool	   *nulls = palloc(sizeof(bool) * (tab->ncols + 1));
	bool	   *changed = palloc0(sizeof(bool) * (tab->ncols + 1));
	SrRowState	st;
	bool		any = false;
	bool		created;
	bool		revived;
	Jsonb	   *key;
	int			c;

	tuple_keys(tab, tup, td, keyvals);
	tuple_values(tab, tup, td, values, nulls);
	sr_shadow_load(tab, keyvals, &st);
	created = (old == NULL);

	for (c = 0; c < tab->ncols; c++)
	{
		const SrColumn *col = &tab->cols[c];

		if (col->is_key)
			continue;
		if (old != NULL)
		{
			bool		on;
			Datum		ov = heap_getattr(old, col->attnum, td, &on);

			if (sr_datum_equal(col, values[c], nulls[c], ov, on))
				continue;
		}
		st.local.col_writer[c] = SR_LOCAL;
		st.local.col_changed_at[c] = now;
		changed[c] = true;
		any = true;
	}
	if (!any && !(created && (!st.local.found || st.local.deleted)))
		return;
	key = sr_build_key(tab, keyvals, NULL);
	/* inserted again after a delete here: see sr_outbox_fan_out() */
	revived = created && st.local.found && st.local.deleted;
	/* whether to bring the row back was the question: it is back */
	if (revived)
		sr_release_reviews(tab, key, &st.local, SR_LOCAL, "row re-created locally");
	st.local.deleted = false;
	st.local.deleted_by = NULL;
	st.local.version = sr_vclock_tick(st.local.version, SR_LOCAL);
	st.local.received_at = now;
	sr_shadow_local_write(tab, keyvals, &st.local);
	sr_outbox_fan_out(tab, key, &st, NULL, values, nulls,
					  changed, revived, st.local.version, SR_LOCAL, NULL, NULL);
}

/*
 * Leave a tombstone for a row deleted here (by: local, or the PostgreSQL
 * node whose TRUNCATE replication applied), and tell the systems; the
 * row's key.
 */
static Jsonb *
record_delete(SrTable *tab, HeapTuple old, TupleDesc td, TimestampTz now, const char *by)
{
	Datum	   *keyvals = palloc(sizeof(Datum) * (tab->nkeys + 1));
	SrRowState	st;
	Jsonb	   *key;
	bool		local = strcmp(by, SR_LOCAL) == 0;

	tuple_keys(tab, old, td, keyvals);
	key = sr_build_key(tab, keyvals, NULL);
	sr_shadow_load(tab, keyvals, &st);
	st.local.deleted = true;
	st.local.deleted_at = now;
	st.local.deleted_by = (char *) by;
	/* the row is gone: its open reviews have nothing left to decide */
	sr_release_reviews(tab, key, &st.local, by,
					   local ? "row deleted locally" : psprintf("row deleted by %s", by));
	if (local)
		st.local.version = sr_vclock_tick(st.local.version, SR_LOCAL);
	st.local.received_at = now;
	sr_shadow_local_write(tab, keyvals, &st.local);
	sr_outbox_fan_out_delete(tab, key, &st, by, st.local.version, by, NULL);
	return key;
}

/*
 * Whether a TRUNCATE of rel fires a sync_resolve_truncate trigger of its
 * own now: enabled, and for this session_replication_role as PostgreSQL
 * decides it.
 */
static bool
own_truncate_trigger(Relation rel)
{
	char		off = SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA
		? TRIGGER_FIRES_ON_ORIGIN : TRIGGER_FIRES_ON_REPLICA;
	int			i;

	if (rel->trigdesc == NULL)
		return false;
	for (i = 0; i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *trig = &rel->trigdesc->triggers[i];

		if (TRIGGER_FOR_TRUNCATE(trig->tgtype) && trig->tgenabled != TRIGGER_DISABLED &&
			trig->tgenabled != off && sr_own_trigger(trig))
			return true;
	}
	return false;
}

/*
 * Whether the trigger on rel (relid) is the one to read partition leaf's
 * rows: leaf's own, or else that of its nearest ancestor up to rel with one
 * that fires, so that a TRUNCATE that takes several of them (the table
 * takes all its partitions) reads each row once.
 */
static bool
reads_leaf(Oid relid, Relation leaf)
{
	List	   *ancestors;
	ListCell   *lc;
	bool		mine = false;

	if (RelationGetRelid(leaf) == relid)
		return true;
	if (own_truncate_trigger(leaf))
		return false;
	ancestors = get_partition_ancestors(RelationGetRelid(leaf));
	foreach(lc, ancestors)
	{
		Relation	up;
		bool		fires;

		if (lfirst_oid(lc) == relid)
		{
			mine = true;
			break;
		}
		up = relation_open(lfirst_oid(lc), NoLock);
		fires = own_truncate_trigger(up);
		relation_close(up, NoLock);
		if (fires)
			break;
	}
	list_free(ancestors);
	return mine;
}

/*
 * TRUNCATE of a tracked table or of one of its partitions (BEFORE
 * TRUNCATE): every row goes as a local DELETE of it would -- a tombstone,
 * its reviews dismissed, the delete queued for each system that holds it
 * -- so that the systems hear of it and no change queued for a row that is
 * gone is still sent.  The rows are read from the table itself (row
 * security does not hide any from TRUNCATE either).  Replicated from a
 * PostgreSQL node, the same, the tombstones naming that node (nothing is
 * ever queued to it), and what its apply worker held for the rows is
 * dropped.  Under sync_resolve.source it is refused: a source's delete is
 * decided row by row and may keep a row, which TRUNCATE cannot.
 *
 * Each partition carries the trigger too (track() and sync_resolve_ddl put
 * it there: PostgreSQL fires a statement trigger only for the tables a
 * TRUNCATE takes, and does not clone it to partitions), and a TRUNCATE of
 * the table takes every partition: each trigger reads the rows of its own
 * table, in the tracked table's layout, and those of the partitions under
 * it whose own trigger is missing or does not fire (reads_leaf()).
 */
void
sr_truncate_rows(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			tracked = sr_tracked_relid(rel);
	SrTable    *tab;
	bool		by_replication;
	const char *source = write_source(&by_replication);
	Relation	trel;
	TupleDesc	td;
	Snapshot	snap;
	MemoryContext rowcxt;
	MemoryContext old;
	TimestampTz now = GetCurrentTimestamp();
	List	   *leaves;
	ListCell   *lc;

	if (!OidIsValid(tracked))
		return;
	tab = sr_table_get(tracked, true, tracked == relid ? NoLock : AccessShareLock);
	if (tab == NULL)
		return;
	if (source != NULL && !by_replication)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("TRUNCATE of tracked table %s cannot be taken as a write from system \"%s\"",
						tab->display_name, source),
				 errdetail("sync_resolve resolves a delete from a source row by row, and may keep a row; TRUNCATE removes them all."),
				 errhint("Delete the rows with DELETE under sync_resolve.source, or RESET sync_resolve.source to truncate as a local write.")));

	trel = tracked == relid ? rel : relation_open(tracked, NoLock);
	td = RelationGetDescr(trel);
	/* every row the table holds now: TRUNCATE removes them all */
	snap = RegisterSnapshot(GetLatestSnapshot());
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_resolve truncate",
								   ALLOCSET_DEFAULT_SIZES);
	leaves = rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE
		? find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
	foreach(lc, leaves)
	{
		Relation	leaf = table_open(lfirst_oid(lc), NoLock);
		TupleConversionMap *map = NULL;
		TableScanDesc scan;
		TupleTableSlot *slot;

		if (!RELKIND_HAS_STORAGE(leaf->rd_rel->relkind) || !reads_leaf(relid, leaf))
		{
			table_close(leaf, NoLock);
			continue;
		}
		if (RelationGetRelid(leaf) != tracked)
			map = convert_tuples_by_name(RelationGetDescr(leaf), td);
		slot = table_slot_create(leaf, NULL);
		scan = table_beginscan(leaf, snap, 0, NULL);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			HeapTuple	tup;
			bool		should_free;
			Jsonb	   *key;

			CHECK_FOR_INTERRUPTS();
			old = MemoryContextSwitchTo(rowcxt);
			tup = ExecFetchSlotHeapTuple(slot, false, &should_free);
			if (map != NULL)
				tup = execute_attr_map_tuple(tup, map);
			key = record_delete(tab, tup, td, now, source ? source : SR_LOCAL);
			if (by_replication)
				sr_hold_drop(tab, source, key);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		table_close(leaf, NoLock);
	}
	MemoryContextDelete(rowcxt);
	UnregisterSnapshot(snap);
	if (trel != rel)
		relation_close(trel, NoLock);
}

PG_FUNCTION_INFO_V1(local_write_trigger);
Datum
local_write_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	rettuple;
	SrTrigRow	r;
	bool		by_replication;

	check_trigger(fcinfo, false, "local_write_trigger");
	rettuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)
		? trigdata->tg_newtuple : trigdata->tg_trigtuple;

	/* a write from a source was taken care of before it was made */
	if (write_source(&by_replication) != NULL)
		return PointerGetDatum(rettuple);

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	if (trig_row(trigdata, &r) &&
		!own_write(r.tab, r.newtup ? r.newtup : r.oldtup, r.td, rettuple,
				   TRIGGER_FIRED_BY_DELETE(trigdata->tg_event)))
	{
		TimestampTz now = GetCurrentTimestamp();

		if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
			record_write(r.tab, r.oldtup, NULL, r.td, now);
		else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		{
			if (keys_equal(r.tab, r.oldtup, r.newtup, r.td))
				record_write(r.tab, r.newtup, r.oldtup, r.td, now);
			else
			{
				/* a new key is a new row to every other system */
				record_delete(r.tab, r.oldtup, r.td, now, SR_LOCAL);
				record_write(r.tab, r.newtup, NULL, r.td, now);
			}
		}
		else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
			record_delete(r.tab, r.oldtup, r.td, now, SR_LOCAL);
	}
	SPI_finish();
	sr_cache_leave();
	return PointerGetDatum(rettuple);
}

/* ------------------------------------------------------------------------
 * Writes from a source (BEFORE)
 * ------------------------------------------------------------------------
 */

/* The value a column gets when an INSERT does not give one. */
static Datum
column_default(Relation rel, const SrColumn *col, bool *isnull)
{
	Node	   *expr = build_column_default(rel, col->attnum);
	EState	   *estate;
	ExprState  *es;
	Datum		d;

	if (expr == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	estate = CreateExecutorState();
	es = ExecPrepareExpr((Expr *) expr, estate);
	d = ExecEvalExprSwitchContext(es, GetPerTupleExprContext(estate), isnull);
	if (!*isnull)
		d = datumCopy(d, col->typbyval, col->typlen);
	FreeExecutorState(estate);
	return d;
}

/*
 * Does an INSERT's value for a column equal its default?  An INSERT does
 * not say which columns it named: a value equal to the default is taken as
 * not given (not a write to refuse).
 */
static bool
equals_default(Relation rel, const SrColumn *col, Datum value, bool isnull)
{
	bool		dnull;
	Datum		d = column_default(rel, col, &dnull);

	return sr_datum_equal(col, value, isnull, d, dnull);
}

/* With sync_resolve.enforce_ownership, local may write only its columns. */
static void
enforce_ownership(const SrTable *tab, HeapTuple newtup, HeapTuple oldtup, TupleDesc td)
{
	Relation	rel = NULL;
	int			c;

	for (c = 0; c < tab->ncols; c++)
	{
		const SrColumn *col = &tab->cols[c];
		bool		nn,
					on;
		Datum		nv;
		Datum		ov;

		if (col->is_key || sr_column_writable_by(col, SR_LOCAL))
			continue;
		nv = heap_getattr(newtup, col->attnum, td, &nn);
		if (oldtup == NULL)
		{
			/* a new row may leave it empty, or to its default */
			if (nn)
				continue;
			if (rel == NULL)
				rel = relation_open(tab->relid, NoLock);
			if (equals_default(rel, col, nv, nn))
				continue;
		}
		else
		{
			ov = heap_getattr(oldtup, col->attnum, td, &on);
			if (sr_datum_equal(col, nv, nn, ov, on))
				continue;
		}
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("local may not write column \"%s\" of table %s", col->name, tab->display_name),
				 errdetail("%s", col->owner ? psprintf("The column is owned by %s.", col->owner)
						   : "Its writers do not include local."),
				 errhint("Change it in %s, or SET sync_resolve.source to the system the write comes from.",
						 col->owner ? col->owner : "a system that may write it")));
	}
	if (rel != NULL)
		relation_close(rel, NoLock);
}

/*
 * The columns an apply worker's UPDATE carries: the ones the origin sent,
 * which PostgreSQL marks as the statement's updated columns (an unchanged
 * TOASTed value is not sent, nor a column the origin's table lacks).  NULL:
 * not known, every column counts.
 */
static bool *
sent_columns(const SrTable *tab, TriggerData *trigdata, const SrTrigRow *r)
{
	const Bitmapset *updated = trigdata->tg_updatedcols;
	Oid			relid = RelationGetRelid(trigdata->tg_relation);
	bool	   *sent;
	int			c;

	if (updated == NULL)
		return NULL;
	sent = palloc0(sizeof(bool) * (tab->ncols + 1));
	for (c = 0; c < tab->ncols; c++)
	{
		/* a partition numbers its columns its own way */
		AttrNumber	a = r->back == NULL ? tab->cols[c].attnum
			: get_attnum(relid, tab->cols[c].name);

		sent[c] = a != InvalidAttrNumber &&
			bms_is_member(a - FirstLowInvalidHeapAttributeNumber, updated);
	}
	return sent;
}

/*
 * The image a statement's row gives: all of it, the columns an UPDATE
 * changed, or (sent not NULL: an apply worker's UPDATE) the columns the
 * origin sent, changed or not: what it holds, so that its base here
 * follows it.
 */
static void
trig_image(const SrTable *tab, HeapTuple tup, HeapTuple old, TupleDesc td,
		   const bool *sent, SrImage *img)
{
	Datum	   *oldvals = NULL;
	bool	   *oldnulls = NULL;
	int			c;

	sr_init_image(tab, img);
	tuple_values(tab, tup, td, img->values, img->nulls);
	if (old != NULL && sent == NULL)
	{
		oldvals = palloc(sizeof(Datum) * (tab->ncols + 1));
		oldnulls = palloc(sizeof(bool) * (tab->ncols + 1));
		tuple_values(tab, old, td, oldvals, oldnulls);
	}
	for (c = 0; c < tab->ncols; c++)
	{
		const SrColumn *col = &tab->cols[c];

		if (col->is_key || old == NULL)
			img->present[c] = true;
		else if (sent != NULL)
			img->present[c] = sent[c];
		else
			img->present[c] = !sr_datum_equal(col, img->values[c], img->nulls[c],
											  oldvals[c], oldnulls[c]);
		if (img->present[c] && !col->is_key)
			img->npresent++;
	}
	tuple_keys(tab, tup, td, img->keyvals);
	img->key = sr_build_key(tab, img->keyvals, NULL);
}

/* Does the shadow hold a tombstone for the row? */
static bool
has_tombstone(SrTable *tab, const Datum *keyvals)
{
	SrRowState	st;

	sr_shadow_load(tab, keyvals, &st);
	return st.local.found && st.local.deleted;
}

PG_FUNCTION_INFO_V1(source_write_trigger);
Datum
source_write_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	result;
	const char *source;
	bool		by_replication;
	bool		worker;
	bool		at_commit;
	SrTrigRow	r;
	SrApplyCall call;
	SrApplyResult res;
	SrReviewIds reviews = {0, 0, NULL};
	SrTable    *tab;
	int			c;

	check_trigger(fcinfo, true, "source_write_trigger");
	result = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)
		? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	source = write_source(&by_replication);
	if (source == NULL && !sr_enforce_ownership)
		return PointerGetDatum(result);

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	if (!trig_row(trigdata, &r) || own_write(r.tab, r.newtup ? r.newtup : r.oldtup, r.td, NULL, false))
		goto done;
	tab = r.tab;

	if (source == NULL)
	{
		if (!TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
			enforce_ownership(tab, r.newtup ? r.newtup : r.oldtup, r.newtup ? r.oldtup : NULL, r.td);
		goto done;
	}

	/*
	 * An apply worker's writes: the origin's row as sent, in order, timed at
	 * commit (but in a subtransaction, or in a session that set up an origin
	 * itself: then at once, by the clock).
	 */
	worker = by_replication && IsLogicalWorker();
	at_commit = worker && sr_hold_until_commit();
	sr_init_call(&call, tab, source);
	call.in_order = by_replication;
	memset(&res, 0, sizeof(res));

	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		Datum	   *oldvals = palloc(sizeof(Datum) * (tab->ncols + 1));
		bool	   *oldnulls = palloc(sizeof(bool) * (tab->ncols + 1));
		Datum	   *keyvals = palloc(sizeof(Datum) * (tab->nkeys + 1));

		tuple_values(tab, r.oldtup, r.td, oldvals, oldnulls);
		tuple_keys(tab, r.oldtup, r.td, keyvals);
		call.payload = sr_build_key(tab, keyvals, NULL);
		call.rewrite = true;
		call.old_values = oldvals;
		call.old_nulls = oldnulls;
		sr_apply_delete_image(&call, &res, &reviews);
		result = call.out_write ? trigdata->tg_trigtuple : NULL;
		/* the row goes: what was held for it goes too */
		if (call.out_write && by_replication)
			sr_hold_drop(tab, source, call.payload);
	}
	else
	{
		SrImage		img;
		bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
		HeapTuple	tup = is_insert ? r.oldtup : r.newtup;

		if (!is_insert && !keys_equal(tab, r.oldtup, r.newtup, r.td))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("system \"%s\" cannot change the primary key of a row of table %s",
							source, tab->display_name),
					 errhint("Delete the row and insert it with its new key.")));
		trig_image(tab, tup, is_insert ? NULL : r.oldtup, r.td,
				   worker && !is_insert ? sent_columns(tab, trigdata, &r) : NULL, &img);
		if (is_insert)
		{
			Relation	rel = relation_open(tab->relid, NoLock);

			for (c = 0; c < tab->ncols; c++)
			{
				const SrColumn *col = &tab->cols[c];

				if (!col->is_key && !sr_column_writable_by(col, call.source) &&
					equals_default(rel, col, img.values[c], img.nulls[c]))
				{
					img.present[c] = false;
					img.npresent--;
				}
			}
			relation_close(rel, NoLock);
		}
		call.payload = sr_row_object(tab, img.values, img.nulls, img.present);
		call.out_values = palloc(sizeof(Datum) * (tab->ncols + 1));
		call.out_nulls = palloc(sizeof(bool) * (tab->ncols + 1));
		call.out_take = palloc0(sizeof(bool) * (tab->ncols + 1));
		if (is_insert)
		{
			/* a key the table has already: an image of that row, the INSERT skipped */
			if (sr_lock_row_or_key(tab, img.keyvals, img.key, false, NULL, NULL))
			{
				if (at_commit)
					sr_hold_image(tab, source, &img);
				else
					sr_apply_image(&call, &img, &res, &reviews);
				result = NULL;
				goto done;
			}
			if (at_commit && has_tombstone(tab, img.keyvals))
			{
				/* a row deleted here: the origin's time decides, or it is a relay */
				sr_hold_image(tab, source, &img);
				result = NULL;
				goto done;
			}
			if (at_commit && tab->other_unique)
			{
				/* written here; refused, it waits for the transaction's other rows */
				if (sr_try_apply_image(&call, &img, &res, &reviews, NULL))
					sr_hold_retime(tab, source, img.key, call.received_at);
				else
					sr_hold_image(tab, source, &img);
				result = NULL;
				goto done;
			}
			if (tab->other_unique && !call.in_order &&
				unique_clash(trigdata->tg_relation, trigdata->tg_trigtuple))
			{
				/*
				 * Another row has one of its unique values: written as
				 * apply() writes it, the refusal goes to review, and the
				 * statement inserts nothing.
				 */
				sr_apply_image(&call, &img, &res, &reviews);
				result = NULL;
				goto done;
			}
			call.rewrite = true;
		}
		else if (at_commit)
		{
			/* decided at commit, when the origin's commit time is known */
			sr_hold_image(tab, source, &img);
			result = NULL;
			goto done;
		}
		else
		{
			Datum	   *oldvals = palloc(sizeof(Datum) * (tab->ncols + 1));
			bool	   *oldnulls = palloc(sizeof(bool) * (tab->ncols + 1));

			tuple_values(tab, r.oldtup, r.td, oldvals, oldnulls);
			call.rewrite = true;
			call.old_values = oldvals;
			call.old_nulls = oldnulls;
		}
		sr_apply_image(&call, &img, &res, &reviews);
		if (!call.out_write)
			result = NULL;
		else
		{
			/* NEW as decided: taken columns, and defaults for the others */
			int		   *attnums = palloc(sizeof(int) * (tab->ncols + 1));
			Relation	rel = relation_open(tab->relid, NoLock);

			/* a new row: its times become the origin's commit time */
			if (at_commit && is_insert)
				sr_hold_retime(tab, source, img.key, call.received_at);

			for (c = 0; c < tab->ncols; c++)
			{
				attnums[c] = tab->cols[c].attnum;
				if (!call.out_take[c])
					call.out_values[c] = column_default(rel, &tab->cols[c], &call.out_nulls[c]);
			}
			relation_close(rel, NoLock);
			result = heap_modify_tuple_by_cols(tup, r.td, tab->ncols, attnums,
											   call.out_values, call.out_nulls);
			result = trig_back(&r, result);
		}
	}

done:
	/* a tuple made here lives in SPI's memory: the executor gets a copy */
	if (result != NULL && result != trigdata->tg_trigtuple && result != trigdata->tg_newtuple)
		result = SPI_copytuple(result);
	SPI_finish();
	sr_cache_leave();
	return PointerGetDatum(result);
}
