/*-------------------------------------------------------------------------
 *
 * replication.c
 *		Writes of a logical-replication apply worker, held until commit, and
 *		the echoes between PostgreSQL nodes.
 *
 * The time of a change from another PostgreSQL node is the commit time of
 * its transaction there.  PostgreSQL 15's apply worker learns that time
 * from the BEGIN message but keeps it to itself: replorigin_session_origin_
 * timestamp is set only just before the local commit.  So a row an apply
 * worker updates is not decided when the statement runs (latest and
 * earliest need the time, and so does knowing an echo): the before trigger
 * keeps the row's image here, skips the statement, and the image is
 * applied at commit, as apply() would apply it, with the origin's commit
 * time as its changed_at.
 *
 * The hook that runs at commit is a deferred constraint trigger on an
 * unlogged internal table, sync_resolve._at_commit: the first image of a
 * transaction inserts one row there, and its trigger fires as the
 * transaction commits (or prepares), after the time is set.
 *
 * A new row is inserted at once (later statements of the same remote
 * transaction may update it); only the times it was written with are set
 * to the commit time then.  A delete goes at once too, and drops what is
 * held for the row when it goes ahead; a TRUNCATE drops what is held for
 * the table.  Several images of one row merge, later ones winning.
 *
 * At commit the images are applied in the order they were first held, each
 * in a subtransaction: one the table refuses (a unique value another held
 * row gives up later in the list, say) waits for the others and is tried
 * again; one still refused goes to review.  A replication stream never
 * stops on a conflict.
 *
 * Holding happens only in an apply worker's top transaction: the initial
 * copy of a table sync is timed by the clock (the origin sends no time),
 * and a write in a subtransaction (user code in the worker) is applied at
 * once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/commit_ts.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "replication/logicalworker.h"
#include "replication/origin.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "sync_resolve.h"

/* One row with something to do at commit. */
typedef struct SrHeld
{
	Oid			relid;
	char	   *source;
	Jsonb	   *key;
	int			ncols;			/* the table's shape when it was held */
	SrImage    *image;			/* NULL: nothing to apply */
	bool		retime;			/* inserted by the statement: set its times */
	TimestampTz written_at;		/* ... which it wrote with this time */
	bool		dropped;		/* deleted or truncated after */
	SubTransactionId dropped_in;	/* ... in this subtransaction */
	char	   *refused;		/* the table's error, when it refused the image */
} SrHeld;

/* Rows by (table, hash of the key); the list holds the rows of one hash. */
typedef struct SrHeldSlot
{
	Oid			relid;
	uint32		hash;
	List	   *rows;			/* SrHeld * */
} SrHeldSlot;

typedef struct SrHeldKey
{
	Oid			relid;
	uint32		hash;
} SrHeldKey;

static MemoryContext held_cxt = NULL;
static HTAB *held_hash = NULL;
static List *held_rows = NIL;	/* in the order they were first held */
static bool marker_written = false;
static XLogRecPtr held_origin_lsn = InvalidXLogRecPtr;
static bool callbacks_registered = false;

static SPIPlanPtr marker_insert_plan = NULL;
static SPIPlanPtr marker_delete_plan = NULL;

/* The transaction's memory goes: so does everything held. */
static void
held_reset(void *arg)
{
	held_cxt = NULL;
	held_hash = NULL;
	held_rows = NIL;
	marker_written = false;
}

/* A drop made in a subtransaction that rolls back is undone. */
static void
held_subxact(SubXactEvent event, SubTransactionId mySubid,
			 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (held_cxt == NULL ||
		(event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB))
		return;
	foreach(lc, held_rows)
	{
		SrHeld	   *h = lfirst(lc);

		if (!h->dropped || h->dropped_in != mySubid)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			h->dropped = false;
		else
			h->dropped_in = parentSubid;
	}
}

/*
 * Are this transaction's writes from a source decided at commit?  In an
 * apply worker's top transaction, but for a table sync's initial copy.
 */
bool
sr_hold_until_commit(void)
{
	return IsLogicalWorker() && GetCurrentTransactionNestLevel() == 1;
}

