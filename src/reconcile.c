/*-------------------------------------------------------------------------
 *
 * reconcile.c
 *		A tracked table against a source's own copy of it (DESIGN 11):
 *		reconcile_summary() and reconcile().
 *
 * A snapshot is a table holding the source's records as the source held
 * them at one time (captured_at): the fields apply() would take, in the
 * source's own names and values.  Each record is read as apply() reads a
 * payload (field and value maps, record ids, match_on, the column types),
 * locking nothing, and compared with the local row column by column with
 * the type's own equality.
 *
 * reconcile_summary() counts and checksums both sides over the columns the
 * snapshot holds: a checksum is the sum of each row's hash, so that it does
 * not depend on the order rows are read in, and the hashes agree with the
 * equality the comparison uses (sr_datum_hash).
 *
 * reconcile() says for each difference what normal sync does with it: the
 * column's decision as apply() makes it (sr_column_input, sr_decide,
 * sr_merge_column, the values it sets aside) on the local value, the
 * snapshot's (dated captured_at) and the source's base.  Taken or merged:
 * update_local; the local value stays (kept, refused, or only this side
 * changed since the base): update_external; a person decides:
 * manual_review.  A record of no row here is insert_local, or for a row
 * deleted here what apply() does with a change crossing a delete; a row
 * only this side has is insert_external, or manual_review when the source
 * held it before (deleted there, or not captured).  A difference whose row
 * or column changed since captured_at - settle, or whose row has an outbox
 * entry for the source waiting or in flight, is settling: sync may still be
 * carrying it.  Equal values are not listed.  Reading locks nothing and
 * takes nothing from a sequence (peek): a new record's key is not made.
 *
 * With repair, the source's side goes through the apply engine (the
 * columns to take, dated captured_at: the engine decides them by the same
 * rules again, column groups as one, and opens review items), the local
 * side through the outbox; a row the source held but no longer has opens a
 * review item as a delete from the source crossing a change here would;
 * each difference carried out, or left to a person, leaves a 'reconciled'
 * event.  Without repair nothing is written.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/sortsupport.h"
#include "utils/tuplesort.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "sync_resolve.h"

#define FETCH_ROWS 200

/*
 * The keys of the snapshot's records, for the rows it has no record of:
 * sorted (in work_mem, on disk beyond it), then walked beside the table's
 * rows read in the same order.  Each key column is ordered by its type's
 * default ordering and its collation, as ORDER BY orders the rows, and two
 * keys are the same when that ordering finds them equal: by the type's own
 * equality.
 */
typedef struct SeenKeys
{
	Tuplesortstate *sort;
	TupleTableSlot *slot;		/* the next key sorted */
	SortSupport ssup;			/* [nkeys] */
	bool		more;			/* slot holds a key not passed yet */
} SeenKeys;

typedef struct Reconcile
{
	SrApplyCall call;
	SrTable    *tab;
	Relation	rel;			/* the table, held open (sr_table_hold()) */
	TimestampTz captured_at;
	TimestampTz settle_from;	/* captured_at - settle */
	bool		repair;
	Tuplestorestate *out;
	TupleDesc	td;
	SeenKeys	seen;
	Datum	   *record_key;		/* the key of the record just read */
	MemoryContext rowcxt;		/* emptied for each row */

	/*
	 * The snapshot's records fetched last, applied in runs (sr_runs()): what
	 * each leaves -- rows of the result, the key it had -- is kept until
	 * they all are done, since a run rolled back applies its records again.
	 */
	HeapTuple  *records;
	TupleDesc	record_td;
	List	  **pending;		/* HeapTuple: each record's rows of the result */
	Datum	  **keys;			/* each record's key values, or NULL */
	int			current;		/* the record being applied */
	MemoryContext fetchcxt;		/* all of that, emptied for each fetch */
	SrSide		incoming;		/* the snapshot's side, for the decisions */
} Reconcile;

/* What reconcile() says of one difference */
typedef struct Difference
{
	int			col;			/* -1: the whole row */
	Jsonb	   *local_value;
	Jsonb	   *external_value;
	const char *action;
	char	   *reason;
	SrScreened *screened;		/* a value set aside, this difference's */
} Difference;

static SPIPlanPtr live_entry_plan = NULL;

/* The snapshot, its name quoted, and a cursor over its records as jsonb. */
static Portal
open_snapshot(Oid snapshot, const SrTable *tab)
{
	char	   *name = get_rel_name(snapshot);
	char	   *nsp;
	Portal		portal;

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("snapshot table with OID %u does not exist", snapshot),
				 errhint("Pass the table holding the source's records of %s.", tab->display_name)));
	nsp = get_namespace_name(get_rel_namespace(snapshot));
	portal = SPI_cursor_open_with_args(NULL,
									   psprintf("SELECT pg_catalog.to_jsonb(s) FROM %s s",
												quote_qualified_identifier(nsp, name)),
									   0, NULL, NULL, NULL, true, 0);
	if (portal == NULL)
		elog(ERROR, "sync_resolve: could not read snapshot %s", name);
	return portal;
}

/* The hash of a row over its key and the columns in which[] */
static uint64
row_hash(const SrTable *tab, const Datum *values, const bool *nulls, const bool *which,
		 const bool *present)
{
	uint64		h = 0;
	int			c;

	for (c = 0; c < tab->ncols; c++)
	{
		if (!tab->cols[c].is_key && !which[c])
			continue;
		if (present != NULL && !present[c])
			h = hash_combine64(h, UINT64CONST(0x6a09e667f3bcc908));
		else
			h = hash_combine64(h, sr_datum_hash(&tab->cols[c], values[c], nulls[c]));
	}
	return h;
}

static char *
hash_text(uint64 h)
{
	return psprintf("%016llx", (unsigned long long) h);
}

/* Common setup: the table, the source, the memory of each row. */
static void
begin_reconcile(Reconcile *rc, Oid relid, const char *source)
{
	SrTable    *tab = sr_table_get(relid, false, AccessShareLock);

	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", tab->display_name),
				 errhint("Reconciling reads the table as the calling role, which needs SELECT on it.")));
	memset(rc, 0, sizeof(*rc));
	sr_init_call(&rc->call, tab, source);
	rc->call.peek = true;
	rc->tab = tab;
	rc->rel = sr_table_hold(tab);
	rc->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_resolve reconcile row",
									   ALLOCSET_DEFAULT_SIZES);
	sr_table_plans(tab);
}

