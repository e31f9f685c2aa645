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
 * speculatively, and on a conflict update the existing row, with the same
 * errors as ON CONFLICT DO UPDATE under REPEATABLE READ and SERIALIZABLE.
 * The existing row is not locked first (a lock is a WAL record of its
 * own): its update fails if it changed since it was read, and the caller
 * merges into what is there then.  Defaults other than the arbiter's
 * columns are computed only for a row that is inserted.
 *
 * apply()'s UPDATE of a tracked row can go the same way
 * (sr_direct_update_row()), where the caller made sure that nothing else an
 * UPDATE statement would do applies to the table.
 *
 * A tracked table's shadow is read by key through its primary key and
 * written the same way; a row this transaction read and that is still
 * current is updated in place (sr_direct_update_tid), for callers whose own
 * lock already keeps other writers of that row out.
 *
 * When the table was changed in a way this code would not honour -- a
 * trigger or rule on writing it, row level security, a column of another
 * type or one it does not know -- sr_direct_begin() says no and the caller
 * writes through SQL instead.  The layout (attribute numbers, planned
 * column defaults, and the defaults, index expressions and predicates
 * compiled by the first write that needed them) is cached per table in
 * CacheMemoryContext and dropped by a relcache callback on the table (the
 * compiled states alone after any change to a function: claim_states());
 * a shadow's is part of its table's SrTable, which any change to the
 * shadow drops.
 *
 * Writes run as the extension owner, as the SQL they replace did (a
 * tracked row's update as the caller, as its UPDATE did), and end with
 * CommandCounterIncrement() so that the statements after them see them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
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

/*
 * An index's expressions and predicate, compiled once for the writes that
 * claim the table's states (claim_states()).
 */
typedef struct SrIndexStates
{
	bool		ready;
	List	   *exprs;			/* ii_ExpressionsState */
	ExprState  *pred;			/* ii_PredicateState */
} SrIndexStates;

static SrDirectTable *registered = NULL;
static bool callback_registered = false;
/* counts changes to functions: states compiled before the last one go */
static uint64 function_changes = 0;

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
	t->checkatt = NULL;
	t->arbiter_eq = NULL;
	t->narbiter = 0;
	t->nindexes = 0;
	t->index_oids = NULL;
	t->index_infos = NULL;
	t->index_private = NULL;
	t->default_private = NULL;
	t->default_unplanned = NULL;
	t->states_cxt = NULL;		/* t->cxt's child */
	t->default_states = NULL;
	t->index_states = NULL;
	t->claim_subid = InvalidSubTransactionId;
}

static void
direct_relcache_callback(Datum arg, Oid relid)
{
	SrDirectTable *t;

	for (t = registered; t != NULL; t = t->next)
		if (t->valid && (!OidIsValid(relid) || relid == t->relid))
			forget_layout(t);
}

/*
 * A function changed (replaced, or its privileges): compiled states may
 * call it as it was, or hold a permission checked when they were
 * compiled.  Each table's go the next time a write claims them
 * (claim_states()), shadows' included, and nothing else of its layout.
 */
static void
direct_function_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	function_changes++;
}

static bool load_arbiter(SrDirectTable *t);
static MemoryContext compile_begin(SrDirect *d, bool keep);
static void compile_end(SrDirect *d, bool keep, MemoryContext old);

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
 * Whether function fn is one of PostgreSQL's own, written in C (internal):
 * a SQL function keeps its plans for a transaction, which a state kept
 * longer would carry into the next statements of that transaction, and a
 * user's C function may keep what it looked up for one statement.
 */
static bool
built_in(Oid fn)
{
	HeapTuple	tup;
	bool		internal;

	if (fn >= FirstGenbkiObjectId)
		return false;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tup))
		return false;
	internal = ((Form_pg_proc) GETSTRUCT(tup))->prolang == INTERNALlanguageId;
	ReleaseSysCache(tup);
	return internal;
}

static bool
per_write_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	switch (nodeTag(node))
	{
		case T_Var:
			if (((Var *) node)->varattno <= 0)
				return true;	/* the whole row, or a system column */
			break;
		case T_FuncExpr:
			if (((FuncExpr *) node)->funcretset || !built_in(((FuncExpr *) node)->funcid))
				return true;
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			if (!built_in(((OpExpr *) node)->opfuncid))
				return true;
			break;
		case T_ScalarArrayOpExpr:
			if (OidIsValid(((ScalarArrayOpExpr *) node)->hashfuncid) ||
				!built_in(((ScalarArrayOpExpr *) node)->opfuncid))
				return true;	/* a hash table is built by the first evaluation */
			break;
		case T_CoerceViaIO:
			{
				CoerceViaIO *io = (CoerceViaIO *) node;
				Oid			out;
				Oid			in;
				Oid			ioparam;
				bool		varlena;

				getTypeOutputInfo(exprType((Node *) io->arg), &out, &varlena);
				getTypeInputInfo(io->resulttype, &in, &ioparam);
				if (!built_in(out) || !built_in(in))
					return true;
			}
			break;
		case T_List:
		case T_Const:
		case T_BoolExpr:
		case T_RelabelType:
		case T_NextValueExpr:
		case T_SQLValueFunction:
		case T_CaseExpr:
		case T_CaseWhen:
		case T_CaseTestExpr:
		case T_CoalesceExpr:
		case T_NullTest:
		case T_BooleanTest:
		case T_ArrayExpr:
			break;
		default:
			return true;
	}
	return expression_tree_walker(node, per_write_walker, context);
}