static uint32
key_hash(Jsonb *key)
{
	return DatumGetUInt32(DirectFunctionCall1(jsonb_hash, JsonbPGetDatum(key)));
}

static bool
keys_same(Jsonb *a, Jsonb *b)
{
	return DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(a), JsonbPGetDatum(b)));
}

static void
held_init(void)
{
	MemoryContextCallback *cb;
	HASHCTL		ctl;

	if (!callbacks_registered)
	{
		RegisterSubXactCallback(held_subxact, NULL);
		callbacks_registered = true;
	}
	held_cxt = AllocSetContextCreate(TopTransactionContext, "sync_resolve held rows",
									 ALLOCSET_DEFAULT_SIZES);
	cb = MemoryContextAlloc(held_cxt, sizeof(MemoryContextCallback));
	cb->func = held_reset;
	cb->arg = NULL;
	MemoryContextRegisterResetCallback(held_cxt, cb);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(SrHeldKey);
	ctl.entrysize = sizeof(SrHeldSlot);
	ctl.hcxt = held_cxt;
	held_hash = hash_create("sync_resolve held rows", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	held_rows = NIL;
}

/* What is held for a row, made when asked and absent. */
static SrHeld *
held_row(const SrTable *tab, const char *source, Jsonb *key, bool create)
{
	SrHeldKey	hk;
	SrHeldSlot *slot;
	SrHeld	   *h;
	bool		found;
	ListCell   *lc;
	MemoryContext old;

	if (held_hash == NULL)
	{
		if (!create)
			return NULL;
		held_init();
	}
	memset(&hk, 0, sizeof(hk));
	hk.relid = tab->relid;
	hk.hash = key_hash(key);
	slot = hash_search(held_hash, &hk, create ? HASH_ENTER : HASH_FIND, &found);
	if (slot == NULL)
		return NULL;
	if (!found)
		slot->rows = NIL;
	foreach(lc, slot->rows)
	{
		h = lfirst(lc);
		if (!h->dropped && strcmp(h->source, source) == 0 && keys_same(h->key, key))
			return h;
	}
	if (!create)
		return NULL;

	old = MemoryContextSwitchTo(held_cxt);
	h = palloc0(sizeof(SrHeld));
	h->relid = tab->relid;
	h->source = pstrdup(source);
	h->key = (Jsonb *) PG_DETOAST_DATUM_COPY(JsonbPGetDatum(key));
	h->ncols = tab->ncols;
	slot->rows = lappend(slot->rows, h);
	held_rows = lappend(held_rows, h);
	MemoryContextSwitchTo(old);
	return h;
}

/*
 * Once per transaction: the row whose deferred trigger runs at commit.  The
 * origin LSN then tells, at commit, whether the worker set this
 * transaction's origin time (it sets both just before committing).
 */
static void
write_marker(void)
{
	if (marker_written)
		return;
	if (marker_insert_plan == NULL)
		marker_insert_plan = sr_prepare_kept("INSERT INTO sync_resolve._at_commit DEFAULT VALUES",
											 0, NULL, true);
	sr_spi_execute(marker_insert_plan, NULL, NULL, true, false, 0, SPI_OK_INSERT);
	marker_written = true;
	held_origin_lsn = replorigin_session_origin_lsn;
}

/*
 * Hold an apply worker's image of a row until commit; a later image of the
 * same row merges into it.  SPI is connected.
 */
void
sr_hold_image(const SrTable *tab, const char *source, const SrImage *img)
{
	SrHeld	   *h = held_row(tab, source, img->key, true);
	MemoryContext old = MemoryContextSwitchTo(held_cxt);

	if (h->image == NULL)
		h->image = sr_copy_image(tab, img);
	else
		sr_merge_image(tab, h->image, img);
	MemoryContextSwitchTo(old);
	write_marker();
}

/* A row an apply worker inserted at `written_at`: its times become the commit time. */
void
sr_hold_retime(const SrTable *tab, const char *source, Jsonb *key, TimestampTz written_at)
{
	SrHeld	   *h = held_row(tab, source, key, true);

	h->retime = true;
	h->written_at = written_at;
	write_marker();
}

static void
drop_held(SrHeld *h)
{
	h->dropped = true;
	h->dropped_in = GetCurrentSubTransactionId();
}

/* The row was deleted: nothing held for it is to happen. */
void
sr_hold_drop(const SrTable *tab, const char *source, Jsonb *key)
{
	SrHeld	   *h = held_row(tab, source, key, false);

	if (h != NULL)
		drop_held(h);
}

/* ------------------------------------------------------------------------
 * At commit
 * ------------------------------------------------------------------------
 */

/* Set the times an inserted row was written with to the commit time. */
static void
retime(SrTable *tab, SrHeld *h, TimestampTz t)
{
	int			sidx = sr_table_system_index(tab, h->source);
	Datum	   *keyvals = palloc(sizeof(Datum) * (tab->nkeys + 1));
	SrRowState	st;
	SrShadowRow *srow;
	int			c;

	sr_parse_key(tab, h->key, h->source, "the key of a held row", keyvals);
	sr_shadow_load(tab, keyvals, &st);
	if (!st.local.found || st.local.deleted)
		return;
	for (c = 0; c < tab->ncols; c++)
	{
		if (st.local.col_writer[c] == NULL ||
			strcmp(st.local.col_writer[c], h->source) != 0 ||
			st.local.col_changed_at[c] != h->written_at)
			continue;
		st.local.col_changed_at[c] = t;
	}
	sr_note_seen(&st.local, t);
	sr_shadow_local_write(tab, keyvals, &st.local);
	srow = &st.bases[sidx];
	if (srow->found && !srow->deleted &&
		(!srow->has_changed_at || srow->changed_at < t))
	{
		srow->has_changed_at = true;
		srow->changed_at = t;
		sr_shadow_write(tab, keyvals, h->source, srow);
	}
}

static void
init_held_call(SrApplyCall *call, SrTable *tab, SrHeld *h, TimestampTz t)
{
	sr_init_call(call, tab, h->source);
	call->has_changed_at = true;
	call->changed_at = t;
	call->in_order = true;
	call->payload = sr_row_object(tab, h->image->values, h->image->nulls, h->image->present);
}

/*
 * Apply one held image in a subtransaction.  False, with h->refused set,
 * when the table refused it; any other error goes on up.
 */
static bool
try_held(SrTable *tab, SrHeld *h, TimestampTz t)
{
	SrApplyCall call;
	SrApplyResult res;
	SrReviewIds reviews = {0, 0, NULL};
	char	   *why;
	Relation	rel = sr_table_hold(tab);	/* custom functions run: see there */
	bool		ok;

	init_held_call(&call, tab, h, t);
	memset(&res, 0, sizeof(res));
	ok = sr_try_apply_image(&call, h->image, &res, &reviews, &why);
	sr_table_release(rel);
	if (!ok)
		h->refused = MemoryContextStrdup(held_cxt, why);
	return ok;
}

/* The table, as it is now, of a held row; NULL when nothing of it holds. */
static SrTable *
held_table(SrHeld *h)
{
	SrTable    *tab;

	if (h->dropped)
		return NULL;
	tab = sr_table_get(h->relid, true, RowExclusiveLock);
	if (tab == NULL || tab->ncols != h->ncols || sr_table_system_index(tab, h->source) < 0)
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sync_resolve dropped a change from \"%s\" to %s %s",
						h->source, tab ? tab->display_name : "a table no longer tracked",
						sr_jsonb_value_text(h->key)),
				 errdetail("The table was untracked, changed, or stopped syncing with \"%s\" before the change committed.",
						   h->source)));
		return NULL;
	}
	return tab;
}