/*
 * Run fn on the rows the portal reads, FETCH_ROWS at a time; then close the
 * portal.  fn may run SPI itself: the rows fetched are kept aside from
 * SPI_tuptable.
 */
static void
each_fetch(Reconcile *rc, Portal portal,
		   void (*fn) (Reconcile *rc, SPITupleTable *tt, void *arg), void *arg)
{
	for (;;)
	{
		SPITupleTable *tt;

		SPI_cursor_fetch(portal, true, FETCH_ROWS);
		tt = SPI_tuptable;
		if (tt == NULL || tt->numvals == 0)
		{
			SPI_freetuptable(tt);
			break;
		}
		fn(rc, tt, arg);
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
}

/* fn and its argument, for each_row() */
typedef struct EachRow
{
	void		(*fn) (Reconcile *rc, HeapTuple tup, TupleDesc td, void *arg);
	void	   *arg;
} EachRow;

static void
each_row_fetched(Reconcile *rc, SPITupleTable *tt, void *arg)
{
	EachRow    *e = (EachRow *) arg;
	uint64		i;

	for (i = 0; i < tt->numvals; i++)
	{
		MemoryContext old;

		MemoryContextReset(rc->rowcxt);
		old = MemoryContextSwitchTo(rc->rowcxt);
		e->fn(rc, tt->vals[i], tt->tupdesc, e->arg);
		MemoryContextSwitchTo(old);
	}
}

/*
 * Run fn on each row the portal reads, in rc->rowcxt, emptied for each
 * row; then close the portal.
 */
static void
each_row(Reconcile *rc, Portal portal,
		 void (*fn) (Reconcile *rc, HeapTuple tup, TupleDesc td, void *arg), void *arg)
{
	EachRow		e = {fn, arg};

	each_fetch(rc, portal, each_row_fetched, &e);
}

/* Each of the table's rows, locking nothing: in no order, or in key order */
static Portal
open_rows(Reconcile *rc, SrRowsRead which)
{
	return SPI_cursor_open(NULL, sr_plan_read_rows(rc->tab, which), NULL, NULL, true);
}

/* Read one snapshot record into img; the record is rc->call.payload. */
static void
read_record(Reconcile *rc, HeapTuple tup, TupleDesc td, SrImage *img)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, td, 1, &isnull);

	if (isnull)
		elog(ERROR, "sync_resolve: a snapshot record read as NULL");
	rc->call.payload = DatumGetJsonbPCopy(d);
	sr_parse_image(&rc->call, img);
}

/* Read one of the table's rows (open_rows()) into L, Lnull. */
static void
read_row(const SrTable *tab, HeapTuple tup, TupleDesc td, Datum **L, bool **Lnull)
{
	*L = palloc(sizeof(Datum) * (tab->ncols + 1));
	*Lnull = palloc(sizeof(bool) * (tab->ncols + 1));
	sr_copy_row(tab, tup, td, *L, *Lnull);
}

/* reconcile_summary()'s sums */
typedef struct Summary
{
	bool	   *which;			/* the columns compared: the first record's */
	uint64		local_hash;
	uint64		external_hash;
	int64		local_rows;
	int64		external_rows;
	MemoryContext cxt;			/* for which */
} Summary;

/*
 * An error of one record -- a value of the wrong type, a field that names
 * no column, a record matching two rows, a value the table refuses --
 * rather than of the call: it is reported, and the rest goes on.
 */
static bool
bad_record(const ErrorData *edata)
{
	switch (ERRCODE_TO_CATEGORY(edata->sqlerrcode))
	{
		case ERRCODE_DATA_EXCEPTION:
		case ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION:
		case ERRCODE_CARDINALITY_VIOLATION:
			return true;
		default:
			return edata->sqlerrcode == ERRCODE_UNDEFINED_COLUMN;
	}
}

/* One snapshot record and what to do with it, for sr_try_subxact() */
typedef struct Record
{
	Reconcile  *rc;
	HeapTuple	tup;
	TupleDesc	td;
	void		(*fn) (Reconcile *rc, SrImage *img, void *arg);
	void	   *arg;
} Record;

static void
do_record(void *arg)
{
	Record	   *r = (Record *) arg;
	SrImage		img;

	read_record(r->rc, r->tup, r->td, &img);
	r->fn(r->rc, &img, r->arg);
}

/*
 * Read a snapshot record and run fn on it, in a subtransaction: false,
 * with the error in *edata, when the record is bad (bad_record()).
 */
static bool
each_record(Reconcile *rc, HeapTuple tup, TupleDesc td,
			void (*fn) (Reconcile *rc, SrImage *img, void *arg), void *arg, ErrorData **edata)
{
	Record		r = {rc, tup, td, fn, arg};

	return sr_try_subxact(do_record, &r, bad_record, edata);
}

static void
summary_image(Reconcile *rc, SrImage *img, void *arg)
{
	Summary    *sum = (Summary *) arg;
	int			c;

	if (sum->which == NULL)
	{
		sum->which = MemoryContextAllocZero(sum->cxt, sizeof(bool) * (rc->tab->ncols + 1));
		for (c = 0; c < rc->tab->ncols; c++)
			sum->which[c] = img->present[c] && !rc->tab->cols[c].is_key;
	}
	sum->external_hash += row_hash(rc->tab, img->values, img->nulls, sum->which, img->present);
}

static void
summary_record(Reconcile *rc, HeapTuple tup, TupleDesc td, void *arg)
{
	Summary    *sum = (Summary *) arg;
	ErrorData  *edata;

	/* a record that cannot be read counts, and matches nothing */
	if (!each_record(rc, tup, td, summary_image, sum, &edata))
		sum->external_hash += UINT64CONST(0xbad0bad0bad0bad0);
	sum->external_rows++;
}