/*
 * Whether each write must compile a (planned) default, index expression
 * or predicate of its own, as the executor does every statement, rather
 * than use the one compiled by the first write that needed it.  Kept
 * compiled are the expressions of nodes whose compiled state holds
 * nothing the first evaluation makes, calling only PostgreSQL's own C
 * functions: not a domain check (it keeps the constraints the domain had
 * then, and nothing tells the layout when they change), not a whole row
 * (its first evaluation keeps the row's descriptor in the memory of its
 * write), and no node not listed above.
 */
static bool
per_write(Node *node)
{
	return per_write_walker(node, NULL);
}

static bool
domain_check_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, CoerceToDomain))
		return true;
	return expression_tree_walker(node, domain_check_walker, context);
}

/*
 * Attribute att's default, as the executor would run it: planned.  But
 * planning drops the check of a domain that has no constraints now, and
 * the layout outlives that: a constraint added to the domain later
 * changes nothing in the table, so nothing would tell the layout.  A
 * default that is a domain's check keeps it over its planned argument;
 * one with a check inside is planned by each write.  Both are compiled by
 * each write, which checks the domain's constraints as they are then.
 */
static void
learn_default(SrDirectTable *t, int att, Node *def)
{
	if (IsA(def, CoerceToDomain))
	{
		CoerceToDomain *check = (CoerceToDomain *) def;

		check->arg = expression_planner(check->arg);
		t->defaults[att] = (Expr *) check;
		t->default_private[att] = true;
	}
	else if (domain_check_walker(def, NULL))
	{
		t->defaults[att] = (Expr *) def;
		t->default_unplanned[att] = true;
		t->default_private[att] = true;
	}
	else
	{
		t->defaults[att] = expression_planner((Expr *) def);
		t->default_private[att] = per_write((Node *) t->defaults[att]);
	}
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
	t->cxt = AllocSetContextCreate(t->owner_cxt != NULL ? t->owner_cxt : CacheMemoryContext,
								   "sync_resolve direct layout", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(t->cxt);
	t->relid = RelationGetRelid(rel);
	t->natts = desc->natts;
	t->attnums = palloc0(sizeof(AttrNumber) * t->ncols);
	t->colof = palloc(sizeof(int) * desc->natts);
	t->defaults = palloc0(sizeof(Expr *) * desc->natts);
	t->default_private = palloc0(sizeof(bool) * desc->natts);
	t->default_unplanned = palloc0(sizeof(bool) * desc->natts);
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
				learn_default(t, a - 1, def);
		}
	}
	for (i = 0; i < t->ncols; i++)
		if (t->attnums[i] == 0)
			t->usable = false;
	t->arbiter_oid = InvalidOid;
	if (t->arbiter_pkey)
		t->arbiter_oid = RelationGetPrimaryKeyIndex(rel);
	else if (t->arbiter != NULL)
		t->arbiter_oid = get_relname_relid(t->arbiter, RelationGetNamespace(rel));
	if ((t->arbiter_pkey || t->arbiter != NULL) && !load_arbiter(t))
		t->usable = false;
	MemoryContextSwitchTo(old);
	t->valid = true;
}

/*
 * The equality functions of a btree index's key columns, in eq[] (room
 * for all of them), a column or an expression: false if it is not a btree
 * index.
 */
bool
sr_index_eq_procs(Relation index, RegProcedure *eq)
{
	int			n = IndexRelationGetNumberOfKeyAttributes(index);
	int			i;

	if (index->rd_rel->relam != BTREE_AM_OID)
		return false;
	for (i = 0; i < n; i++)
	{
		Oid			opr = get_opfamily_member(index->rd_opfamily[i], index->rd_opcintype[i],
											  index->rd_opcintype[i], BTEqualStrategyNumber);

		if (!OidIsValid(opr))
			return false;
		eq[i] = get_opcode(opr);
	}
	return true;
}

/* Learn the arbiter's key columns and their equality functions, for reads by key. */
static bool
load_arbiter(SrDirectTable *t)
{
	Relation	index;
	bool		ok;
	Bitmapset  *used = NULL;
	int			i;

	if (!OidIsValid(t->arbiter_oid))
		return false;
	index = index_open(t->arbiter_oid, AccessShareLock);
	t->narbiter = IndexRelationGetNumberOfKeyAttributes(index);
	t->arbiter_eq = palloc0(sizeof(RegProcedure) * t->narbiter);
	ok = sr_index_eq_procs(index, t->arbiter_eq);
	/*
	 * A read passes its key values by the layout its caller knows: an index
	 * of another layout (an install older than this library) would compare
	 * them as values of other types.  SQL then says what does not match.
	 */
	if (t->arbiter_types != NULL)
	{
		ok &= t->narbiter == t->narbiter_types;
		for (i = 0; ok && i < t->narbiter; i++)
			ok = index->rd_opcintype[i] == t->arbiter_types[i];
	}
	/* the attributes a conflict check reads: the key's and the predicate's */
	t->checkatt = palloc0(sizeof(bool) * t->natts);
	for (i = 0; i < IndexRelationGetNumberOfAttributes(index); i++)
	{
		AttrNumber	a = index->rd_index->indkey.values[i];

		if (a > 0 && a <= t->natts)
			t->checkatt[a - 1] = true;
	}
	pull_varattnos((Node *) RelationGetIndexPredicate(index), 1, &used);
	pull_varattnos((Node *) RelationGetIndexExpressions(index), 1, &used);
	i = -1;
	while ((i = bms_next_member(used, i)) >= 0)
	{
		AttrNumber	a = i + FirstLowInvalidHeapAttributeNumber;

		if (a > 0 && a <= t->natts)
			t->checkatt[a - 1] = true;
	}
	index_close(index, AccessShareLock);
	return ok;
}