/* lappend with the list in cxt: rowcxt below is reset for every row */
static List *
lappend_in(MemoryContext cxt, List *list, void *datum)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	list = lappend(list, datum);
	MemoryContextSwitchTo(old);
	return list;
}

/*
 * The deferred trigger on sync_resolve._at_commit: everything held is
 * decided now, with the origin's commit time.
 */
PG_FUNCTION_INFO_V1(at_commit_trigger);
Datum
at_commit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	List	   *rows = held_rows;
	List	   *refused = NIL;
	TimestampTz t;
	MemoryContext rowcxt;
	MemoryContext old;
	ListCell   *lc;
	Datum		tid;
	bool		progress;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		RelationGetRelid(trigdata->tg_relation) != sr_internal_relid("_at_commit"))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("at_commit_trigger: must be fired AFTER INSERT ... FOR EACH ROW on sync_resolve._at_commit")));

	/*
	 * The worker sets the origin's commit time (and LSN) just before it
	 * commits; when the LSN did not move, this transaction has no origin
	 * time (a table sync's copy): the clock stands in.
	 */
	t = (replorigin_session_origin_lsn != held_origin_lsn &&
		 replorigin_session_origin_timestamp != 0)
		? replorigin_session_origin_timestamp : GetCurrentTimestamp();

	/* what the writes below hold (none should) waits for another commit */
	held_rows = NIL;
	held_hash = NULL;
	marker_written = false;

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_resolve held row",
								   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(rowcxt);

	/* rows inserted by the statements: their times */
	foreach(lc, rows)
	{
		SrHeld	   *h = lfirst(lc);
		SrTable    *tab;

		MemoryContextReset(rowcxt);
		if (h->retime && (tab = held_table(h)) != NULL)
			retime(tab, h, t);
	}

	/* the images, in order; one refused waits for the others */
	foreach(lc, rows)
	{
		SrHeld	   *h = lfirst(lc);
		SrTable    *tab;

		MemoryContextReset(rowcxt);
		if (h->image != NULL && (tab = held_table(h)) != NULL && !try_held(tab, h, t))
			refused = lappend_in(old, refused, h);
	}
	do
	{
		List	   *again = NIL;

		progress = false;
		foreach(lc, refused)
		{
			SrHeld	   *h = lfirst(lc);
			SrTable    *tab;

			MemoryContextReset(rowcxt);
			if ((tab = held_table(h)) == NULL)
				continue;
			if (try_held(tab, h, t))
				progress = true;
			else
				again = lappend_in(old, again, h);
		}
		refused = again;
	} while (progress && refused != NIL);

	/* still refused: a person decides */
	foreach(lc, refused)
	{
		SrHeld	   *h = lfirst(lc);
		SrTable    *tab;
		SrApplyCall call;
		SrApplyResult res;
		SrReviewIds reviews = {0, 0, NULL};
		Relation	rel;

		MemoryContextReset(rowcxt);
		if ((tab = held_table(h)) == NULL)
			continue;
		rel = sr_table_hold(tab);
		init_held_call(&call, tab, h, t);
		memset(&res, 0, sizeof(res));
		sr_apply_refused(&call, h->image, h->refused, &res, &reviews);
		sr_table_release(rel);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(rowcxt);

	if (marker_delete_plan == NULL)
	{
		Oid			types[1] = {TIDOID};

		marker_delete_plan = sr_prepare_kept("DELETE FROM sync_resolve._at_commit WHERE ctid = $1",
											 1, types, true);
	}
	tid = PointerGetDatum(&trigdata->tg_trigtuple->t_self);
	sr_spi_execute(marker_delete_plan, &tid, NULL, true, false, 0, SPI_OK_DELETE);
	SPI_finish();
	sr_cache_leave();
	return PointerGetDatum(NULL);
}