static void
summary_row(Reconcile *rc, HeapTuple tup, TupleDesc td, void *arg)
{
	Summary    *sum = (Summary *) arg;
	Datum	   *L;
	bool	   *Lnull;

	read_row(rc->tab, tup, td, &L, &Lnull);
	sum->local_hash += row_hash(rc->tab, L, Lnull, sum->which, NULL);
	sum->local_rows++;
}

PG_FUNCTION_INFO_V1(reconcile_summary);
Datum
reconcile_summary(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext callercxt = CurrentMemoryContext;
	Reconcile	rc;
	Summary		sum;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	char	   *source;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tbl, source and snapshot must not be null"),
				 errhint("Pass the tracked table, the source system and the table holding its records.")));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	InitMaterializedSRF(fcinfo, 0);

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	begin_reconcile(&rc, PG_GETARG_OID(0), source);
	memset(&sum, 0, sizeof(sum));
	sum.cxt = CurrentMemoryContext;

	/* the source's records, then this table's rows over the same columns */
	each_row(&rc, open_snapshot(PG_GETARG_OID(2), rc.tab), summary_record, &sum);
	if (sum.which == NULL)
		sum.which = palloc0(sizeof(bool) * (rc.tab->ncols + 1));
	each_row(&rc, open_rows(&rc, SR_ROWS_ALL), summary_row, &sum);

	MemoryContextSwitchTo(callercxt);
	values[0] = Int64GetDatum(sum.local_rows);
	values[1] = Int64GetDatum(sum.external_rows);
	values[2] = CStringGetTextDatum(hash_text(sum.local_hash));
	values[3] = CStringGetTextDatum(hash_text(sum.external_hash));
	values[4] = BoolGetDatum(sum.local_rows == sum.external_rows &&
							 sum.local_hash == sum.external_hash);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	sr_table_release(rc.rel);
	SPI_finish();
	sr_cache_leave();
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * reconcile()
 * ------------------------------------------------------------------------
 */

/* Begin sorting the keys of the snapshot's records (SeenKeys). */
static void
begin_seen(Reconcile *rc)
{
	const SrTable *tab = rc->tab;
	int			n = tab->nkeys;
	TupleDesc	td = CreateTemplateTupleDesc(n);
	AttrNumber *attnums = palloc(sizeof(AttrNumber) * n);
	Oid		   *ops = palloc(sizeof(Oid) * n);
	Oid		   *colls = palloc(sizeof(Oid) * n);
	bool	   *nulls_first = palloc0(sizeof(bool) * n);
	int			i;

	rc->seen.ssup = palloc0(sizeof(SortSupportData) * n);
	for (i = 0; i < n; i++)
	{
		const SrColumn *col = &tab->cols[tab->keys[i]];
		TypeCacheEntry *tc = lookup_type_cache(col->typid, TYPECACHE_LT_OPR);

		if (!OidIsValid(tc->lt_opr))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("key column \"%s\" of table %s has a type with no default ordering: %s",
							col->name, tab->display_name, format_type_be(col->typid)),
					 errhint("reconcile() sorts the keys of the snapshot's records: give the type a default btree operator class.")));
		TupleDescInitEntry(td, i + 1, NULL, col->typid, -1, 0);
		TupleDescInitEntryCollation(td, i + 1, col->collation);
		attnums[i] = i + 1;
		ops[i] = tc->lt_opr;
		colls[i] = col->collation;
		rc->seen.ssup[i].ssup_cxt = CurrentMemoryContext;
		rc->seen.ssup[i].ssup_collation = col->collation;
		PrepareSortSupportFromOrderingOp(ops[i], &rc->seen.ssup[i]);
	}
	rc->seen.sort = tuplesort_begin_heap(td, n, attnums, ops, colls, nulls_first, work_mem,
										 NULL, TUPLESORT_NONE);
	rc->seen.slot = MakeSingleTupleTableSlot(td, &TTSOpsMinimalTuple);
}

/*
 * Note a record's key as seen.  Not in a subtransaction: a sort that spills
 * to disk keeps its file with the resources of the call, not of a
 * subtransaction that ends.
 */
static void
note_seen(Reconcile *rc, const Datum *keyvals)
{
	TupleTableSlot *slot = rc->seen.slot;
	int			i;

	ExecClearTuple(slot);
	for (i = 0; i < rc->tab->nkeys; i++)
	{
		slot->tts_values[i] = keyvals[i];
		slot->tts_isnull[i] = false;
	}
	ExecStoreVirtualTuple(slot);
	tuplesort_puttupleslot(rc->seen.sort, slot);
}

/* The keys noted are all there: sort them, and take the first. */
static void
end_seen(Reconcile *rc)
{
	tuplesort_performsort(rc->seen.sort);
	rc->seen.more = tuplesort_gettupleslot(rc->seen.sort, true, false, rc->seen.slot, NULL);
}

/*
 * Whether a snapshot record had these key values.  The rows are asked in
 * key order (SR_ROWS_IN_KEY_ORDER): keys before this row's are passed.
 */
static bool
was_seen(Reconcile *rc, const Datum *keyvals)
{
	TupleTableSlot *slot = rc->seen.slot;

	while (rc->seen.more)
	{
		int			cmp = 0;
		int			i;

		slot_getallattrs(slot);
		for (i = 0; i < rc->tab->nkeys && cmp == 0; i++)
			cmp = ApplySortComparator(slot->tts_values[i], false, keyvals[i], false,
									  &rc->seen.ssup[i]);
		if (cmp == 0)
			return true;
		if (cmp > 0)
			return false;
		rc->seen.more = tuplesort_gettupleslot(rc->seen.sort, true, false, slot, NULL);
	}
	return false;
}

/*
 * Whether an outbox entry carries the row to the source now: waiting
 * (pending, failed) or handed out (in flight), each found through its own
 * index.
 */