/*
 * Open t, learning its layout on first use: NULL if it must be read and
 * written through SQL.
 */
static Relation
open_table(SrDirectTable *t, LOCKMODE lockmode)
{
	Relation	rel;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(direct_relcache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(PROCOID, direct_function_callback, (Datum) 0);
		callback_registered = true;
	}
	if (!t->registered && t->owner_cxt == NULL)
	{
		t->next = registered;
		registered = t;
		t->registered = true;
	}
	if (t->valid && !t->usable)
		return NULL;
	if (!t->valid && t->owner_cxt == NULL)
		t->relid = sr_internal_relid(t->relname);
	rel = table_open(t->relid, lockmode);
	if (!t->valid)
		load_layout(t, rel);
	if (!t->usable)
	{
		table_close(rel, lockmode);
		return NULL;
	}
	return rel;
}

/*
 * An executor state for writing rel, as its only result relation (*rri;
 * its indexes not opened), with the current command id.
 */
static EState *
write_state(Relation rel, ResultRelInfo **rri)
{
	EState	   *estate = CreateExecutorState();
	MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(estate, list_make1(rte));
	*rri = makeNode(ResultRelInfo);
	InitResultRelInfo(*rri, rel, 1, NULL, 0);
	estate->es_output_cid = GetCurrentCommandId(true);
	MemoryContextSwitchTo(old);
	return estate;
}

/* Open rri's indexes, in estate's memory (speculative: for ON CONFLICT). */
static void
open_result_indices(EState *estate, ResultRelInfo *rri, bool speculative)
{
	MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);

	ExecOpenIndices(rri, speculative);
	MemoryContextSwitchTo(old);
}

/*
 * Close the indexes a write opened, keeping their locks to the end of the
 * transaction as the table's are kept (ExecCloseIndices() releases them).
 * One apply() writes to the same tables several times, and apply_batch()
 * once per row: each write would otherwise take and release every index's
 * lock again.
 */
static void
close_result_indices(ResultRelInfo *rri)
{
	int			i;

	for (i = 0; i < rri->ri_NumIndices; i++)
	{
		if (rri->ri_IndexRelationDescs[i] == NULL)
			continue;
		index_close(rri->ri_IndexRelationDescs[i], NoLock);
		rri->ri_IndexRelationDescs[i] = NULL;
	}
	rri->ri_NumIndices = 0;
}

/*
 * Whether a write beginning now may use the expression states t keeps
 * compiled (column defaults, index expressions and predicates) and claim
 * them until it ends.  Compiling them is a good part of a write of one
 * row: an outbox entry has seven defaults and five indexes.  They are
 * kept with the layout, in a memory context of their own, and go with it.
 * An ExprState is not reentrant, so one write at a time uses them:
 * another write to t nested inside this one (a default or an index
 * expression calling a function that writes t) compiles its own, as every
 * write did before.  A claim ends with its write, or with the
 * subtransaction it was taken in if that write ended by an error: such a
 * claim is stale and is taken over.  States compiled before a function
 * changed are dropped here, where no write uses them, and compiled again.
 */
static bool
claim_states(SrDirectTable *t)
{
	if (t->claim_subid != InvalidSubTransactionId &&
		t->claim_lxid == MyProc->lxid && SubTransactionIsActive(t->claim_subid))
		return false;
	if (t->states_cxt != NULL && t->states_changes != function_changes)
	{
		MemoryContextDelete(t->states_cxt);
		t->states_cxt = NULL;
	}
	if (t->states_cxt == NULL)
	{
		t->states_cxt = AllocSetContextCreate(t->cxt, "sync_resolve direct states",
											  ALLOCSET_SMALL_SIZES);
		t->states_changes = function_changes;
		t->default_states = MemoryContextAllocZero(t->states_cxt, sizeof(ExprState *) * t->natts);
		t->index_states = NULL;
	}
	t->claim_lxid = MyProc->lxid;
	t->claim_subid = GetCurrentSubTransactionId();
	return true;
}

/*
 * Start writing to t: false if its rows must be written through SQL.
 * Runs as the extension owner until sr_direct_end().
 */