/*
 * BEFORE TRUNCATE on a tracked table or one of its partitions: each row is
 * recorded as deleted here, and what an apply worker held for it goes with
 * it (sr_truncate_rows()).
 */
PG_FUNCTION_INFO_V1(truncate_trigger);
Datum
truncate_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("truncate_trigger: must be fired BEFORE TRUNCATE")));
	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	sr_truncate_rows(trigdata->tg_relation);
	SPI_finish();
	sr_cache_leave();
	return PointerGetDatum(NULL);
}

/* ------------------------------------------------------------------------
 * Echoes between PostgreSQL nodes
 *
 * PostgreSQL 15 sends every change on, the ones its apply worker made
 * included: this node's own change comes back from each peer that applied
 * it, and a peer's change reaches it once directly and again through every
 * other node.  Each of those arrives as the sending node's whole row, with
 * the first node's commit time (a relay keeps it).  The row remembers the
 * times of the changes it already has; an image timed like one of them
 * only tells what the sender now holds: its base moves, nothing else
 * happens.  Without that, a sum_delta column would count a change twice.
 * ------------------------------------------------------------------------
 */

/* How many change times a row remembers (its own transactions too). */
#define SR_SEEN_MAX 128

static bool
table_has_peer(const SrTable *tab)
{
	int			i;

	for (i = 0; i < tab->nsystems; i++)
		if (sr_system_is_peer(tab->systems[i]))
			return true;
	return false;
}