static bool
live_entry(Reconcile *rc, Jsonb *key)
{
	Datum		values[3];
	bool		isnull;
	bool		live;

	if (live_entry_plan == NULL)
	{
		Oid			types[3] = {REGCLASSOID, JSONBOID, TEXTOID};

		live_entry_plan = sr_prepare_kept(
			"SELECT EXISTS (SELECT FROM sync_resolve.outbox o"
			" WHERE o.relid OPERATOR(pg_catalog.=) $1"
			" AND pg_catalog.jsonb_hash_extended(o.key, 0) OPERATOR(pg_catalog.=) pg_catalog.jsonb_hash_extended($2, 0)"
			" AND o.key OPERATOR(pg_catalog.=) $2 AND o.target OPERATOR(pg_catalog.=) $3"
			" AND o.status IN ('pending', 'failed'))"
			" OR EXISTS (SELECT FROM sync_resolve.outbox o"
			" WHERE o.relid OPERATOR(pg_catalog.=) $1"
			" AND pg_catalog.jsonb_hash_extended(o.key, 0) OPERATOR(pg_catalog.=) pg_catalog.jsonb_hash_extended($2, 0)"
			" AND o.target OPERATOR(pg_catalog.=) $3 AND o.key OPERATOR(pg_catalog.=) $2"
			" AND o.status IN ('in_flight', 'failed'))",
			3, types, true);
	}
	values[0] = ObjectIdGetDatum(rc->tab->relid);
	values[1] = JsonbPGetDatum(key);
	values[2] = CStringGetTextDatum(rc->call.source);
	sr_spi_execute(live_entry_plan, values, NULL, true, true, 0, SPI_OK_SELECT);
	live = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return live;
}

/* Why a difference may still be settling, or NULL. */
static char *
settling(Reconcile *rc, const SrShadowRow *srow, const SrShadowRow *lrow, int c, bool live)
{
	const char *src = rc->call.source;
	int			k;

	if (live)
		return psprintf("an outbox entry carrying the row to %s is waiting or in flight", src);
	if (srow->found && srow->has_changed_at && srow->changed_at > rc->captured_at)
		return psprintf("%s's last change known here, at %s by its clock, is later than the snapshot",
						src, sr_time_text(srow->changed_at));
	if (srow->found && srow->received_at >= rc->settle_from)
		return psprintf("%s sent a change of the row at %s, after the snapshot's settle time",
						src, sr_time_text(srow->received_at));
	if (!lrow->found)
		return NULL;
	for (k = 0; k < rc->tab->ncols; k++)
		if ((c < 0 || k == c) && !TIMESTAMP_IS_NOBEGIN(lrow->col_changed_at[k]) &&
			lrow->col_changed_at[k] >= rc->settle_from)
			return psprintf("%s changed here at %s, after the snapshot's settle time",
							rc->tab->cols[k].name, sr_time_text(lrow->col_changed_at[k]));
	if (lrow->deleted && lrow->deleted_at >= rc->settle_from)
		return psprintf("deleted here at %s, after the snapshot's settle time",
						sr_time_text(lrow->deleted_at));
	return NULL;
}

/* One row of reconcile()'s result; key NULL: a new record, no row's key yet */
static void
emit(Reconcile *rc, Jsonb *key, const Difference *d)
{
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	const SrColumn *col = d->col >= 0 ? &rc->tab->cols[d->col] : NULL;

	nulls[0] = key == NULL;
	values[0] = key ? JsonbPGetDatum(key) : (Datum) 0;
	nulls[1] = col == NULL;
	values[1] = col ? CStringGetTextDatum(col->name) : (Datum) 0;
	nulls[2] = d->local_value == NULL;
	values[2] = d->local_value ? JsonbPGetDatum(d->local_value) : (Datum) 0;
	nulls[3] = d->external_value == NULL;
	values[3] = d->external_value ? JsonbPGetDatum(d->external_value) : (Datum) 0;
	nulls[4] = col == NULL || col->owner == NULL;
	values[4] = nulls[4] ? (Datum) 0 : CStringGetTextDatum(col->owner);
	values[5] = CStringGetTextDatum(d->action);
	values[6] = CStringGetTextDatum(d->reason);
	if (rc->pending != NULL)
	{
		/* a snapshot record's: kept until its run is done */
		MemoryContext old = MemoryContextSwitchTo(rc->fetchcxt);

		rc->pending[rc->current] = lappend(rc->pending[rc->current],
										   heap_form_tuple(rc->td, values, nulls));
		MemoryContextSwitchTo(old);
	}
	else
		tuplestore_putvalues(rc->out, rc->td, values, nulls);
}

/* The action normal sync takes on a column, by the decision's */
static const char *
action_of(SrAction action)
{
	switch (action)
	{
		case SR_ACT_TAKE:
		case SR_ACT_MERGE:
			/* merged: a value of both, taken here, that goes out to the source */
			return "update_local";
		case SR_ACT_REVIEW:
			return "manual_review";
		case SR_ACT_KEEP:
		case SR_ACT_REJECT:
		case SR_ACT_NOTHING:
			break;
	}
	return "update_external";
}

/*
 * What normal sync does with column c, where the snapshot's value E and
 * the local L differ, by the column's own decision (in, dec) as apply()
 * makes it, merges computed.  A column of a group decided as one goes by
 * the group's instead (group_difference()).
 */
static void
decide_column(Reconcile *rc, Jsonb *key, int c, Datum E, bool Enull, Datum L, bool Lnull,
			  const SrShadowRow *srow, const SrColumnInput *in, SrColumnDecision *dec,
			  Difference *d)
{
	const SrColumn *col = &rc->tab->cols[c];
	const char *src = rc->call.source;
	Datum		M = (Datum) 0;
	bool		Mnull = true;
	char	   *why;

	if (in->held)
	{
		d->action = "manual_review";
		d->reason = psprintf("%s is held by an open review", col->name);
		return;
	}
	if (dec->needs_value)
		sr_merge_column(&rc->call, key, c, E, Enull, L, Lnull, srow, in, dec, &M, &Mnull);
	switch (dec->delta)
	{
		case SR_DELTA_NONE:
			/* the source still holds its base: only this side changed it */
			d->action = "update_external";
			d->reason = psprintf("%s still holds the value it last sent or received; it changed here since",
								 src);
			return;
		case SR_DELTA_ONE_SIDED:
			why = psprintf("only %s changed it since its base", src);
			break;
		default:
			why = srow->known[c]
				? psprintf("both changed it since %s's base", src)
				: psprintf("no base from %s: both count as changed", src);
			break;
	}
	d->action = action_of(dec->action);
	if (dec->action == SR_ACT_MERGE)
		why = psprintf("%s; merged, %s goes to both sides", why,
					   sr_jsonb_value_text(sr_datum_to_jsonb(col, M, Mnull)));
	d->reason = dec->rule ? psprintf("%s; %s", why, dec->rule) : psprintf("%s: taken", why);
}