bool
sr_direct_begin(SrDirect *d, SrDirectTable *t)
{
	Relation	rel;
	MemoryContext old;
	Expr	  **exprs;
	Oid			arbiter;

	rel = open_table(t, RowExclusiveLock);
	if (rel == NULL)
		return false;

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
	d->checkatt = t->checkatt;
	exprs = t->defaults;
	arbiter = t->arbiter_oid;
	d->default_private = t->default_private;
	d->default_unplanned = t->default_unplanned;
	d->own_states = claim_states(t);
	if (d->own_states)
	{
		d->states_cxt = t->states_cxt;
		d->default_states = t->default_states;
	}
	sr_become_owner(&d->sw);
	/* the indexes are opened by the first write that needs them */
	d->estate = write_state(rel, &d->rri);
	/* what follows goes with the executor state */
	old = MemoryContextSwitchTo(d->estate->es_query_cxt);
	d->estate->es_snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : InvalidSnapshot;
	d->slot = ExecInitExtraTupleSlot(d->estate, RelationGetDescr(rel), &TTSOpsVirtual);
	d->existing = table_slot_create(rel, &d->estate->es_tupleTable);
	d->arbiter_oid = arbiter;
	/* a default is made ready to run by the first row that needs it */
	d->default_exprs = exprs;
	d->defaults = palloc0(sizeof(ExprState *) * d->natts);
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

/*
 * Learn what BuildIndexInfo() says of each of t's indexes (oids, in
 * RelationGetIndexList()'s order), with what an ON CONFLICT check needs
 * of its unique ones when t has an arbiter, into t's layout memory: in
 * *ixoids and *infos (*n of them), with whether each write must compile
 * their expressions itself in *private, and in t for later writes.  Opening an
 * index or reading a catalog may take an invalidation that drops t's
 * layout meanwhile: its memory stays to the transaction's end, so that
 * this write can still use what it learnt, but t keeps none of it.
 */
static void
learn_indices(SrDirectTable *t, List *oids, int *n, Oid **ixoids, IndexInfo ***infos,
			  bool **private)
{
	MemoryContext cxt = t->cxt;
	ListCell   *lc;
	int			i = 0;

	*ixoids = MemoryContextAlloc(cxt, sizeof(Oid) * (list_length(oids) + 1));
	*infos = MemoryContextAlloc(cxt, sizeof(IndexInfo *) * (list_length(oids) + 1));
	*private = MemoryContextAlloc(cxt, sizeof(bool) * (list_length(oids) + 1));
	foreach(lc, oids)
	{
		Relation	index = index_open(lfirst_oid(lc), RowExclusiveLock);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		IndexInfo  *ii = BuildIndexInfo(index);

		if (OidIsValid(t->arbiter_oid) && ii->ii_Unique)
			BuildSpeculativeIndexInfo(index, ii);
		/* planned as ExecPrepareExpr() and ExecPrepareQual() plan them */
		ii->ii_Expressions = (List *) expression_planner((Expr *) ii->ii_Expressions);
		ii->ii_Predicate = (List *) expression_planner((Expr *) ii->ii_Predicate);
		(*private)[i] = per_write((Node *) ii->ii_Expressions) ||
			per_write((Node *) ii->ii_Predicate);
		MemoryContextSwitchTo(old);
		(*ixoids)[i] = lfirst_oid(lc);
		(*infos)[i++] = ii;
		index_close(index, NoLock);
	}
	*n = i;
	if (t->cxt == cxt)
	{
		t->index_oids = *ixoids;
		t->index_infos = *infos;
		t->index_private = *private;
		t->nindexes = i;
		t->index_states = NULL; /* compiled for the indexes known before */
	}
}

/*
 * Open the indexes of d's table as ExecOpenIndices() does, from what the
 * first write to open them learnt: BuildIndexInfo() reads the catalogs and
 * copies each index's expressions and predicate, and the executor plans
 * them again for each statement before it compiles them.  Each write gets
 * its own copy of an index's IndexInfo, with an access method cache of its
 * own, in the write's memory, and expression and predicate states compiled
 * from the planned forms: the layout's, compiled by the first write that
 * needed them, when this write claimed them, else its own.  (The relcache, too, keeps an
 * index's expressions simplified once: a function they call is not looked
 * up again.)  Only whether an index is ready for inserts can change while
 * it stays in the table's index list without a relcache invalidation of
 * the table (CREATE INDEX CONCURRENTLY marks it ready), and that is read
 * from the index each time.  False when the table's layout was dropped
 * since the write began: the executor's way then.
 */
static bool
open_known_indices(SrDirect *d)
{
	SrDirectTable *t = d->tab;
	ResultRelInfo *rri = d->rri;
	List	   *oids;
	ListCell   *lc;
	MemoryContext old;
	bool		known;
	int			n;
	Oid		   *ixoids;
	IndexInfo **infos;
	bool	   *private;
	SrIndexStates *states = NULL;
	int			i = 0;

	/* first: building the index list reads a catalog, and may drop t's layout */
	oids = RelationGetIndexList(d->rel);
	if (!t->valid || t->cxt == NULL || t->relid != RelationGetRelid(d->rel) ||
		t->arbiter_oid != d->arbiter_oid)
	{
		list_free(oids);
		return false;
	}
	known = t->index_oids != NULL && t->nindexes == list_length(oids);
	if (known)
		foreach(lc, oids)
			known &= t->index_oids[i++] == lfirst_oid(lc);
	/* taken before opening an index can drop them from t */
	n = t->nindexes;
	ixoids = t->index_oids;
	infos = t->index_infos;
	private = t->index_private;
	if (!known)
		learn_indices(t, oids, &n, &ixoids, &infos, &private);
	list_free(oids);
	/* the states compiled for these indexes, if this write claimed them */
	if (d->own_states && t->states_cxt == d->states_cxt && t->index_infos == infos)
	{
		if (t->index_states == NULL)
			t->index_states = MemoryContextAllocZero(d->states_cxt, sizeof(SrIndexStates) * (n + 1));
		states = t->index_states;
	}
	old = MemoryContextSwitchTo(d->estate->es_query_cxt);
	rri->ri_NumIndices = n;
	rri->ri_IndexRelationDescs = palloc(sizeof(Relation) * (n + 1));
	rri->ri_IndexRelationInfo = palloc(sizeof(IndexInfo *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		Relation	index = index_open(ixoids[i], RowExclusiveLock);
		IndexInfo  *ii = palloc(sizeof(IndexInfo));
		SrIndexStates mine = {0};
		SrIndexStates *st = states != NULL && !private[i] ? &states[i] : &mine;

		memcpy(ii, infos[i], sizeof(IndexInfo));
		ii->ii_ReadyForInserts = index->rd_index->indisready;
		if (!st->ready)
		{
			/* what the executor would make of them, from their planned forms */
			MemoryContext cxt = compile_begin(d, st != &mine);
			List	   *exprs = NIL;
			ListCell   *e;

			foreach(e, ii->ii_Expressions)
				exprs = lappend(exprs, ExecInitExpr((Expr *) lfirst(e), NULL));
			st->pred = ii->ii_Predicate != NIL ? ExecInitQual(ii->ii_Predicate, NULL) : NULL;
			st->exprs = exprs;
			st->ready = true;
			compile_end(d, st != &mine, cxt);
		}
		ii->ii_ExpressionsState = st->exprs;
		ii->ii_PredicateState = st->pred;
		ii->ii_AmCache = NULL;
		ii->ii_Context = CurrentMemoryContext;
		rri->ri_IndexRelationDescs[i] = index;
		rri->ri_IndexRelationInfo[i] = ii;
	}
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * Open the table's indexes, the first time a write needs them: an update
 * that stays on its page (HOT) writes no index entry, and most updates of
 * the outbox and the shadows do stay, so that opening and locking every
 * index for them would be wasted.  The table's own lock, held since
 * sr_direct_begin(), keeps its indexes from being dropped under the write;
 * whether an update is HOT is decided from the table's whole index list,
 * and an index CREATE INDEX CONCURRENTLY made ready meanwhile is seen by
 * the write that opens them, as by any later statement.
 */
static void
open_indices(SrDirect *d)
{
	if (d->indices_open)
		return;
	if (!open_known_indices(d))
		open_result_indices(d->estate, d->rri, OidIsValid(d->arbiter_oid));
	d->indices_open = true;
}

/*
 * Compile states in the write's memory; or, to keep (keep), in a memory
 * context of their own, under the write's memory until they are made (a
 * compilation that fails leaves nothing in the kept memory), then under
 * the kept states'.  compile_begin() returns the context to go back to.
 */
static MemoryContext
compile_begin(SrDirect *d, bool keep)
{
	if (!keep)
		return MemoryContextSwitchTo(d->estate->es_query_cxt);
	return MemoryContextSwitchTo(AllocSetContextCreate(d->estate->es_query_cxt,
													   "sync_resolve direct compiled",
													   ALLOCSET_SMALL_SIZES));
}

static void
compile_end(SrDirect *d, bool keep, MemoryContext old)
{
	MemoryContext cxt = MemoryContextSwitchTo(old);

	if (keep)
		MemoryContextSetParent(cxt, d->states_cxt);
}

static void
eval_default(SrDirect *d, TupleTableSlot *slot, int attno)
{
	ExprContext *econtext = GetPerTupleExprContext(d->estate);

	if (d->default_exprs[attno] == NULL)
	{
		slot->tts_values[attno] = (Datum) 0;
		slot->tts_isnull[attno] = true;
		return;
	}
	if (d->defaults[attno] == NULL)
	{
		bool		shared = d->own_states && !d->default_private[attno];

		if (shared && d->default_states[attno] != NULL)
			d->defaults[attno] = d->default_states[attno];
		else
		{
			Expr	   *expr = d->default_exprs[attno];
			MemoryContext old = compile_begin(d, shared);

			if (d->default_unplanned[attno])	/* private: see learn_default() */
				expr = expression_planner((Expr *) copyObject(expr));
			d->defaults[attno] = ExecInitExpr(expr, NULL);
			compile_end(d, shared, old);
			if (shared)
				d->default_states[attno] = d->defaults[attno];
		}
	}
	slot->tts_values[attno] = ExecEvalExprSwitchContext(d->defaults[attno], econtext,
														&slot->tts_isnull[attno]);
}

/*
 * Form the row to write in d->slot: each attribute its given value, or its
 * default if so asked, else existing's value (an update) or its default
 * (an insert).  for_check: only what the arbiter index needs to find a
 * conflicting row; no other default is computed (nextval() would spend a
 * sequence value on a row that may not be inserted).
 */
static void
form_row(SrDirect *d, TupleTableSlot *existing, bool for_check)
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
		else if (for_check && !d->checkatt[i])
		{
			slot->tts_values[i] = (Datum) 0;
			slot->tts_isnull[i] = true;
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
	form_row(d, NULL, false);
	open_indices(d);
	ExecSimpleRelationInsert(d->rri, d->estate, d->slot);
	sr_direct_clear(d);
}

/*
 * A row changed (res: TM_Updated or TM_Deleted) by a transaction this
 * one's snapshot does not see: under REPEATABLE READ or SERIALIZABLE a
 * serialization failure, as for SQL; under READ COMMITTED the caller goes
 * on with the row as it is now.
 */
static void
changed_since_snapshot(TM_Result res)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent %s",
						res == TM_Deleted ? "delete" : "update")));
}

