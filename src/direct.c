/*-------------------------------------------------------------------------
 *
 * direct.c
 *		Writes to sync_resolve's own append-mostly tables (the history, the
 *		outbox) through the executor's tuple and index routines instead of
 *		SQL statements.
 *
 * Every apply() and every local write to a tracked table adds history rows
 * and queues outbox entries.  Run as INSERT statements, each costs an
 * executor start and end, a plan check and a snapshot: more than the row
 * itself.  These tables are the extension's own and their statements are
 * fixed, so the rows are formed here and written the way logical
 * replication's apply worker writes them (ExecSimpleRelationInsert/Update),
 * with the constraints, indexes and column defaults of the table as it is.
 *
 * An upsert (the outbox: at most one entry per row and target waits) is
 * the executor's ON CONFLICT protocol: check the arbiter index, insert
 * speculatively, and on a conflict lock the existing row and update it,
 * retrying after a concurrent change, with the same errors as ON CONFLICT
 * DO UPDATE under REPEATABLE READ and SERIALIZABLE.
 *
 * When the table was changed in a way this code would not honour -- a
 * trigger or rule on writing it, row level security, a column of another
 * type or one it does not know -- sr_direct_begin() says no and the caller
 * writes through SQL instead.  The layout (attribute numbers, planned
 * column defaults) is cached per table in CacheMemoryContext and dropped
 * by a relcache callback on the table.
 *
 * Writes run as the extension owner, as the SQL they replace did, and end
 * with CommandCounterIncrement() so that the statements after them see
 * them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "sync_resolve.h"

#define GIVEN_NOT		0
#define GIVEN_VALUE		1
#define GIVEN_DEFAULT	2

static SrDirectTable *registered = NULL;
static bool callback_registered = false;

/*
 * Drop t's layout.  A write under way may still use it (an invalidation
 * can arrive while it opens a sequence or an index): inside a transaction
 * the memory goes when the transaction ends.
 */
static void
forget_layout(SrDirectTable *t)
{
	if (t->cxt != NULL)
	{
		if (IsTransactionState())
			MemoryContextSetParent(t->cxt, TopTransactionContext);
		else
			MemoryContextDelete(t->cxt);
	}
	t->cxt = NULL;
	t->valid = false;
	t->usable = false;
	t->attnums = NULL;
	t->colof = NULL;
	t->defaults = NULL;
}

static void
direct_relcache_callback(Datum arg, Oid relid)
{
	SrDirectTable *t;

	for (t = registered; t != NULL; t = t->next)
		if (t->valid && (!OidIsValid(relid) || relid == t->relid))
			forget_layout(t);
}

/* The type a column of t must have. */
static Oid
expected_type(const SrDirectColumn *col)
{
	if (col->sr_type == NULL)
		return col->type;
	return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
						   CStringGetDatum(col->sr_type),
						   ObjectIdGetDatum(get_namespace_oid(SR_SCHEMA, false)));
}

/*
 * Learn t's layout from its relation: where each known column is, the
 * planned default of every attribute, and whether direct writes are safe.
 */
static void
load_layout(SrDirectTable *t, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old;
	int			i;
	AttrNumber	a;

	forget_layout(t);
	t->cxt = AllocSetContextCreate(CacheMemoryContext, "sync_resolve direct layout",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(t->cxt);
	t->relid = RelationGetRelid(rel);
	t->natts = desc->natts;
	t->attnums = palloc0(sizeof(AttrNumber) * t->ncols);
	t->colof = palloc(sizeof(int) * desc->natts);
	t->defaults = palloc0(sizeof(Expr *) * desc->natts);
	t->usable = rel->rd_rel->relkind == RELKIND_RELATION &&
		!rel->rd_rel->relrowsecurity && rel->rd_rules == NULL &&
		!(desc->constr != NULL && desc->constr->has_generated_stored);
	/* triggers on what we do (an upsert also updates) would not fire */
	if (rel->trigdesc != NULL)
	{
		TriggerDesc *trig = rel->trigdesc;

		if (trig->trig_insert_before_row || trig->trig_insert_after_row ||
			trig->trig_insert_instead_row || trig->trig_insert_before_statement ||
			trig->trig_insert_after_statement)
			t->usable = false;
		if (t->arbiter != NULL &&
			(trig->trig_update_before_row || trig->trig_update_after_row ||
			 trig->trig_update_instead_row || trig->trig_update_before_statement ||
			 trig->trig_update_after_statement))
			t->usable = false;
	}
	for (a = 1; a <= desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a - 1);

		t->colof[a - 1] = -1;
		if (att->attisdropped)
			continue;
		for (i = 0; i < t->ncols; i++)
		{
			if (strcmp(NameStr(att->attname), t->cols[i].name) == 0)
			{
				t->colof[a - 1] = i;
				t->attnums[i] = a;
				if (att->atttypid != expected_type(&t->cols[i]))
					t->usable = false;
			}
		}
		if (t->colof[a - 1] < 0)
			t->usable = false;	/* a column added since: SQL gives it its default */
		if (att->atthasdef || att->attidentity)
		{
			Node	   *def = build_column_default(rel, a);

			if (def != NULL)
				t->defaults[a - 1] = expression_planner((Expr *) def);
		}
	}
	for (i = 0; i < t->ncols; i++)
		if (t->attnums[i] == 0)
			t->usable = false;
	t->arbiter_oid = InvalidOid;
	if (t->arbiter != NULL)
	{
		t->arbiter_oid = get_relname_relid(t->arbiter, RelationGetNamespace(rel));
		if (!OidIsValid(t->arbiter_oid))
			t->usable = false;
	}
	MemoryContextSwitchTo(old);
	t->valid = true;
}