/*
 * Column groups in conflict, or held, are decided as one, as the engine
 * decides them (sr_decide_group()), before the columns' own values are
 * computed: a group's custom function is called for the group, not for
 * each member.  For each column, its group's decision, or NULL; M, Mnull:
 * custom's values of the members.
 */
static SrGroupDecision **
decide_groups(Reconcile *rc, SrImage *img, const Datum *L, const bool *Lnull,
			  const SrShadowRow *srow, const SrShadowRow *lrow, const SrColumnDecision *dec,
			  Datum *M, bool *Mnull)
{
	const SrTable *tab = rc->tab;
	SrGroupDecision **by_col = palloc0(sizeof(SrGroupDecision *) * (tab->ncols + 1));
	Datum	   *I = palloc(sizeof(Datum) * (tab->ncols + 1));
	bool	   *Inull = palloc(sizeof(bool) * (tab->ncols + 1));
	int			g;

	memcpy(I, img->values, sizeof(Datum) * tab->ncols);
	memcpy(Inull, img->nulls, sizeof(bool) * tab->ncols);
	for (g = 0; g < tab->ngroups; g++)
	{
		SrGroupDecision *gd = palloc(sizeof(SrGroupDecision));
		int			k;

		if (!sr_decide_group(&rc->call, img, g, L, Lnull, srow, lrow, dec, &rc->incoming,
							 I, Inull, M, Mnull, gd))
			continue;
		for (k = 0; k < tab->groups[g].ncols; k++)
			by_col[tab->groups[g].cols[k]] = gd;
	}
	return by_col;
}

/* Member c's difference, by its group's decision gd */
static void
group_difference(const SrTable *tab, const SrGroupDecision *gd, int c, const Datum *M,
				 const bool *Mnull, Difference *d)
{
	d->action = action_of(gd->dec.action);
	d->reason = gd->dec.action == SR_ACT_MERGE
		? psprintf("decided with its group: %s; %s goes to both sides", gd->dec.rule,
				   sr_jsonb_value_text(sr_datum_to_jsonb(&tab->cols[c], M[c], Mnull[c])))
		: psprintf("decided with its group: %s", gd->dec.rule);
}

/* Log what reconcile() did, or left to a person. */
static void
log_difference(Reconcile *rc, SrEventBatch *batch, const Difference *d)
{
	sr_event_add(batch, "reconciled", d->col >= 0 ? rc->tab->cols[d->col].name : NULL,
				 d->local_value, d->external_value, NULL, NULL, d->reason, d->action, 0);
}

/*
 * What repair does with a row (lrow: its local metadata, or NULL for a new
 * record): the columns to take (take[], or the
 * snapshot's whole record) through the apply engine with the values set
 * aside for a person (review), the columns the source is to learn (send[],
 * or the whole row, or its delete) through the outbox.
 */
typedef struct Repair
{
	bool	   *take;
	bool		take_record;	/* a new record: parsed again, its key made */
	List	   *review;			/* SrScreened * */
	bool	   *send;
	bool		send_row;
	bool		send_delete;
	bool		review_row;		/* a row the source no longer has: a person decides */
	List	   *acted;			/* Difference *: logged */
} Repair;

static void
init_repair(const SrTable *tab, Repair *r)
{
	memset(r, 0, sizeof(*r));
	r->take = palloc0(sizeof(bool) * (tab->ncols + 1));
	r->send = palloc0(sizeof(bool) * (tab->ncols + 1));
}

static void
init_batch(Reconcile *rc, Jsonb *key, SrEventBatch *batch)
{
	memset(batch, 0, sizeof(*batch));
	batch->relid = rc->tab->relid;
	batch->key = key;
	batch->source = rc->call.source;
	batch->has_changed_at = true;
	batch->changed_at = rc->captured_at;
	batch->received_at = rc->call.received_at;
}

static void
repair_row(Reconcile *rc, SrImage *img, const Datum *L, const bool *Lnull,
		   const SrShadowRow *lrow, Repair *r)
{
	SrTable    *tab = rc->tab;
	MemoryContext cxt = CurrentMemoryContext;
	SrEventBatch batch;
	ListCell   *lc;
	bool		any_take = r->take_record || r->review != NIL;
	bool		any_send = r->send_row || r->send_delete;
	SrImage    *part = img;
	int			c;

	if (r->acted == NIL)
		return;
	for (c = 0; c < tab->ncols; c++)
	{
		any_take |= r->take[c];
		any_send |= r->send[c];
	}
	if (any_take)
	{
		SrApplyResult res;
		SrReviewIds reviews = {0, 0, NULL};

		rc->call.peek = false;
		if (r->take_record)
		{
			/* found again as apply() finds it: its key made, its record id linked */
			part = palloc(sizeof(SrImage));
			sr_parse_image(&rc->call, part);
		}
		else
		{
			part = sr_copy_image(tab, img);
			part->npresent = 0;
			for (c = 0; c < tab->ncols; c++)
				if (!tab->cols[c].is_key)
				{
					part->present[c] = r->take[c];
					part->npresent += r->take[c];
				}
			part->screened = r->review;
		}
		memset(&res, 0, sizeof(res));
		sr_apply_image(&rc->call, part, &res, &reviews);
		rc->call.peek = true;
		MemoryContextSwitchTo(cxt);
		/* decided again under the row's lock: a later change may have come */
		if (res.outcome != NULL && strcmp(res.outcome, "stale") == 0)
			foreach(lc, r->acted)
			{
				Difference *d = (Difference *) lfirst(lc);

				if (d->col >= 0 ? r->take[d->col] : r->take_record)
					d->reason = psprintf("%s; repaired, it was stale: %s had sent a later change, nothing was taken",
										 d->reason, rc->call.source);
			}
	}
	if (any_send)
		sr_outbox_queue(tab, img->key, rc->call.source, r->send_delete,
						r->send_delete ? NULL : sr_row_object(tab, L, Lnull, r->send_row ? NULL : r->send),
						lrow != NULL && lrow->found ? lrow->version : NULL, "reconcile");
	init_batch(rc, part->key, &batch);
	if (r->review_row)
	{
		Difference *d = (Difference *) linitial(r->acted);
		int64		id = sr_review_row_gone(&rc->call, img->keyvals, img->key, d->reason, &batch);

		d->reason = id == 0 ? psprintf("%s; repaired, the row was gone", d->reason)
			: psprintf("%s; repaired: review item %lld", d->reason, (long long) id);
	}
	foreach(lc, r->acted)
		log_difference(rc, &batch, (Difference *) lfirst(lc));
	sr_events_flush(&batch);
}