/*
 * Remember v in a list of at most SR_SEEN_MAX values, the oldest forgotten;
 * false when it is there already.
 */
static bool
remember(int64 **list, int *n, int64 v)
{
	int64	   *copy;
	int			keep;
	int			i;

	for (i = 0; i < *n; i++)
		if ((*list)[i] == v)
			return false;
	keep = Min(*n, SR_SEEN_MAX - 1);
	copy = palloc(sizeof(int64) * (keep + 1));
	if (keep > 0)
		memcpy(copy, *list + (*n - keep), sizeof(int64) * keep);
	copy[keep] = v;
	*list = copy;
	*n = keep + 1;
	return true;
}

/* The row has the change made at t. */
void
sr_note_seen(SrShadowRow *lrow, TimestampTz t)
{
	if (remember(&lrow->seen_at, &lrow->nseen, t))
		lrow->dirty = true;
}

/*
 * This node's own transactions that wrote the row become the commit times
 * they have now (one still running stays; an aborted one, or one too old
 * to look up, goes).
 */
static void
resolve_own_xids(SrShadowRow *lrow)
{
	FullTransactionId next = ReadNextFullTransactionId();
	int			kept = 0;
	int			i;

	if (lrow->nown == 0)
		return;
	for (i = 0; i < lrow->nown; i++)
	{
		FullTransactionId fxid = FullTransactionIdFromU64((uint64) lrow->own_xids[i]);
		TransactionId xid = XidFromFullTransactionId(fxid);
		TimestampTz ts;
		RepOriginId node;

		/* a 32-bit id means nothing any more two billion transactions on */
		if (U64FromFullTransactionId(next) - U64FromFullTransactionId(fxid) >= (uint64) 1 << 31)
			continue;
		if (TransactionIdIsInProgress(xid))
			lrow->own_xids[kept++] = lrow->own_xids[i];
		else if (track_commit_timestamp && TransactionIdGetCommitTsData(xid, &ts, &node))
			sr_note_seen(lrow, ts);
	}
	if (kept != lrow->nown)
	{
		lrow->nown = kept;
		lrow->dirty = true;
	}
}

/*
 * A transaction of this node writes a row that peers will send back:
 * remember it; its commit time is looked up later.  An apply worker's
 * transaction too, but for its origin time (known already): under
 * two-phase commit, the time the peers see is the COMMIT PREPARED's.
 */
void
sr_note_own_write(const SrTable *tab, SrShadowRow *lrow)
{
	FullTransactionId fxid;

	if (!track_commit_timestamp)
		return;
	fxid = GetTopFullTransactionIdIfAny();
	if (!FullTransactionIdIsValid(fxid) || !table_has_peer(tab))
		return;
	/* what is in the list is committed by now (the row is locked): resolve it */
	resolve_own_xids(lrow);
	if (remember(&lrow->own_xids, &lrow->nown, (int64) U64FromFullTransactionId(fxid)))
		lrow->dirty = true;
}

/* Does the row have the change a peer's image is timed by? */
bool
sr_change_seen(const SrTable *tab, SrShadowRow *lrow, const char *source, TimestampTz t)
{
	static bool warned = false;
	int			i;

	resolve_own_xids(lrow);
	for (i = 0; i < lrow->nseen; i++)
		if (lrow->seen_at[i] == t)
			return true;
	if (!track_commit_timestamp && !warned)
	{
		warned = true;
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sync_resolve cannot recognise this node's own changes coming back from \"%s\" to table %s",
						source, tab->display_name),
				 errdetail("track_commit_timestamp is off: an echo is told only by its values, and a sum_delta column may count a change twice."),
				 errhint("Set track_commit_timestamp = on, and restart, on every node that replicates tracked tables both ways.")));
	}
	return false;
}