/*
 * The row at tid that conflicts with the one to be inserted, in
 * d->existing: false if it is gone (look again).  Under REPEATABLE READ a
 * row this transaction cannot see is a serialization failure, as for ON
 * CONFLICT DO UPDATE.
 */
static bool
fetch_conflicting(SrDirect *d, ItemPointer tid)
{
	bool		isnull;
	TransactionId xmin;

	if (!table_tuple_fetch_row_version(d->rel, tid, SnapshotAny, d->existing))
		return false;
	if (IsolationUsesXactSnapshot() &&
		!table_tuple_satisfies_snapshot(d->rel, d->existing, d->estate->es_snapshot))
	{
		xmin = DatumGetTransactionId(slot_getsysattr(d->existing, MinTransactionIdAttributeNumber,
													 &isnull));
		if (!TransactionIdIsCurrentTransactionId(xmin))
			changed_since_snapshot(TM_Updated);
	}
	return true;
}

/*
 * Insert a row of the given values, unless the table's arbiter index holds
 * one with the same key: then that row is returned in d->existing (NULL:
 * inserted), not locked.  The caller may sr_direct_set() more values and
 * sr_direct_update() it; if that finds it changed meanwhile, the caller
 * starts again.
 *
 * likely_absent: the caller just read the index and found no such row, so
 * the first try goes straight to the speculative insertion, whose own
 * index insertion finds a conflicting row as well (then the row is taken
 * back and the usual check done), instead of first searching the index
 * for one.
 */