/*
 * A record of a row that is not here: inserted, unless the row was deleted
 * here -- then as apply() decides a change crossing a delete.
 */
static void
absent_row(Reconcile *rc, SrImage *img, const SrRowState *st, Difference *d, Repair *r)
{
	const SrTable *tab = rc->tab;
	const SrShadowRow *srow = &st->bases[rc->call.sidx];
	const SrShadowRow *lrow = &st->local;
	const char *src = rc->call.source;
	bool		any_change = false;
	int			c;

	d->col = -1;
	d->external_value = sr_row_object(tab, img->values, img->nulls, img->present);
	if (!lrow->found || !lrow->deleted ||
		(lrow->deleted_by != NULL && strcmp(lrow->deleted_by, src) == 0))
	{
		/* never here, or the source deleted it itself and has it again */
		d->action = "insert_local";
		d->reason = psprintf("%s has the record; this table has no row for it", src);
		r->take_record = true;
		return;
	}
	for (c = 0; c < tab->ncols; c++)
		if (!tab->cols[c].is_key && img->present[c] &&
			(srow->deleted || !srow->known[c] ||
			 !sr_datum_equal(&tab->cols[c], img->values[c], img->nulls[c],
							 srow->values[c], srow->nulls[c])))
			any_change = true;
	d->reason = psprintf("%s deleted the row at %s; %s", lrow->deleted_by ? lrow->deleted_by : SR_LOCAL,
						 sr_time_text(lrow->deleted_at),
						 any_change ? psprintf("%s changed the record since", src)
						 : psprintf("%s still has the record as it was", src));
	if (!any_change || tab->on_delete_conflict == SR_DELCONF_DELETE)
	{
		d->action = "update_external";
		d->reason = psprintf("%s%s", d->reason, any_change ? "; on_delete_conflict = delete" : "");
		r->send_delete = true;
	}
	else if (tab->on_delete_conflict == SR_DELCONF_KEEP)
	{
		d->action = "insert_local";
		d->reason = psprintf("%s; on_delete_conflict = keep brings it back", d->reason);
		r->take_record = true;
	}
	else
	{
		d->action = "manual_review";
		d->reason = psprintf("%s; a person decides", d->reason);
		r->take_record = true;	/* the engine opens the review */
	}
}

/*
 * The engine decides a group again when repairing: a group it takes, or
 * leaves to a person, gets every member the snapshot has, as apply() gets
 * the whole record -- a member it were not given would count at its base
 * value.
 */
static void
take_whole_groups(const SrTable *tab, SrGroupDecision **by_col, const SrImage *img, Repair *r)
{
	int			g;
	int			k;

	for (g = 0; g < tab->ngroups; g++)
	{
		const SrGroup *grp = &tab->groups[g];
		bool		taken = false;

		if (by_col[grp->cols[0]] == NULL)
			continue;			/* not decided as one */
		for (k = 0; k < grp->ncols; k++)
			taken |= r->take[grp->cols[k]];
		for (k = 0; taken && k < grp->ncols; k++)
			r->take[grp->cols[k]] |= img->present[grp->cols[k]];
	}
}