/*
 * Start writing to t: false if its rows must be written through SQL.
 * Runs as the extension owner until sr_direct_end().
 */
bool
sr_direct_begin(SrDirect *d, SrDirectTable *t)
{
	Relation	rel;
	RangeTblEntry *rte;
	MemoryContext old;
	Expr	  **exprs;
	Oid			arbiter;
	int			i;

	if (!t->registered)
	{
		if (!callback_registered)
		{
			CacheRegisterRelcacheCallback(direct_relcache_callback, (Datum) 0);
			callback_registered = true;
		}
		t->next = registered;
		registered = t;
		t->registered = true;
	}
	if (t->valid && !t->usable)
		return false;
	if (!t->valid)
		t->relid = sr_internal_relid(t->relname);
	rel = table_open(t->relid, RowExclusiveLock);
	if (!t->valid)
		load_layout(t, rel);
	if (!t->usable)
	{
		table_close(rel, RowExclusiveLock);
		return false;
	}

	/*
	 * Take the layout now: an invalidation may drop it from t while this
	 * write opens indexes or sequences, but its memory stays until the
	 * transaction ends.
	 */
	memset(d, 0, sizeof(SrDirect));
	d->tab = t;
	d->rel = rel;
	d->natts = t->natts;
	d->attnums = t->attnums;
	d->colof = t->colof;
	exprs = t->defaults;
	arbiter = t->arbiter_oid;
	sr_become_owner(&d->sw);
	d->estate = CreateExecutorState();
	/* what follows goes with the executor state */
	old = MemoryContextSwitchTo(d->estate->es_query_cxt);
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = t->relid;
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(d->estate, list_make1(rte));
	d->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(d->rri, rel, 1, NULL, 0);
	ExecOpenIndices(d->rri, OidIsValid(arbiter));
	d->estate->es_output_cid = GetCurrentCommandId(true);
	d->estate->es_snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : InvalidSnapshot;
	d->slot = ExecInitExtraTupleSlot(d->estate, RelationGetDescr(rel), &TTSOpsVirtual);
	d->existing = table_slot_create(rel, &d->estate->es_tupleTable);
	d->arbiter_oid = arbiter;
	d->defaults = palloc0(sizeof(ExprState *) * d->natts);
	for (i = 0; i < d->natts; i++)
		if (exprs[i] != NULL)
			d->defaults[i] = ExecInitExpr(exprs[i], NULL);
	d->values = palloc0(sizeof(Datum) * t->ncols);
	d->isnull = palloc0(sizeof(bool) * t->ncols);
	d->given = palloc0(sizeof(char) * t->ncols);
	MemoryContextSwitchTo(old);
	return true;
}

/* Give column col (an index into the table's cols) a value for the next write. */
void
sr_direct_set(SrDirect *d, int col, Datum value, bool isnull)
{
	d->values[col] = value;
	d->isnull[col] = isnull;
	d->given[col] = GIVEN_VALUE;
}

/* Forget the values given so far. */
void
sr_direct_clear(SrDirect *d)
{
	memset(d->given, GIVEN_NOT, d->tab->ncols);
}

/* Give column col its default (a new sequence value, now(), ...) on the next write. */
void
sr_direct_set_default(SrDirect *d, int col)
{
	d->given[col] = GIVEN_DEFAULT;
}

/* The value column col has in slot (after a write, in d->slot; a found row, d->existing). */
Datum
sr_direct_get(SrDirect *d, TupleTableSlot *slot, int col, bool *isnull)
{
	return slot_getattr(slot, d->attnums[col], isnull);
}

static void
eval_default(SrDirect *d, TupleTableSlot *slot, int attno)
{
	ExprContext *econtext = GetPerTupleExprContext(d->estate);

	if (d->defaults[attno] == NULL)
	{
		slot->tts_values[attno] = (Datum) 0;
		slot->tts_isnull[attno] = true;
		return;
	}
	slot->tts_values[attno] = ExecEvalExprSwitchContext(d->defaults[attno], econtext,
														&slot->tts_isnull[attno]);
}

/*
 * Form the row to write in d->slot: each attribute its given value, or its
 * default if so asked, else existing's value (an update) or its default
 * (an insert).
 */