TupleTableSlot *
sr_direct_insert_or_find(SrDirect *d, bool likely_absent)
{
	List	   *arbiters = list_make1_oid(d->arbiter_oid);
	TransactionId xid = GetCurrentTransactionId();
	bool		check = !likely_absent;

	open_indices(d);
	for (;;)
	{
		ItemPointerData conflict;
		uint32		token;
		bool		spec_conflict = false;
		List	   *recheck;

		if (check)
		{
			form_row(d, NULL, true);
			if (!ExecCheckIndexConstraints(d->rri, d->slot, d->estate, &conflict, arbiters))
			{
				if (fetch_conflicting(d, &conflict))
					return d->existing;
				continue;
			}
		}
		check = true;
		form_row(d, NULL, false);
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

/*
 * Write d->slot over the row version at tid, as UPDATE would, waiting for
 * a transaction that holds it.  False, nothing written, when that version
 * changed meanwhile; under REPEATABLE READ or SERIALIZABLE that is a
 * serialization failure, as for UPDATE.
 */
static bool
update_at(SrDirect *d, ItemPointer tid)
{
	TM_FailureData tmfd;
	TM_Result	res;
	LockTupleMode lockmode;
	bool		update_indexes;

	CheckCmdReplicaIdentity(d->rel, CMD_UPDATE);
	if (d->rel->rd_att->constr != NULL)
		ExecConstraints(d->rri, d->slot, d->estate);
	res = table_tuple_update(d->rel, tid, d->slot, d->estate->es_output_cid,
							 d->estate->es_snapshot, InvalidSnapshot, true,
							 &tmfd, &lockmode, &update_indexes);
	switch (res)
	{
		case TM_Ok:
			break;
		case TM_Updated:
		case TM_Deleted:
			changed_since_snapshot(res);
			return false;
		default:
			elog(ERROR, "sync_resolve: unexpected result %d updating a row of %s",
				 (int) res, RelationGetRelationName(d->rel));
	}
	if (update_indexes)
		open_indices(d);
	if (d->rri->ri_NumIndices > 0 && update_indexes)
		list_free(ExecInsertIndexTuples(d->rri, d->slot, d->estate, true, false, NULL, NIL));
	sr_direct_clear(d);
	return true;
}

/*
 * Update d->existing with the given values: false if it changed since
 * sr_direct_insert_or_find() returned it (nothing written; start again).
 */
bool
sr_direct_update(SrDirect *d)
{
	ItemPointerData tid = d->existing->tts_tid;

	form_row(d, d->existing, false);
	return update_at(d, &tid);
}

/*
 * Update the row at tid with the given values, tid and xmin naming the
 * version the caller read: false, nothing written, if that is no longer
 * the row's current version (this transaction or another changed it
 * since); the caller then upserts.  For a caller whose own lock already
 * serializes the writers of this row (a shadow row's all lock the tracked
 * row), so that it seldom finds it changed.
 */
bool
sr_direct_update_tid(SrDirect *d, ItemPointer tid, TransactionId xmin)
{
	if (!sr_direct_fetch_tid(d, tid, xmin))
		return false;
	return sr_direct_update(d);
}

/*
 * The row version at tid into d->existing, tid and xmin naming the version
 * the caller read (sr_direct_read_next()): false if that is no longer the
 * row's current version.  The caller may then sr_direct_set() values and
 * sr_direct_update() it, as after sr_direct_insert_or_find().
 */
bool
sr_direct_fetch_tid(SrDirect *d, ItemPointer tid, TransactionId xmin)
{
	bool		isnull;

	if (!table_tuple_fetch_row_version(d->rel, tid, SnapshotSelf, d->existing))
		return false;
	return DatumGetTransactionId(slot_getsysattr(d->existing, MinTransactionIdAttributeNumber,
												 &isnull)) == xmin;
}

/*
 * The snapshot a statement starting now would take, as SPI takes it: one
 * that sees every earlier statement of this transaction.  Registered.
 */
static Snapshot
statement_snapshot(void)
{
	Snapshot	snap;

	CommandCounterIncrement();
	PushCopiedSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	snap = RegisterSnapshot(GetActiveSnapshot());
	PopActiveSnapshot();
	return snap;
}

/* A scan of the rows of rel whose index key starts with the nkeys values keyvals. */
static IndexScanDesc
begin_key_scan(Relation rel, Relation index, Snapshot snap, const RegProcedure *eq,
			   int nkeys, const Datum *keyvals)
{
	ScanKeyData *keys = palloc(sizeof(ScanKeyData) * (nkeys + 1));
	IndexScanDesc scan;
	int			i;

	for (i = 0; i < nkeys; i++)
		ScanKeyEntryInitialize(&keys[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
							   index->rd_indcollation[i], eq[i], keyvals[i]);
	scan = index_beginscan(rel, index, snap, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	pfree(keys);
	return scan;
}

/* Whether the row in slot has the index key keyvals (columns, not expressions). */
static bool
key_matches(Relation index, const RegProcedure *eq, int nkeys, const Datum *keyvals,
			TupleTableSlot *slot)
{
	int			i;

	for (i = 0; i < nkeys; i++)
	{
		AttrNumber	a = index->rd_index->indkey.values[i];
		bool		isnull;
		Datum		v;

		if (a <= 0)
			elog(ERROR, "sync_resolve: index %s keys an expression, not a column",
				 RelationGetRelationName(index));
		v = slot_getattr(slot, a, &isnull);

		if (isnull || !DatumGetBool(OidFunctionCall2Coll(eq[i], index->rd_indcollation[i],
														 v, keyvals[i])))
			return false;
	}
	return true;
}

/*
 * Start reading the rows of t whose arbiter index key starts with the
 * nkeys values keyvals, as a statement starting now would see them: false
 * if t must be read through SQL.
 *
 * The table and its index are locked as a write locks them: the tables
 * read this way (a shadow, the outbox) are sync_resolve's own, and nearly
 * every read is the first half of a write of the same rows, so that a read
 * lock would be a second lock on each, taken and released with every
 * transaction.  Only DDL (CREATE INDEX without CONCURRENTLY, for one) takes
 * a lock that conflicts with the write's and not with a read's.
 */
bool
sr_direct_read_begin(SrDirectRead *r, SrDirectTable *t, int nkeys, const Datum *keyvals)
{
	const RegProcedure *eq;

	memset(r, 0, sizeof(SrDirectRead));
	r->rel = open_table(t, RowExclusiveLock);
	if (r->rel == NULL)
		return false;
	if (nkeys > t->narbiter)
		elog(ERROR, "sync_resolve: %d key columns given for an index of %d on %s",
			 nkeys, t->narbiter, RelationGetRelationName(r->rel));
	/* the layout as it is now, as sr_direct_begin() takes it */
	r->attnums = t->attnums;
	eq = t->arbiter_eq;
	r->index = index_open(t->arbiter_oid, RowExclusiveLock);
	r->snapshot = statement_snapshot();
	r->scan = begin_key_scan(r->rel, r->index, r->snapshot, eq, nkeys, keyvals);
	r->slot = table_slot_create(r->rel, NULL);
	return true;
}

/* The next row read, or NULL: valid until the next call. */
TupleTableSlot *
sr_direct_read_next(SrDirectRead *r)
{
	if (index_getnext_slot(r->scan, ForwardScanDirection, r->slot))
		return r->slot;
	return NULL;
}

/* Finish reading; the locks stay to the end of the transaction, as SQL's do. */
void
sr_direct_read_end(SrDirectRead *r)
{
	index_endscan(r->scan);
	ExecDropSingleTupleTableSlot(r->slot);
	UnregisterSnapshot(r->snapshot);
	index_close(r->index, NoLock);
	table_close(r->rel, NoLock);
}

/*
 * Find the row of rel whose key in the unique btree index equals keyvals
 * (eq: the index's equality functions) and lock it as SELECT ... FOR
 * UPDATE (mode LockTupleExclusive) or FOR NO KEY UPDATE
 * (LockTupleNoKeyExclusive) would: under READ COMMITTED a row changed
 * meanwhile is locked in its latest version if that still has the key;
 * under REPEATABLE READ and SERIALIZABLE it is a serialization failure.
 * False when there is no such row; else the row is in slot.  No privilege
 * or row security check: the caller's business.
 */
bool
sr_direct_lock_row(Relation rel, Relation index, const RegProcedure *eq, int nkeys,
				   const Datum *keyvals, LockTupleMode mode, TupleTableSlot *slot)
{
	Snapshot	snap = statement_snapshot();
	IndexScanDesc scan = begin_key_scan(rel, index, snap, eq, nkeys, keyvals);
	bool		found = index_getnext_slot(scan, ForwardScanDirection, slot);
	TM_FailureData tmfd;
	TM_Result	res;

	index_endscan(scan);
	if (found)
	{
		res = table_tuple_lock(rel, &slot->tts_tid, snap, slot, GetCurrentCommandId(true),
							   mode, LockWaitBlock,
							   IsolationUsesXactSnapshot() ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
							   &tmfd);
		switch (res)
		{
			case TM_Ok:
				/* READ COMMITTED, the row changed: is its latest version still the one asked for? */
				if (tmfd.traversed)
					found = key_matches(index, eq, nkeys, keyvals, slot);
				break;
			case TM_SelfModified:
				/* changed by this very statement, as FOR UPDATE skips it */
				found = false;
				break;
			case TM_Updated:
			case TM_Deleted:
				changed_since_snapshot(res);
				if (res == TM_Updated)
					elog(ERROR, "sync_resolve: unexpected result %d locking a row of %s",
						 (int) res, RelationGetRelationName(rel));
				found = false;	/* deleted meanwhile */
				break;
			default:
				elog(ERROR, "sync_resolve: unexpected result %d locking a row of %s",
					 (int) res, RelationGetRelationName(rel));
		}
	}
	UnregisterSnapshot(snap);
	return found;
}

/*
 * Update the row of rel whose key in the unique btree index equals keyvals
 * (eq: the index's equality functions), as UPDATE ... WHERE key = ... would
 * for the attributes set[] (by attribute number - 1) with values[] and
 * isnull[]: its constraints checked, its indexes written when the new
 * version leaves the page.  The caller holds the row's lock (taken by
 * sr_direct_lock_row()) and has made sure that nothing else an UPDATE
 * statement does applies to rel: no triggers to fire, no row security or
 * rules, no typmod coercion or domain check of the values, and the
 * privileges.  Runs as the current user.  The row as written goes to slot
 * (virtual, of rel's descriptor); false, nothing written, if there is no
 * such row.
 */
bool
sr_direct_update_row(Relation rel, Relation index, const RegProcedure *eq, int nkeys,
					 const Datum *keyvals, const bool *set, const Datum *values,
					 const bool *isnull, TupleTableSlot *slot)
{
	Snapshot	snap = statement_snapshot();
	IndexScanDesc scan = begin_key_scan(rel, index, snap, eq, nkeys, keyvals);
	TupleTableSlot *old = table_slot_create(rel, NULL);
	bool		found = index_getnext_slot(scan, ForwardScanDirection, old);

	index_endscan(scan);
	if (found)
	{
		ResultRelInfo *rri;
		EState	   *estate = write_state(rel, &rri);
		int			natts = RelationGetDescr(rel)->natts;
		TM_FailureData tmfd;
		TM_Result	res;
		LockTupleMode lockmode;
		bool		update_indexes;
		int			i;

		estate->es_snapshot = snap;

		slot_getallattrs(old);
		ExecClearTuple(slot);
		for (i = 0; i < natts; i++)
		{
			/* a dropped column is NULL in the new version, as UPDATE makes it */
			bool		dropped = TupleDescAttr(RelationGetDescr(rel), i)->attisdropped;

			slot->tts_values[i] = set[i] ? values[i] : old->tts_values[i];
			slot->tts_isnull[i] = dropped || (set[i] ? isnull[i] : old->tts_isnull[i]);
		}
		ExecStoreVirtualTuple(slot);
		/* its own copy of every value: old's point into a buffer */
		ExecMaterializeSlot(slot);

		CheckCmdReplicaIdentity(rel, CMD_UPDATE);
		if (rel->rd_att->constr != NULL)
			ExecConstraints(rri, slot, estate);
		res = table_tuple_update(rel, &old->tts_tid, slot, estate->es_output_cid, snap,
								 InvalidSnapshot, true, &tmfd, &lockmode, &update_indexes);
		if (res != TM_Ok)
		{
			/* the caller's lock keeps every other writer out */
			changed_since_snapshot(res);
			elog(ERROR, "sync_resolve: unexpected result %d updating a row of %s",
				 (int) res, RelationGetRelationName(rel));
		}
		if (update_indexes)
		{
			open_result_indices(estate, rri, false);
			list_free(ExecInsertIndexTuples(rri, slot, estate, true, false, NULL, NIL));
			close_result_indices(rri);
		}
		FreeExecutorState(estate);
		CommandCounterIncrement();
	}
	ExecDropSingleTupleTableSlot(old);
	UnregisterSnapshot(snap);
	return found;
}

/* Finish: release what begin took and let later statements see the rows. */
void
sr_direct_end(SrDirect *d)
{
	/* the layout's states, if they are still its (else a later one's) */
	if (d->own_states && d->tab->states_cxt == d->states_cxt)
		d->tab->claim_subid = InvalidSubTransactionId;
	if (d->indices_open)
		close_result_indices(d->rri);
	ExecResetTupleTable(d->estate->es_tupleTable, false);
	FreeExecutorState(d->estate);
	table_close(d->rel, NoLock);
	sr_restore_user(&d->sw);
	CommandCounterIncrement();
}