/* One snapshot record against the local row. */
static void
reconcile_record(Reconcile *rc, SrImage *img)
{
	SrTable    *tab = rc->tab;
	int			ncols = tab->ncols;
	Datum	   *L = palloc0(sizeof(Datum) * (ncols + 1));
	bool	   *Lnull = palloc0(sizeof(bool) * (ncols + 1));
	SrRowState	st;
	SrShadowRow *srow;
	Repair		r;
	List	   *diffs = NIL;
	SrGroupDecision **by_group = NULL;
	ListCell   *lc;
	bool		found;
	bool		live;
	int			c;

	init_repair(tab, &r);
	if (img->unkeyed)
	{
		/* found by neither record id nor match_on: a new row */
		Difference *d = palloc0(sizeof(Difference));

		d->col = -1;
		d->external_value = sr_row_object(tab, img->values, img->nulls, img->present);
		d->action = "insert_local";
		d->reason = psprintf("%s has the record%s; no row here has it", rc->call.source,
							 img->external_id ? psprintf(" %s", img->external_id) : "");
		emit(rc, NULL, d);
		r.take_record = true;
		r.acted = list_make1(d);
		if (rc->repair)
			repair_row(rc, img, L, Lnull, NULL, &r);
		return;
	}
	found = sr_row_read(tab, img->keyvals, L, Lnull);
	sr_shadow_load(tab, img->keyvals, &st);
	srow = &st.bases[rc->call.sidx];
	live = live_entry(rc, img->key);

	if (!found)
	{
		Difference *d = palloc0(sizeof(Difference));

		absent_row(rc, img, &st, d, &r);
		diffs = lappend(diffs, d);
	}
	else
	{
		SrColumnInput *in = palloc0(sizeof(SrColumnInput) * (ncols + 1));
		SrColumnDecision *dec = palloc0(sizeof(SrColumnDecision) * (ncols + 1));
		Datum	   *M = palloc0(sizeof(Datum) * (ncols + 1));
		bool	   *Mnull = palloc0(sizeof(bool) * (ncols + 1));

		/* values apply() sets aside: no mapping, or failing a check */
		sr_screen_invalid(&rc->call, img, L, Lnull, true, srow);
		/* each column on its own, then groups as one, as apply() decides */
		for (c = 0; c < ncols; c++)
		{
			if (tab->cols[c].is_key || !img->present[c])
				continue;
			in[c].present = true;
			sr_column_input(&rc->call, c, img->values[c], img->nulls[c], L[c], Lnull[c], srow,
							&st.local, &rc->incoming, &in[c]);
			sr_decide(&tab->cols[c], &in[c], &dec[c]);
		}
		if (tab->ngroups > 0)
			by_group = decide_groups(rc, img, L, Lnull, srow, &st.local, dec, M, Mnull);
		for (c = 0; c < ncols; c++)
		{
			const SrColumn *col = &tab->cols[c];
			Difference *d;

			if (col->is_key || !img->present[c] ||
				sr_datum_equal(col, img->values[c], img->nulls[c], L[c], Lnull[c]))
				continue;
			d = palloc0(sizeof(Difference));
			d->col = c;
			d->local_value = sr_datum_to_jsonb(col, L[c], Lnull[c]);
			d->external_value = sr_datum_to_jsonb(col, img->values[c], img->nulls[c]);
			if (by_group != NULL && by_group[c] != NULL)
				group_difference(tab, by_group[c], c, M, Mnull, d);
			else
				decide_column(rc, img->key, c, img->values[c], img->nulls[c], L[c], Lnull[c],
							  srow, &in[c], &dec[c], d);
			diffs = lappend(diffs, d);
		}
		foreach(lc, img->screened)
		{
			SrScreened *sc = (SrScreened *) lfirst(lc);
			Difference *d = palloc0(sizeof(Difference));

			d->col = sc->col;
			d->local_value = sr_datum_to_jsonb(&tab->cols[sc->col], L[sc->col], Lnull[sc->col]);
			d->external_value = sc->value;
			/* refused, the source hears the row's value; else a person decides */
			d->action = sc->review ? "manual_review" : "update_external";
			d->reason = sc->rule;
			d->screened = sc;
			diffs = lappend(diffs, d);
		}
	}

	foreach(lc, diffs)
	{
		Difference *d = (Difference *) lfirst(lc);
		char	   *why = settling(rc, srow, &st.local, d->col, live);

		if (why != NULL)
		{
			d->action = "settling";
			d->reason = why;
		}
		else
		{
			r.acted = lappend(r.acted, d);
			/* the engine decides again what to take and what to hold */
			if (d->col >= 0 && strcmp(d->action, "update_external") == 0)
				r.send[d->col] = true;
			else if (d->screened != NULL)
				r.review = lappend(r.review, d->screened);
			else if (d->col >= 0)
				r.take[d->col] = true;
		}
		emit(rc, img->key, d);
	}
	if (by_group != NULL)
		take_whole_groups(tab, by_group, img, &r);
	if (rc->repair)
		repair_row(rc, img, L, Lnull, &st.local, &r);
}

/* A row of this table the snapshot has no record of. */
static void
reconcile_missing(Reconcile *rc, Datum *L, bool *Lnull)
{
	SrTable    *tab = rc->tab;
	SrRowState	st;
	SrShadowRow *srow;
	Difference *d;
	Repair		r;
	SrImage		img;
	char	   *why;
	int			i;

	sr_init_image(tab, &img);
	for (i = 0; i < tab->nkeys; i++)
		img.keyvals[i] = L[tab->keys[i]];
	if (was_seen(rc, img.keyvals))
		return;
	img.key = sr_build_key(tab, img.keyvals, NULL);
	sr_shadow_load(tab, img.keyvals, &st);
	srow = &st.bases[rc->call.sidx];

	init_repair(tab, &r);
	d = palloc0(sizeof(Difference));
	d->col = -1;
	d->local_value = sr_row_object(tab, L, Lnull, NULL);
	if (srow->found && !srow->deleted)
	{
		/* left to a person: a partial snapshot would delete every row it left out */
		d->action = "manual_review";
		r.review_row = true;
		d->reason = psprintf("%s held the row (its base, received at %s) but its snapshot has no record of it: deleted there, or not captured",
							 rc->call.source, sr_time_text(srow->received_at));
	}
	else
	{
		d->action = "insert_external";
		d->reason = srow->found
			? psprintf("%s deleted the record at %s; this table kept the row",
					   rc->call.source, sr_time_text(srow->deleted_at))
			: psprintf("%s has no record of the row", rc->call.source);
		r.send_row = true;
	}
	why = settling(rc, srow, &st.local, -1, live_entry(rc, img.key));
	if (why != NULL)
	{
		d->action = "settling";
		d->reason = why;
		r.send_row = false;
		r.review_row = false;
	}
	else
		r.acted = list_make1(d);
	emit(rc, img.key, d);
	if (rc->repair)
		repair_row(rc, &img, L, Lnull, &st.local, &r);
}

/*
 * The key of a record that cannot be taken as a whole, read alone, for
 * sr_try_subxact(): *(Jsonb **) arg, NULL when the record names no row here.
 * The row is seen, so that it is not also listed as missing from the
 * snapshot, which would have repair send the row to a source holding it.
 */
static void
read_record_key(void *arg)
{
	Record	   *r = (Record *) arg;
	SrImage		img;

	r->rc->call.keys_only = true;
	read_record(r->rc, r->tup, r->td, &img);
	r->rc->call.keys_only = false;
	if (img.unkeyed)
		return;
	r->rc->record_key = img.keyvals;
	*(Jsonb **) r->arg = img.key;
}

/* Keep the key of the record just read (rc->record_key) with record i. */
static void
keep_key(Reconcile *rc, int i)
{
	const SrTable *tab = rc->tab;
	MemoryContext old;
	int			k;

	if (rc->record_key == NULL)
		return;
	old = MemoryContextSwitchTo(rc->fetchcxt);
	rc->keys[i] = palloc(sizeof(Datum) * (tab->nkeys + 1));
	for (k = 0; k < tab->nkeys; k++)
		rc->keys[i][k] = datumCopy(rc->record_key[k], tab->cols[tab->keys[k]].typbyval,
								   tab->cols[tab->keys[k]].typlen);
	MemoryContextSwitchTo(old);
}