static void
form_row(SrDirect *d, TupleTableSlot *existing)
{
	TupleTableSlot *slot = d->slot;
	int			i;

	ExecClearTuple(slot);
	ResetPerTupleExprContext(d->estate);
	if (existing != NULL)
		slot_getallattrs(existing);
	for (i = 0; i < d->natts; i++)
	{
		int			c = d->colof[i];
		char		given = c >= 0 ? d->given[c] : GIVEN_NOT;

		if (given == GIVEN_VALUE)
		{
			slot->tts_values[i] = d->values[c];
			slot->tts_isnull[i] = d->isnull[c];
		}
		else if (given == GIVEN_DEFAULT || existing == NULL)
			eval_default(d, slot, i);
		else
		{
			slot->tts_values[i] = existing->tts_values[i];
			slot->tts_isnull[i] = existing->tts_isnull[i];
		}
	}
	ExecStoreVirtualTuple(slot);
}

/* Insert a row of the given values (the rest their defaults). */
void
sr_direct_insert(SrDirect *d)
{
	form_row(d, NULL);
	ExecSimpleRelationInsert(d->rri, d->estate, d->slot);
	sr_direct_clear(d);
}

/*
 * Lock the row at tid that conflicts with the one to be inserted, as ON
 * CONFLICT DO UPDATE does: true and the row in d->existing, or false if it
 * changed meanwhile (look again).
 */
static bool
lock_conflicting(SrDirect *d, ItemPointer tid)
{
	TM_FailureData tmfd;
	TM_Result	res;

	res = table_tuple_lock(d->rel, tid, d->estate->es_snapshot, d->existing,
						   d->estate->es_output_cid, LockTupleNoKeyExclusive,
						   LockWaitBlock, 0, &tmfd);
	switch (res)
	{
		case TM_Ok:
			break;
		case TM_Updated:
		case TM_Deleted:
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent %s",
								res == TM_Updated ? "update" : "delete")));
			ExecClearTuple(d->existing);
			return false;
		default:
			elog(ERROR, "sync_resolve: unexpected result %d locking a row of %s",
				 (int) res, RelationGetRelationName(d->rel));
	}
	/* under REPEATABLE READ, a row this transaction cannot see is a serialization failure */
	if (IsolationUsesXactSnapshot() &&
		!table_tuple_satisfies_snapshot(d->rel, d->existing, d->estate->es_snapshot))
	{
		bool		isnull;
		TransactionId xmin;
		Datum		x = slot_getsysattr(d->existing, MinTransactionIdAttributeNumber, &isnull);

		xmin = DatumGetTransactionId(x);
		if (!TransactionIdIsCurrentTransactionId(xmin))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
	}
	return true;
}

/*
 * Insert a row of the given values, unless the table's arbiter index holds
 * one with the same key: then that row is locked and returned in
 * d->existing (NULL: inserted).  The caller may sr_direct_set() more values
 * and sr_direct_update() it.
 */
TupleTableSlot *
sr_direct_insert_or_lock(SrDirect *d)
{
	List	   *arbiters = list_make1_oid(d->arbiter_oid);
	TransactionId xid = GetCurrentTransactionId();

	for (;;)
	{
		ItemPointerData conflict;
		uint32		token;
		bool		spec_conflict = false;
		List	   *recheck;

		form_row(d, NULL);
		if (!ExecCheckIndexConstraints(d->rri, d->slot, d->estate, &conflict, arbiters))
		{
			if (lock_conflicting(d, &conflict))
				return d->existing;
			continue;
		}
		ExecConstraints(d->rri, d->slot, d->estate);
		token = SpeculativeInsertionLockAcquire(xid);
		table_tuple_insert_speculative(d->rel, d->slot, d->estate->es_output_cid, 0, NULL, token);
		recheck = ExecInsertIndexTuples(d->rri, d->slot, d->estate, false, true,
										&spec_conflict, arbiters);
		table_tuple_complete_speculative(d->rel, d->slot, token, !spec_conflict);
		SpeculativeInsertionLockRelease(xid);
		list_free(recheck);
		if (!spec_conflict)
		{
			sr_direct_clear(d);
			return NULL;
		}
		/* someone inserted the same key meanwhile: look again */
	}
}

/* Update d->existing (locked) with the given values. */
void
sr_direct_update(SrDirect *d)
{
	form_row(d, d->existing);
	ExecSimpleRelationUpdate(d->rri, d->estate, NULL, d->existing, d->slot);
	sr_direct_clear(d);
}

/* Finish: release what begin took and let later statements see the rows. */
void
sr_direct_end(SrDirect *d)
{
	ExecCloseIndices(d->rri);
	ExecResetTupleTable(d->estate->es_tupleTable, false);
	FreeExecutorState(d->estate);
	table_close(d->rel, NoLock);
	sr_restore_user(&d->sw);
	CommandCounterIncrement();
}