/* Begin record i again: nothing of an earlier attempt stays. */
static void
begin_record(Reconcile *rc, int i)
{
	rc->current = i;
	rc->pending[i] = NIL;
	rc->keys[i] = NULL;
	rc->record_key = NULL;
	rc->call.peek = true;
	rc->call.keys_only = false;
	MemoryContextReset(rc->rowcxt);
}

/* Snapshot record i against its row (sr_runs()), in rowcxt */
static void
record_item(void *arg, int i)
{
	Reconcile  *rc = (Reconcile *) arg;
	MemoryContext old;
	SrImage		img;

	begin_record(rc, i);
	old = MemoryContextSwitchTo(rc->rowcxt);
	read_record(rc, rc->records[i], rc->record_td, &img);
	if (!img.unkeyed)
		rc->record_key = img.keyvals;
	reconcile_record(rc, &img);
	keep_key(rc, i);
	MemoryContextSwitchTo(old);
}

/*
 * Snapshot record i cannot be read, or the table refused its repair: left
 * to a person, under its key when its key can be read alone.
 */
static void
record_aside(void *arg, int i, ErrorData *edata)
{
	Reconcile  *rc = (Reconcile *) arg;
	MemoryContext old;
	ErrorData  *keyerr;
	Difference	d;
	Jsonb	   *key = NULL;
	Record		r = {rc, rc->records[i], rc->record_td, NULL, &key};
	bool		isnull;

	begin_record(rc, i);
	old = MemoryContextSwitchTo(rc->rowcxt);
	if (sr_try_subxact(read_record_key, &r, bad_record, &keyerr))
		keep_key(rc, i);
	memset(&d, 0, sizeof(d));
	d.col = -1;
	d.external_value = DatumGetJsonbPCopy(SPI_getbinval(rc->records[i], rc->record_td, 1, &isnull));
	d.action = "manual_review";
	d.reason = psprintf("%s's record cannot be taken as it is: %s", rc->call.source, edata->message);
	emit(rc, key, &d);
	MemoryContextSwitchTo(old);
}

/*
 * The snapshot records fetched, each against its row, in runs (a repair
 * takes a subtransaction id per run, not per record); then the rows of the
 * result each left, and their keys noted as seen.
 */
static void
reconcile_fetched(Reconcile *rc, SPITupleTable *tt, void *arg)
{
	SrRuns	   *runs = (SrRuns *) arg;
	MemoryContext old = MemoryContextSwitchTo(rc->fetchcxt);
	int			n = (int) tt->numvals;
	ListCell   *lc;
	int			i;

	rc->records = tt->vals;
	rc->record_td = tt->tupdesc;
	rc->pending = palloc0(sizeof(List *) * n);
	rc->keys = palloc0(sizeof(Datum *) * n);
	sr_runs(runs, 0, n);
	for (i = 0; i < n; i++)
	{
		foreach(lc, rc->pending[i])
			tuplestore_puttuple(rc->out, (HeapTuple) lfirst(lc));
		if (rc->keys[i] != NULL)
			note_seen(rc, rc->keys[i]);
	}
	rc->pending = NULL;
	rc->keys = NULL;
	MemoryContextSwitchTo(old);
	MemoryContextReset(rc->fetchcxt);
}

static void
reconcile_missing_row(Reconcile *rc, HeapTuple tup, TupleDesc td, void *arg)
{
	Datum	   *L;
	bool	   *Lnull;

	read_row(rc->tab, tup, td, &L, &Lnull);
	reconcile_missing(rc, L, Lnull);
}

PG_FUNCTION_INFO_V1(reconcile);
Datum
reconcile(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Reconcile	rc;
	SrRuns		runs = {&rc, record_item, bad_record, record_aside, SR_RUN_MIN};
	Interval   *settle;
	TimestampTz captured_at;
	bool		repair;
	char	   *source;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) ||
		PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the arguments of reconcile() must not be null"),
				 errhint("Pass the tracked table, the source system, the table holding its records, when they were captured, the settle time and whether to repair.")));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	captured_at = PG_GETARG_TIMESTAMPTZ(3);
	settle = PG_GETARG_INTERVAL_P(4);
	repair = PG_GETARG_BOOL(5);
	if (TIMESTAMP_NOT_FINITE(captured_at))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("captured_at of the snapshot of system \"%s\" is not a finite time", source),
				 errhint("Pass the time the source's records were read.")));
	if (repair)
		PreventCommandIfReadOnly("sync_resolve.reconcile(repair => true)");
	InitMaterializedSRF(fcinfo, 0);

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	begin_reconcile(&rc, PG_GETARG_OID(0), source);
	if (repair && pg_class_aclmask(rc.tab->relid, GetUserId(), ACL_INSERT | ACL_UPDATE,
								   ACLMASK_ALL) != (ACL_INSERT | ACL_UPDATE))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", rc.tab->display_name),
				 errhint("Repairing writes the table as the calling role, which needs INSERT and UPDATE on it.")));
	rc.out = rsinfo->setResult;
	rc.td = rsinfo->setDesc;
	rc.repair = repair;
	rc.captured_at = captured_at;
	rc.settle_from = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
															 TimestampTzGetDatum(captured_at),
															 IntervalPGetDatum(settle)));
	rc.call.has_changed_at = true;
	rc.call.changed_at = captured_at;
	rc.incoming.system = rc.call.source;
	rc.incoming.priority = rc.call.sys->priority;
	rc.incoming.changed_at = captured_at;
	rc.incoming.since_tracking = false;

	/* the source's records, each against its row; then rows it has no record of */
	begin_seen(&rc);
	rc.fetchcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_resolve reconcile records",
										ALLOCSET_DEFAULT_SIZES);
	each_fetch(&rc, open_snapshot(PG_GETARG_OID(2), rc.tab), reconcile_fetched, &runs);
	end_seen(&rc);
	each_row(&rc, open_rows(&rc, SR_ROWS_IN_KEY_ORDER), reconcile_missing_row, NULL);

	tuplesort_end(rc.seen.sort);
	ExecDropSingleTupleTableSlot(rc.seen.slot);
	MemoryContextDelete(rc.fetchcxt);
	MemoryContextDelete(rc.rowcxt);
	sr_table_release(rc.rel);
	SPI_finish();
	sr_cache_leave();
	return (Datum) 0;
}
