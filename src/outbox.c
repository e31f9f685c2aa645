/*-------------------------------------------------------------------------
 *
 * outbox.c
 *		The outbox: what each external system must learn about each row, and
 *		claim_outbound(), ack_outbound(), fail_outbound() for the integration
 *		code that carries it.
 *
 * Queueing: a local write, a change applied from one system (fanned out to
 * the others, never back to it), a correction the source must hear (its
 * change was refused, kept, merged) and a review decision queue, per target,
 * the columns whose value the target's base does not hold yet.  At most one
 * entry per (row, target) waits (pending, or failed and waiting to be
 * retried): later changes merge into it.  An entry handed out before (a
 * failed one) gets a new idempotency key when its content changes; one never
 * handed out keeps its own, so that the merge touches no indexed column
 * and is a HOT update.  Systems replicated by PostgreSQL itself
 * (a replication_origin) get no entries: replication carries the changes.
 *
 * Carrying: claim_outbound() leases entries FOR UPDATE SKIP LOCKED, so that
 * workers never share one; an expired lease can be claimed again.
 * ack_outbound() marks an entry sent, advances the target's base to what it
 * carried (flagged as sent by us, for echo detection) and records the
 * target's record id.  fail_outbound() schedules a retry with exponential
 * backoff, or marks the entry dead after sync_resolve.max_attempts; an
 * entry whose row has a later change waiting already (queued while it was
 * in flight) hands its changes to that entry and is retired as dead.
 *
 * Locking: ack_outbound() and fail_outbound() read the entry, lock the
 * tracked row (or its key), then lock the entry: the order apply() takes
 * them in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "sync_resolve.h"

int			sr_max_attempts = 10;
int			sr_retry_base_ms = 10000;
int			sr_retry_max_ms = 3600000;

static SPIPlanPtr queue_plan = NULL;
static SPIPlanPtr read_plan = NULL;
static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr sent_plan = NULL;
static SPIPlanPtr identity_plan = NULL;

/*
 * The idempotency key of an entry whose content a change alters: a new one
 * if the entry was handed out before (its target may have seen the old key
 * with the old content), else its own, so that the change touches no
 * indexed column.
 */
#define SR_KEY_AFTER_CHANGE \
	"CASE WHEN o.attempts > 0 THEN gen_random_uuid()::text ELSE o.idempotency_key END"

/*
 * A row key's hash as outbox_waiting_idx and outbox_handed_out_idx key it
 * (see outbox_key_hash()): in SQL, a lookup by key asks for it too, so
 * that the index is searched by it.
 */
#define SR_KEY_HASH(key) "pg_catalog.jsonb_hash_extended(" key ", 0)"

/* Is this system kept in step by PostgreSQL's own replication? */
bool
sr_system_is_peer(const char *system)
{
	const SrSystem *sys = sr_system_get(system, true);

	return sys != NULL && sys->replication_origin != NULL;
}

/* What queue_entries() does, through SQL in one statement. */
static void
queue_sql(const SrTable *tab, Jsonb *key, int n, const char **targets,
			  bool is_delete, Jsonb **payloads, SrVclock *version, const char *cause,
			  int64 *ids)
{
	Datum		values[7];
	char		nulls[8] = "       ";
	Datum	   *tdatums = palloc(sizeof(Datum) * n);
	Datum	   *pdatums = palloc(sizeof(Datum) * n);
	bool	   *pnulls = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	uint64		r;
	int			i;

	if (queue_plan == NULL)
	{
		Oid			types[7] = {REGCLASSOID, JSONBOID, TEXTARRAYOID, TEXTOID, JSONBARRAYOID,
		TEXTOID, TEXTOID};

		queue_plan = sr_prepare_kept("INSERT INTO sync_resolve.outbox AS o"
									 " (relid, key, target, op, payload, version, cause)"
									 " SELECT $1, $2, t.target, $4::sync_resolve.outbox_op, t.payload,"
									 " $6::sync_resolve.vclock, $7"
									 " FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($5))"
									 " AS t(target, payload)"
									 " ON CONFLICT (relid, (" SR_KEY_HASH("key") "),"
									 " key, target) WHERE status IN ('pending', 'failed')"
									 " DO UPDATE SET op = excluded.op,"
									 " payload = CASE WHEN excluded.op = 'delete' THEN NULL"
									 " WHEN o.op = 'delete' THEN excluded.payload"
									 " ELSE coalesce(o.payload, '{}') || excluded.payload END,"
									 " version = excluded.version, cause = excluded.cause,"
									 " idempotency_key = " SR_KEY_AFTER_CHANGE ","
									 " updated_at = now()"
									 " RETURNING o.id, o.target",
									 7, types, true);
	}
	for (i = 0; i < n; i++)
	{
		tdatums[i] = CStringGetTextDatum(targets[i]);
		pnulls[i] = is_delete || payloads[i] == NULL;
		pdatums[i] = pnulls[i] ? (Datum) 0 : JsonbPGetDatum(payloads[i]);
	}
	values[0] = ObjectIdGetDatum(tab->relid);
	values[1] = JsonbPGetDatum(key);
	values[2] = PointerGetDatum(construct_array(tdatums, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[3] = CStringGetTextDatum(is_delete ? "delete" : "upsert");
	values[4] = PointerGetDatum(construct_md_array(pdatums, pnulls, 1, dims, lbs,
												   JSONBOID, -1, false, TYPALIGN_INT));
	values[5] = version ? CStringGetTextDatum(sr_vclock_to_cstring(version)) : (Datum) 0;
	nulls[5] = version ? ' ' : 'n';
	values[6] = cause ? CStringGetTextDatum(cause) : (Datum) 0;
	nulls[6] = cause ? ' ' : 'n';
	if (sr_spi_execute(queue_plan, values, nulls, true, false, 0, SPI_OK_INSERT_RETURNING) != n)
		elog(ERROR, "sync_resolve: queueing %d outbox entries returned %d rows",
			 n, (int) SPI_processed);
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *target = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);

		for (i = 0; i < n; i++)
			if (target != NULL && strcmp(target, targets[i]) == 0)
				ids[i] = id;
	}
	SPI_freetuptable(SPI_tuptable);
}

/* The outbox's columns, as the direct write names them (OB_* index them). */
static const SrDirectColumn outbox_columns[] = {
	{"id", INT8OID, NULL},
	{"relid", REGCLASSOID, NULL},
	{"key", JSONBOID, NULL},
	{"target", TEXTOID, NULL},
	{"op", InvalidOid, "outbox_op"},
	{"payload", JSONBOID, NULL},
	{"external_id", TEXTOID, NULL},
	{"idempotency_key", TEXTOID, NULL},
	{"status", InvalidOid, "outbox_status"},
	{"attempts", INT4OID, NULL},
	{"next_attempt_at", TIMESTAMPTZOID, NULL},
	{"lease_until", TIMESTAMPTZOID, NULL},
	{"created_at", TIMESTAMPTZOID, NULL},
	{"updated_at", TIMESTAMPTZOID, NULL},
	{"sent_at", TIMESTAMPTZOID, NULL},
	{"last_error", TEXTOID, NULL},
	{"version", InvalidOid, "vclock"},
	{"cause", TEXTOID, NULL},
};

enum
{
	OB_ID, OB_RELID, OB_KEY, OB_TARGET, OB_OP, OB_PAYLOAD, OB_EXTERNAL_ID, OB_IDEMPOTENCY_KEY,
	OB_STATUS, OB_ATTEMPTS, OB_NEXT_ATTEMPT_AT, OB_LEASE_UNTIL, OB_CREATED_AT, OB_UPDATED_AT,
	OB_SENT_AT, OB_LAST_ERROR, OB_VERSION, OB_CAUSE
};

/* outbox_waiting_idx: (relid, the key's hash, key, target), read by read_waiting() */
static const Oid outbox_waiting_types[] = {OIDOID, INT8OID, JSONBOID, TEXTOID};

static SrDirectTable outbox_table = {
	.relname = "outbox",
	.ncols = lengthof(outbox_columns),
	.cols = outbox_columns,
	.arbiter = "outbox_waiting_idx",
	.arbiter_types = outbox_waiting_types,
	.narbiter_types = lengthof(outbox_waiting_types)
};

/*
 * What a waiting entry carries after a change merges into it: a delete
 * carries nothing; an upsert after a delete carries its own columns, after
 * an upsert the columns of both, the newer value winning.
 */
static Datum
merged_payload(SrDirect *d, bool is_delete, Jsonb *payload, bool *isnull)
{
	bool		old_null;
	Datum		old_op = sr_direct_get(d, d->existing, OB_OP, &old_null);
	Datum		old_payload;

	*isnull = is_delete || payload == NULL;
	if (*isnull)
		return (Datum) 0;
	if (!old_null && strcmp(TextDatumGetCString(old_op), "delete") == 0)
		return JsonbPGetDatum(payload);
	old_payload = sr_direct_get(d, d->existing, OB_PAYLOAD, &old_null);
	if (old_null)
		return JsonbPGetDatum(payload);
	return DirectFunctionCall2(jsonb_concat, PointerGetDatum(PG_DETOAST_DATUM(old_payload)),
							   JsonbPGetDatum(payload));
}

/* What an entry carries: the change's op, payload, version and cause. */
static void
set_change(SrDirect *d, Datum op, Datum payload, bool payload_null, SrVclock *version,
		   const char *cause)
{
	sr_direct_set(d, OB_OP, op, false);
	sr_direct_set(d, OB_PAYLOAD, payload, payload_null);
	sr_direct_set(d, OB_VERSION, PointerGetDatum(version), version == NULL);
	sr_direct_set(d, OB_CAUSE, cause ? CStringGetTextDatum(cause) : (Datum) 0, cause == NULL);
}

/*
 * Merge a change into the waiting entry in d->existing, touching no indexed
 * column if we can: false if the entry changed since it was read (nothing
 * written; look again).
 */
static bool
merge_into(SrDirect *d, Datum op, bool is_delete, Jsonb *payload, SrVclock *version,
		   const char *cause)
{
	bool		isnull;
	Datum		merged = merged_payload(d, is_delete, payload, &isnull);

	sr_direct_clear(d);
	set_change(d, op, merged, isnull, version, cause);
	/* SR_KEY_AFTER_CHANGE: a new idempotency key only if it was handed out */
	if (DatumGetInt32(sr_direct_get(d, d->existing, OB_ATTEMPTS, &isnull)) > 0)
		sr_direct_set_default(d, OB_IDEMPOTENCY_KEY);
	sr_direct_set_default(d, OB_UPDATED_AT);
	if (sr_direct_update(d))
		return true;
	sr_direct_clear(d);
	return false;
}

/* Note in w an entry waiting for target, at tid (NULL: not known) with xmin. */
static void
waiting_add(SrOutboxWaiting *w, char *target, ItemPointer tid, TransactionId xmin)
{
	if (w->n == w->room)
	{
		w->room = w->room == 0 ? 4 : w->room * 2;
		w->targets = w->targets ? repalloc(w->targets, sizeof(char *) * w->room)
			: palloc(sizeof(char *) * w->room);
		w->tids = w->tids ? repalloc(w->tids, sizeof(ItemPointerData) * w->room)
			: palloc(sizeof(ItemPointerData) * w->room);
		w->xmins = w->xmins ? repalloc(w->xmins, sizeof(TransactionId) * w->room)
			: palloc(sizeof(TransactionId) * w->room);
	}
	w->targets[w->n] = target;
	if (tid != NULL)
		w->tids[w->n] = *tid;
	else
		ItemPointerSetInvalid(&w->tids[w->n]);
	w->xmins[w->n] = xmin;
	w->n++;
}

/*
 * A row key's hash as outbox_waiting_idx keys it, ahead of the key itself
 * (SR_KEY_HASH in SQL): the index is searched by comparing integers, the
 * jsonb keys compared only where their hashes are equal.
 */
static Datum
outbox_key_hash(Jsonb *key)
{
	return DirectFunctionCall2(jsonb_hash_extended, JsonbPGetDatum(key), Int64GetDatum(0));
}

/*
 * The entries waiting (pending or failed) for w's row, all targets at
 * once, read in one index scan (relid, key hash, key) on first use: a
 * change queued to several systems, or an apply() that also asks whether
 * one waits for its source, looks once instead of probing per target.
 * Only a hint for writing: the caller merges into such an entry only while
 * it is still current, and else goes the ON CONFLICT way, which sees
 * uncommitted entries too.
 */
static void
read_waiting(SrOutboxWaiting *w)
{
	SrDirectRead r;
	Datum		keyvals[3];
	TupleTableSlot *slot;

	if (w->read)
		return;
	w->read = true;
	keyvals[0] = ObjectIdGetDatum(w->tab->relid);
	keyvals[1] = outbox_key_hash(w->key);
	keyvals[2] = JsonbPGetDatum(w->key);
	if (!sr_direct_read_begin(&r, &outbox_table, 3, keyvals))
		return;
	w->direct = true;
	while ((slot = sr_direct_read_next(&r)) != NULL)
	{
		bool		isnull;
		Datum		target = slot_getattr(slot, r.attnums[OB_TARGET], &isnull);

		if (!isnull)
			waiting_add(w, TextDatumGetCString(target), &slot->tts_tid,
						DatumGetTransactionId(slot_getsysattr(slot, MinTransactionIdAttributeNumber,
															  &isnull)));
	}
	sr_direct_read_end(&r);
}

/* Start w for the row key of tab: nothing is read until it is needed. */
void
sr_outbox_waiting_init(SrOutboxWaiting *w, const SrTable *tab, Jsonb *key)
{
	memset(w, 0, sizeof(SrOutboxWaiting));
	w->tab = tab;
	w->key = key;
}

/* The index in w of the entry waiting for target, or -1. */
static int
waiting_for(SrOutboxWaiting *w, const char *target)
{
	int			i;

	read_waiting(w);
	for (i = 0; i < w->n; i++)
		if (strcmp(w->targets[i], target) == 0)
			return i;
	return -1;
}

/*
 * This transaction just queued a change to target (merged into its
 * waiting entry or inserted one): an entry waits for it now, at a place
 * the scan did not see (its tid no longer names the current version).
 */
static void
waiting_queued(SrOutboxWaiting *w, const char *target)
{
	int			i = waiting_for(w, target);

	if (i >= 0)
	{
		ItemPointerSetInvalid(&w->tids[i]);
		w->xmins[i] = InvalidTransactionId;
	}
	else if (w->direct)
		waiting_add(w, pstrdup(target), NULL, InvalidTransactionId);
}

/*
 * Whether an entry waits to be sent (pending or failed) for w's row and
 * target: as the scan saw it, with what this transaction queued since
 * (true as well when the outbox must be read through SQL).  The caller's
 * lock on the row keeps other writers of its entries out meanwhile; a
 * claim that takes one away is harmless, the caller's SQL not finding it.
 */
bool
sr_outbox_waits(SrOutboxWaiting *w, const char *target)
{
	return waiting_for(w, target) >= 0 || !w->direct;
}

/*
 * Queue (or merge into the waiting entry) what each of n targets must learn
 * of a row: an upsert of payloads[i]'s columns, or a delete (payloads
 * unused).  The entries' ids go to ids[i].  Written straight into the
 * table with the ON CONFLICT protocol (direct.c), or through SQL where the
 * table was changed so that this would not honour it.
 */
static void
queue_entries(const SrTable *tab, Jsonb *key, int n, const char **targets,
			  bool is_delete, Jsonb **payloads, SrVclock *version, const char *cause,
			  int64 *ids, SrOutboxWaiting *waiting)
{
	SrDirect	d;
	Datum		op = CStringGetTextDatum(is_delete ? "delete" : "upsert");
	SrOutboxWaiting own;
	bool		RR = IsolationUsesXactSnapshot();
	int			i;

	/*
	 * One probe per target is as cheap as the scan for a single one, unless
	 * the caller reads the scan anyway.  Under REPEATABLE READ an entry
	 * changed after the scan read it would be a serialization failure where
	 * ON CONFLICT, not finding it waiting any more, inserts a new one: there
	 * each target is probed.
	 */
	if (waiting == NULL && n > 1)
	{
		sr_outbox_waiting_init(&own, tab, key);
		waiting = &own;
	}
	/* read before the write begins: its snapshot sees every earlier command */
	if (waiting != NULL && !RR)
		read_waiting(waiting);
	if (!sr_direct_begin(&d, &outbox_table))
	{
		queue_sql(tab, key, n, targets, is_delete, payloads, version, cause, ids);
		return;
	}
	for (i = 0; i < n; i++)
	{
		Jsonb	   *payload = is_delete ? NULL : payloads[i];
		bool		isnull;
		bool		absent;
		int			w = waiting && !RR ? waiting_for(waiting, targets[i]) : -1;

		/* the entry the scan found, if it is still the current version */
		if (w >= 0 && ItemPointerIsValid(&waiting->tids[w]) &&
			sr_direct_fetch_tid(&d, &waiting->tids[w], waiting->xmins[w]))
		{
			ids[i] = DatumGetInt64(sr_direct_get(&d, d.existing, OB_ID, &isnull));
			if (merge_into(&d, op, is_delete, payload, version, cause))
			{
				waiting_queued(waiting, targets[i]);
				continue;
			}
		}
		/* until the entry found waiting, if any, is updated unchanged meanwhile */
		absent = w < 0 && waiting != NULL && waiting->read && waiting->direct;
		for (;;)
		{
			sr_direct_set(&d, OB_RELID, ObjectIdGetDatum(tab->relid), false);
			sr_direct_set(&d, OB_KEY, JsonbPGetDatum(key), false);
			sr_direct_set(&d, OB_TARGET, CStringGetTextDatum(targets[i]), false);
			set_change(&d, op, payload ? JsonbPGetDatum(payload) : (Datum) 0, payload == NULL,
					   version, cause);
			if (sr_direct_insert_or_find(&d, absent) == NULL)
			{
				ids[i] = DatumGetInt64(sr_direct_get(&d, d.slot, OB_ID, &isnull));
				break;
			}
			ids[i] = DatumGetInt64(sr_direct_get(&d, d.existing, OB_ID, &isnull));
			if (merge_into(&d, op, is_delete, payload, version, cause))
				break;
			absent = false;
		}
		if (waiting != NULL && waiting->read)
			waiting_queued(waiting, targets[i]);
	}
	sr_direct_end(&d);
}

/*
 * Queue (or merge into the waiting entry) what target must learn of a row:
 * an upsert of the payload's columns, or a delete.  Returns the entry id.
 */
int64
sr_outbox_queue(const SrTable *tab, Jsonb *key, const char *target, bool is_delete,
				Jsonb *payload, SrVclock *version, const char *cause)
{
	int64		id = 0;

	queue_entries(tab, key, 1, &target, is_delete, &payload, version, cause, &id, NULL);
	return id;
}

/*
 * Queue to every system of the table but except (and but the ones
 * PostgreSQL replicates) the columns among cols (NULL: all) whose value
 * its base does not hold, all in one statement.  revived: the row was deleted here and is
 * back, so the columns go whole to every system -- whatever its base says,
 * a delete may wait for it or be on its way (the upsert replaces a waiting
 * one).  batch, when given, logs each entry.
 * waiting, when given, is the row's waiting entries as the caller reads
 * them too (sr_outbox_waiting_init(); NULL: looked up here as needed).
 */
void
sr_outbox_fan_out(SrTable *tab, Jsonb *key, SrRowState *st, const char *except,
				  const Datum *values, const bool *nulls, const bool *cols,
				  bool revived, SrVclock *version, const char *cause,
				  SrEventBatch *batch, SrOutboxWaiting *waiting)
{
	bool	   *which = palloc(sizeof(bool) * (tab->ncols + 1));
	const char **targets = palloc(sizeof(char *) * (tab->nsystems + 1));
	Jsonb	  **payloads = palloc(sizeof(Jsonb *) * (tab->nsystems + 1));
	int64	   *ids = palloc0(sizeof(int64) * (tab->nsystems + 1));
	int			n = 0;
	int			i;
	int			c;

	for (i = 0; i < tab->nsystems; i++)
	{
		const char *target = tab->systems[i];
		SrShadowRow *base = &st->bases[i];
		bool		any = false;

		if ((except && strcmp(target, except) == 0) || sr_system_is_peer(target))
			continue;
		for (c = 0; c < tab->ncols; c++)
		{
			which[c] = (cols == NULL || cols[c]) && !tab->cols[c].is_key &&
				(revived || !base->found || base->deleted || !base->known[c] ||
				 !sr_datum_equal(&tab->cols[c], values[c], nulls[c],
								 base->values[c], base->nulls[c]));
			any |= which[c];
		}
		if (!any)
			continue;
		targets[n] = target;
		payloads[n++] = sr_row_object(tab, values, nulls, which);
	}
	if (n == 0)
		return;
	queue_entries(tab, key, n, targets, false, payloads, version, cause, ids, waiting);
	if (batch)
		for (i = 0; i < n; i++)
			sr_event_add(batch, "outbound_queued", NULL, NULL, NULL, NULL, payloads[i],
						 psprintf("queued for %s (outbox #%lld)", targets[i], (long long) ids[i]),
						 NULL, 0);
}

/*
 * Queue the row's delete to every system that holds it (but except).  One
 * that deleted it too needs nothing: a change still waiting for it goes.
 */
void
sr_outbox_fan_out_delete(SrTable *tab, Jsonb *key, SrRowState *st, const char *except,
						 SrVclock *version, const char *cause, SrEventBatch *batch)
{
	const char **targets = palloc(sizeof(char *) * (tab->nsystems + 1));
	int64	   *ids = palloc0(sizeof(int64) * (tab->nsystems + 1));
	int			n = 0;
	int			i;

	for (i = 0; i < tab->nsystems; i++)
	{
		const char *target = tab->systems[i];

		if ((except && strcmp(target, except) == 0) || sr_system_is_peer(target))
			continue;
		if (st->bases[i].found && st->bases[i].deleted)
		{
			sr_outbox_withdraw(tab, key, target, false, batch);
			continue;
		}
		targets[n++] = target;
	}
	if (n == 0)
		return;
	queue_entries(tab, key, n, targets, true, NULL, version, cause, ids, NULL);
	if (batch)
		for (i = 0; i < n; i++)
			sr_event_add(batch, "outbound_queued", NULL, NULL, NULL, NULL, NULL,
						 psprintf("delete queued for %s (outbox #%lld)", targets[i], (long long) ids[i]),
						 NULL, 0);
}

/*
 * The statements on one row's entries for one target: $1, $2, $3 name them
 * (row_target_params()), and the row key's hash first, as the indexes key it.
 */
#define ROW_TARGET_QUAL \
	"relid = $1 AND key = $2 AND target = $3" \
	" AND " SR_KEY_HASH("key") " = " SR_KEY_HASH("$2")

static void
row_target_params(Datum *values, const SrTable *tab, Jsonb *key, const char *target)
{
	values[0] = ObjectIdGetDatum(tab->relid);
	values[1] = JsonbPGetDatum(key);
	values[2] = CStringGetTextDatum(target);
}

/*
 * target just told us the row's fate: it deleted the row (any change
 * waiting for it is moot), or, deletes_only, it sent the row that is here
 * again (a delete waiting for it would undo that).  The waiting entry goes;
 * batch, when given, logs it.
 */
void
sr_outbox_withdraw(const SrTable *tab, Jsonb *key, const char *target, bool deletes_only,
				   SrEventBatch *batch)
{
	static SPIPlanPtr withdraw_plan = NULL;
	SrOutboxWaiting waiting;
	Datum		values[4];
	int			n;

	if (sr_system_is_peer(target))
		return;					/* nothing is ever queued to it */
	/* most often nothing waits: a look at the index says so */
	sr_outbox_waiting_init(&waiting, tab, key);
	if (!sr_outbox_waits(&waiting, target))
		return;
	if (withdraw_plan == NULL)
	{
		Oid			types[4] = {REGCLASSOID, JSONBOID, TEXTOID, BOOLOID};

		withdraw_plan = sr_prepare_kept("DELETE FROM sync_resolve.outbox"
										" WHERE " ROW_TARGET_QUAL
										" AND status IN ('pending', 'failed')"
										" AND (NOT $4 OR op = 'delete')"
										" RETURNING id, op::text",
										4, types, true);
	}
	row_target_params(values, tab, key, target);
	values[3] = BoolGetDatum(deletes_only);
	n = sr_spi_execute(withdraw_plan, values, NULL, true, false, 0, SPI_OK_DELETE_RETURNING);
	if (n == 1 && batch != NULL)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
													 1, &isnull));
		char	   *op = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		sr_event_add(batch, "outbound_withdrawn", NULL, NULL, NULL, NULL, NULL,
					 psprintf("the %s waiting for %s (outbox #%lld) is withdrawn: %s", op, target,
							  (long long) id,
							  deletes_only ? psprintf("%s holds the row again", target)
							  : psprintf("%s deleted the row", target)),
					 NULL, 0);
	}
}

/*
 * The source just told us what it holds for these columns: a waiting entry
 * to it must not carry older local values for them over its change (what
 * still differs is queued again with the current value).  An entry left
 * with nothing to carry goes.  waiting: the row's waiting entries, as
 * sr_outbox_fan_out() read them.
 */
void
sr_outbox_forget(const SrTable *tab, Jsonb *key, const char *target, const bool *cols,
				 SrOutboxWaiting *waiting)
{
	static SPIPlanPtr forget_plan = NULL;
	List	   *names = NIL;
	Datum		values[4];
	int			c;

	for (c = 0; c < tab->ncols; c++)
		if (cols[c] && !tab->cols[c].is_key)
			names = lappend(names, tab->cols[c].name);
	if (names == NIL)
		return;
	row_target_params(values, tab, key, target);
	/* most often no entry to target waits: a look at the index says so */
	if (!sr_outbox_waits(waiting, target))
		return;
	if (forget_plan == NULL)
	{
		Oid			types[4] = {REGCLASSOID, JSONBOID, TEXTOID, TEXTARRAYOID};

		forget_plan = sr_prepare_kept("WITH f AS (UPDATE sync_resolve.outbox o SET payload = o.payload - $4,"
									  "  idempotency_key = " SR_KEY_AFTER_CHANGE ","
									  "  updated_at = now()"
									  "  WHERE " ROW_TARGET_QUAL
									  "  AND status IN ('pending', 'failed') AND op = 'upsert'"
									  "  AND o.payload ?| $4 RETURNING o.id, o.payload)"
									  " DELETE FROM sync_resolve.outbox d USING f"
									  " WHERE d.id = f.id AND f.payload = '{}'",
									  4, types, true);
	}
	values[3] = sr_text_array(names);
	sr_spi_execute(forget_plan, values, NULL, true, false, 0, SPI_OK_DELETE);
}

/*
 * The entry an incoming image from target echoes, or 0: by its
 * idempotency key given as event_id (sent already or not), or else an
 * entry handed out but not confirmed (a pending one cannot have reached
 * the target) whose every column the image repeats.
 */
int64
sr_outbox_find_echo(const SrTable *tab, Jsonb *key, const char *target,
					const char *event_id, Jsonb *image)
{
	static SPIPlanPtr by_id_plan = NULL;
	static SPIPlanPtr by_values_plan = NULL;
	SPIPlanPtr	plan;
	Datum		values[4];
	bool		isnull;
	int64		id = 0;

	/* two plans, each able to use its index (a pending entry is in neither) */
	if (event_id != NULL)
	{
		if (by_id_plan == NULL)
		{
			Oid			types[4] = {REGCLASSOID, JSONBOID, TEXTOID, TEXTOID};

			by_id_plan = sr_prepare_kept("SELECT id FROM sync_resolve.outbox"
										 " WHERE idempotency_key = $4 AND status <> 'pending'"
										 " AND relid = $1 AND key = $2 AND target = $3"
										 " ORDER BY id DESC LIMIT 1",
										 4, types, true);
		}
		plan = by_id_plan;
		values[3] = CStringGetTextDatum(event_id);
	}
	else if (image != NULL)
	{
		if (by_values_plan == NULL)
		{
			Oid			types[4] = {REGCLASSOID, JSONBOID, TEXTOID, JSONBOID};

			by_values_plan = sr_prepare_kept("SELECT id FROM sync_resolve.outbox"
											 " WHERE " ROW_TARGET_QUAL
											 " AND status IN ('in_flight', 'failed') AND attempts > 0"
											 " AND op = 'upsert' AND $4 @> payload"
											 " ORDER BY id DESC LIMIT 1",
											 4, types, true);
		}
		plan = by_values_plan;
		values[3] = JsonbPGetDatum(image);
	}
	else
		return 0;
	row_target_params(values, tab, key, target);
	if (sr_spi_execute(plan, values, NULL, true, false, 1, SPI_OK_SELECT) == 1)
		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return id;
}

/* Mark an entry sent (a no-op when it already is); the row as it is now. */
static HeapTuple
mark_sent(int64 id, const char *external_id, TupleDesc *td)
{
	Datum		values[2];
	char		nulls[3] = "  ";
	HeapTuple	tup = NULL;

	if (sent_plan == NULL)
	{
		Oid			types[2] = {INT8OID, TEXTOID};

		sent_plan = sr_prepare_kept("UPDATE sync_resolve.outbox SET"
									" status = CASE WHEN status = 'sent' THEN status ELSE 'sent' END,"
									" sent_at = coalesce(sent_at, now()), lease_until = NULL,"
									" external_id = coalesce($2, external_id), updated_at = now()"
									" WHERE id = $1 RETURNING *",
									2, types, true);
	}
	values[0] = Int64GetDatum(id);
	values[1] = external_id ? CStringGetTextDatum(external_id) : (Datum) 0;
	nulls[1] = external_id ? ' ' : 'n';
	if (sr_spi_execute(sent_plan, values, nulls, true, false, 0, SPI_OK_UPDATE_RETURNING) == 1)
	{
		tup = SPI_copytuple(SPI_tuptable->vals[0]);
		if (td)
			*td = CreateTupleDescCopy(SPI_tuptable->tupdesc);
	}
	SPI_freetuptable(SPI_tuptable);
	return tup;
}

/*
 * Confirm an entry an image echoed: it is sent.  The base advances with
 * the image itself (apply() does that), flagged as what we sent.
 */
void
sr_outbox_confirm_echo(int64 id)
{
	(void) mark_sent(id, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * The SQL API
 * ------------------------------------------------------------------------
 */

/* Only members of a system's role may carry its entries. */
static void
check_target(const char *target)
{
	const SrSystem *sys = sr_system_get(target, true);

	if (sys == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown system \"%s\"", target),
				 errhint("sync_resolve.system lists the known systems.")));
	if (OidIsValid(sys->member_role) && !has_privs_of_role(GetUserId(), sys->member_role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not carry the outbox of system \"%s\"",
						GetUserNameFromId(GetUserId(), false), target),
				 errhint("Only members of role \"%s\" may; GRANT it to the integration's role.",
						 GetUserNameFromId(sys->member_role, false))));
}

/*
 * A claimed entry as the target is to receive it: the payload in its field
 * names and values (field_map, value_map), and external_id, when the entry
 * has none, the target's record id of the row (sync_resolve.identity).
 */
static HeapTuple
in_target_words(SPITupleTable *tt, uint64 i, const char *target)
{
	TupleDesc	td = tt->tupdesc;
	HeapTuple	tup = tt->vals[i];
	int			relid_att = SPI_fnumber(td, "relid");
	int			key_att = SPI_fnumber(td, "key");
	int			payload_att = SPI_fnumber(td, "payload");
	int			extid_att = SPI_fnumber(td, "external_id");
	Datum	   *values = palloc(sizeof(Datum) * td->natts);
	bool	   *nulls = palloc(sizeof(bool) * td->natts);
	bool	   *repl = palloc0(sizeof(bool) * td->natts);
	bool		isnull;
	SrTable    *tab;
	int			sidx;
	char	   *extid = NULL;
	Datum		d;

	if (relid_att <= 0 || key_att <= 0 || payload_att <= 0 || extid_att <= 0)
		elog(ERROR, "sync_resolve: sync_resolve.outbox lacks a column it needs");
	d = SPI_getbinval(tup, td, relid_att, &isnull);
	tab = isnull ? NULL : sr_table_get(DatumGetObjectId(d), true, AccessShareLock);
	sidx = tab ? sr_table_system_index(tab, target) : -1;
	if (sidx < 0)
		return tup;				/* untracked since: as it is */
	d = SPI_getbinval(tup, td, extid_att, &isnull);
	if (!isnull)
		extid = TextDatumGetCString(d);
	else
	{
		d = SPI_getbinval(tup, td, key_att, &isnull);
		extid = isnull ? NULL : sr_identity_of_row(tab, target, DatumGetJsonbP(d));
		if (extid != NULL)
		{
			values[extid_att - 1] = CStringGetTextDatum(extid);
			nulls[extid_att - 1] = false;
			repl[extid_att - 1] = true;
		}
	}
	d = SPI_getbinval(tup, td, payload_att, &isnull);
	if (!isnull)
	{
		values[payload_att - 1] = JsonbPGetDatum(sr_payload_out(tab, sidx, DatumGetJsonbP(d), extid));
		nulls[payload_att - 1] = false;
		repl[payload_att - 1] = true;
	}
	return heap_modify_tuple(tup, td, values, nulls, repl);
}

PG_FUNCTION_INFO_V1(claim_outbound);
Datum
claim_outbound(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *target;
	int32		max;
	Interval   *lease;
	static SPIPlanPtr claim_plan = NULL;
	Oid			types[4] = {TEXTOID, INT4OID, INTERVALOID, INT4OID};
	Datum		values[4];
	int32		claimed = 0;
	uint64		i;

	PreventCommandIfReadOnly("sync_resolve.claim_outbound()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target, max and lease must not be null"),
				 errhint("Pass the system whose entries to take, how many, and for how long.")));
	target = text_to_cstring(PG_GETARG_TEXT_PP(0));
	max = PG_GETARG_INT32(1);
	lease = PG_GETARG_INTERVAL_P(2);
	if (max < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must be at least 1, not %d", max),
				 errhint("Take one entry or more.")));
	if (sr_interval_sign(lease) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lease must be a positive interval, not %s",
						DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(lease)))),
				 errhint("Lease the entries for as long as sending them may take, such as '5 minutes'.")));
	InitMaterializedSRF(fcinfo, 0);
	/*
	 * The entries are put in the target's words with the tables' cached
	 * policies, and an outbound function may call sync_resolve again: like
	 * every entry point, keep what it reads from being freed under it.
	 */
	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	check_target(target);

	/*
	 * One pass takes, in the order of ids, up to max entries due: waiting
	 * and due for an attempt, or handed out and their lease run out.  Of
	 * the latter, one whose last allowed attempt it was is dead instead
	 * ("lease expired") and not handed out; it took a place, so another
	 * pass takes what it left.
	 *
	 * Sent entries stay in the outbox, most of it in time, and the oldest
	 * ids are theirs: a plan reading the primary key in the order of ids
	 * would step over every one of them to find the first entry due, and
	 * the planner, which takes the entries it looks for to be spread evenly
	 * over the ids, likes that plan for a small max.  Matched as
	 * ANY (ARRAY[target]), the target is not a constant that makes ORDER BY
	 * target, id the order of ids: only outbox_claim_idx, the target's
	 * entries not sent or dead by id, gives that order, and without it the
	 * plan sorts what that index finds.  That makes one plan right for any
	 * max: planned once (a plan for a max of 1 would look so much cheaper
	 * than the one for any max that PostgreSQL would plan it anew each call;
	 * plan_cache_mode = force_custom_plan still does, to the same effect).
	 * The entries are chosen once, in a CTE of their own: as a subquery
	 * joined to the outbox, a plan could run it again for every entry of
	 * the outbox, each run taking max more (a plan made while the outbox
	 * was empty did).  And they are updated by their ids as an array, each
	 * looked up in the primary key: joined to the CTE, the generic plan,
	 * which takes a LIMIT of $4 for a tenth of the outbox, merged it with
	 * the primary key read from its start, over every entry ever sent
	 * (10,681 for a claim of one, measured on an outbox of 100,000).
	 */
	if (claim_plan == NULL)
	{
		const char *expired = "o.status = 'in_flight' AND o.attempts >= $2";
		char	   *sql;

		sql = psprintf("WITH c AS MATERIALIZED (SELECT id FROM sync_resolve.outbox"
					   "       WHERE target = ANY (ARRAY[$1]) AND status IN ('pending', 'failed', 'in_flight')"
					   "         AND ((status IN ('pending', 'failed') AND next_attempt_at <= now())"
					   "              OR (status = 'in_flight' AND lease_until < now()))"
					   "       ORDER BY target, id LIMIT $4 FOR UPDATE SKIP LOCKED)"
					   " UPDATE sync_resolve.outbox o SET"
					   " status = CASE WHEN %s THEN 'dead' ELSE 'in_flight' END,"
					   " attempts = CASE WHEN %s THEN o.attempts ELSE o.attempts + 1 END,"
					   " lease_until = CASE WHEN %s THEN o.lease_until ELSE now() + $3 END,"
					   " last_error = CASE WHEN %s"
					   "   THEN coalesce(o.last_error || '; ', '') || 'lease expired'"
					   "   ELSE o.last_error END,"
					   " updated_at = now()"
					   " WHERE o.id = ANY (ARRAY(SELECT id FROM c)) RETURNING o.*",
					   expired, expired, expired, expired);
		claim_plan = sr_prepare_kept_generic(sql, 4, types, true);
	}
	values[0] = CStringGetTextDatum(target);
	values[1] = Int32GetDatum(sr_max_attempts);
	values[2] = IntervalPGetDatum(lease);
	for (;;)
	{
		SPITupleTable *passed;
		uint64		n;
		int			status_att;
		bool		retired = false;

		values[3] = Int32GetDatum(max - claimed);
		n = sr_spi_execute(claim_plan, values, NULL, true, false, 0, SPI_OK_UPDATE_RETURNING);
		passed = SPI_tuptable;
		status_att = SPI_fnumber(passed->tupdesc, "status");
		if (status_att <= 0)
			elog(ERROR, "sync_resolve: sync_resolve.outbox lacks a column it needs");
		for (i = 0; i < n; i++)
		{
			bool		isnull;
			Datum		status = SPI_getbinval(passed->vals[i], passed->tupdesc, status_att, &isnull);

			if (!isnull && strcmp(TextDatumGetCString(status), "dead") == 0)
			{
				retired = true;
				continue;
			}
			tuplestore_puttuple(rsinfo->setResult, in_target_words(passed, i, target));
			claimed++;
		}
		SPI_freetuptable(passed);
		if (!retired || claimed >= max)
			break;
	}
	SPI_finish();
	sr_cache_leave();
	return (Datum) 0;
}

typedef struct SrOutboxEntry
{
	Oid			relid;
	Jsonb	   *key;
	char	   *target;
	bool		is_delete;
	Jsonb	   *payload;
	char	   *status;
	int32		attempts;
} SrOutboxEntry;

static bool
fetch_entry(int64 id, bool lock, SrOutboxEntry *e)
{
	SPIPlanPtr *plan = lock ? &lock_plan : &read_plan;
	Datum		values[1];
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	Datum		d;

	if (*plan == NULL)
	{
		Oid			types[1] = {INT8OID};

		*plan = sr_prepare_kept(lock ?
								"SELECT relid::oid, key, target, op, payload, status, attempts"
								" FROM sync_resolve.outbox WHERE id = $1 FOR UPDATE" :
								"SELECT relid::oid, key, target, op, payload, status, attempts"
								" FROM sync_resolve.outbox WHERE id = $1",
								1, types, true);
	}
	values[0] = Int64GetDatum(id);
	if (sr_spi_execute(*plan, values, NULL, true, false, 0, SPI_OK_SELECT) != 1)
		return false;
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	e->relid = DatumGetObjectId(SPI_getbinval(tup, td, 1, &isnull));
	e->key = DatumGetJsonbPCopy(SPI_getbinval(tup, td, 2, &isnull));
	e->target = TextDatumGetCString(SPI_getbinval(tup, td, 3, &isnull));
	e->is_delete = strcmp(TextDatumGetCString(SPI_getbinval(tup, td, 4, &isnull)), "delete") == 0;
	d = SPI_getbinval(tup, td, 5, &isnull);
	e->payload = isnull ? NULL : DatumGetJsonbPCopy(d);
	e->status = TextDatumGetCString(SPI_getbinval(tup, td, 6, &isnull));
	e->attempts = DatumGetInt32(SPI_getbinval(tup, td, 7, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return true;
}

static void
no_entry(int64 id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("outbox entry %lld does not exist", (long long) id),
			 errhint("sync_resolve.outbox lists the entries; claim_outbound() hands them out.")));
}

/*
 * Remember the record id target gave the row (acknowledging entry id).  A
 * record id names one row: one already linked to another row is refused
 * by name, not by the identity table's bare unique violation.
 */
static void
record_identity(const SrTable *tab, const char *system, const char *external_id, Jsonb *key,
				int64 id)
{
	Datum		values[4];
	Jsonb	   *linked = sr_identity_key(tab, system, external_id);

	if (linked != NULL && compareJsonbContainers(&linked->root, &key->root) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("record id \"%s\" of system \"%s\" is linked to row %s of table %s, not to row %s of outbox entry %lld",
						external_id, system, sr_jsonb_value_text(linked), tab->display_name,
						sr_jsonb_value_text(key), (long long) id),
				 errhint("Acknowledge with the record id %s gave this row.  If both rows are one record, merge them here and delete the other's link from sync_resolve.identity.",
						 system)));

	if (identity_plan == NULL)
	{
		Oid			types[4] = {REGCLASSOID, TEXTOID, TEXTOID, JSONBOID};

		identity_plan = sr_prepare_kept("INSERT INTO sync_resolve.identity (relid, system, external_id, key)"
										" VALUES ($1, $2, $3, $4)"
										" ON CONFLICT (relid, system, key)"
										" DO UPDATE SET external_id = excluded.external_id",
										4, types, true);
	}
	values[0] = ObjectIdGetDatum(tab->relid);
	values[1] = CStringGetTextDatum(system);
	values[2] = CStringGetTextDatum(external_id);
	values[3] = JsonbPGetDatum(key);
	sr_spi_execute(identity_plan, values, NULL, true, false, 0, SPI_OK_INSERT);
}

/*
 * Read outbox entry id into e, then lock the tracked row (or its key) and
 * the entry, in the order apply() takes them.  Returns the row's table, or
 * NULL if it is no longer tracked; its key values go to *keyvals.
 */
static SrTable *
lock_row_then_entry(int64 id, SrOutboxEntry *e, Datum **keyvals)
{
	SrTable    *tab;

	if (!fetch_entry(id, false, e))
		no_entry(id);
	check_target(e->target);
	*keyvals = NULL;
	tab = sr_table_get(e->relid, true, RowExclusiveLock);
	if (tab != NULL)
	{
		*keyvals = palloc(sizeof(Datum) * (tab->nkeys + 1));
		sr_parse_key(tab, e->key, NULL, "the key of outbox entry", *keyvals);
		(void) sr_lock_row_or_key(tab, *keyvals, e->key, false, NULL, NULL);
	}
	if (!fetch_entry(id, true, e))
		no_entry(id);
	return tab;
}

/*
 * target confirmed an upsert of a row that is deleted here: the row was
 * deleted while the entry was out (target's own delete, say, which crossed
 * it), so target may hold it again now.  The delete is queued for it (or
 * merges into the one waiting), and the two converge: a target that
 * deleted the row after taking the upsert hears of a delete it has made.
 * Also when a delete of the row is out to target already: nothing says in
 * which order target ran the two, and a second delete does no harm where a
 * missing one leaves the row there.
 */
static void
queue_delete_after_ack(SrTable *tab, SrOutboxEntry *e, SrRowState *st, int64 id,
					   SrEventBatch *batch)
{
	int64		queued = sr_outbox_queue(tab, e->key, e->target, true, NULL, st->local.version,
										 st->local.deleted_by ? st->local.deleted_by : SR_LOCAL);

	sr_event_add(batch, "outbound_queued", NULL, NULL, NULL, NULL, NULL,
				 psprintf("delete queued for %s (outbox #%lld): it confirmed outbox #%lld, an upsert of the row, after the row was deleted here",
						  e->target, (long long) queued, (long long) id),
				 NULL, 0);
}

PG_FUNCTION_INFO_V1(ack_outbound);
Datum
ack_outbound(PG_FUNCTION_ARGS)
{
	int64		id;
	char	   *external_id = NULL;
	SrVclock   *version = NULL;
	bool		has_changed_at;
	TimestampTz changed_at = 0;
	SrOutboxEntry e;
	SrTable    *tab;
	Datum	   *keyvals;
	HeapTuple	tup;
	TupleDesc	td;
	Datum		result;

	PreventCommandIfReadOnly("sync_resolve.ack_outbound()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("id must not be null"),
				 errhint("Pass the id of a claimed outbox entry.")));
	id = PG_GETARG_INT64(0);
	if (!PG_ARGISNULL(1))
		external_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(2))
		version = DatumGetSrVclockP(PG_GETARG_DATUM(2));
	has_changed_at = !PG_ARGISNULL(3);
	if (has_changed_at)
		changed_at = PG_GETARG_TIMESTAMPTZ(3);
	/* as apply() refuses it: a base changed at infinity makes every later change stale */
	if (has_changed_at && TIMESTAMP_NOT_FINITE(changed_at))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("changed_at of the acknowledgement of outbox entry %lld is not a finite time",
						(long long) id),
				 errhint("Pass the time the target stored the change, or NULL.")));

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	tab = lock_row_then_entry(id, &e, &keyvals);
	if (tab != NULL)
	{
		SrRowState	st;
		SrShadowRow *base;
		SrEventBatch batch;
		int			t = sr_table_system_index(tab, e.target);

		if (strcmp(e.status, "sent") != 0 && t >= 0)
		{
			/* the target now holds what the entry carried */
			sr_shadow_load(tab, keyvals, &st);
			sr_vclock_check_incoming(version, st.local.version, e.target, tab->display_name);
			base = &st.bases[t];
			if (e.is_delete)
			{
				int			c;

				for (c = 0; c < tab->ncols; c++)
					if (!tab->cols[c].is_key)
						base->known[c] = base->sent[c] = false;
				base->deleted = true;
				base->deleted_at = GetCurrentTimestamp();
				base->deleted_by = SR_LOCAL;
			}
			else
			{
				SrErrorTarget where = {tab, NULL, psprintf("in outbox entry %lld", (long long) id)};
				int			c;

				for (c = 0; c < tab->ncols; c++)
				{
					JsonbValue	v;

					if (tab->cols[c].is_key || !sr_jsonb_get_field(e.payload, tab->cols[c].name, &v))
						continue;
					base->values[c] = sr_jsonb_value_to_datum(&tab->cols[c], &v, &base->nulls[c], &where);
					base->known[c] = true;
					base->sent[c] = true;
				}
				base->deleted = false;
			}
			if (has_changed_at && (!base->has_changed_at || changed_at > base->changed_at))
			{
				base->changed_at = changed_at;
				base->has_changed_at = true;
			}
			if (version)
				base->version = base->version ? sr_vclock_merge(base->version, version) : version;
			base->received_at = GetCurrentTimestamp();
			sr_shadow_write(tab, keyvals, e.target, base);

			memset(&batch, 0, sizeof(batch));
			batch.relid = tab->relid;
			batch.key = e.key;
			batch.source = e.target;
			batch.version = version;
			batch.has_changed_at = has_changed_at;
			batch.changed_at = changed_at;
			batch.received_at = GetCurrentTimestamp();
			sr_event_add(&batch, "outbound_sent", NULL, NULL, NULL, NULL, e.payload,
						 psprintf("%s confirmed outbox #%lld%s", e.target, (long long) id,
								  external_id ? psprintf(" as record %s", external_id) : ""),
						 e.is_delete ? "deleted" : NULL, 0);
			if (!e.is_delete && st.local.found && st.local.deleted)
				queue_delete_after_ack(tab, &e, &st, id, &batch);
			sr_events_flush(&batch);
		}
		if (external_id != NULL && !e.is_delete)
			record_identity(tab, e.target, external_id, e.key, id);
	}

	tup = mark_sent(id, external_id, &td);
	if (tup == NULL)
		no_entry(id);
	result = PointerGetDatum(SPI_returntuple(tup, td));
	SPI_finish();
	sr_cache_leave();
	PG_RETURN_DATUM(result);
}

/*
 * An entry that failed while a later change to its row waits for the same
 * target (it was queued while this one was in flight) cannot wait too: at
 * most one does.  Its changes go into the waiting entry, under the later
 * values, and it is retired.  Returns the waiting entry's id, or 0.
 */
static int64
merge_into_waiting(int64 id)
{
	static SPIPlanPtr plan = NULL;
	Datum		values[1];
	bool		isnull;
	int64		waiting = 0;

	if (plan == NULL)
	{
		Oid			types[1] = {INT8OID};

		plan = sr_prepare_kept("UPDATE sync_resolve.outbox o SET"
							   " payload = CASE WHEN o.op = 'upsert' AND e.op = 'upsert'"
							   " THEN coalesce(e.payload, '{}') || coalesce(o.payload, '{}')"
							   " ELSE o.payload END,"
							   " idempotency_key = " SR_KEY_AFTER_CHANGE ","
							   " updated_at = now()"
							   " FROM sync_resolve.outbox e"
							   " WHERE e.id = $1 AND o.relid = e.relid AND o.key = e.key"
							   " AND " SR_KEY_HASH("o.key") " = " SR_KEY_HASH("e.key")
							   " AND o.target = e.target AND o.status IN ('pending', 'failed')"
							   " AND o.id <> e.id RETURNING o.id",
							   1, types, true);
	}
	values[0] = Int64GetDatum(id);
	if (sr_spi_execute(plan, values, NULL, true, false, 0, SPI_OK_UPDATE_RETURNING) > 0)
		waiting = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											  1, &isnull));
	return waiting;
}

PG_FUNCTION_INFO_V1(fail_outbound);
Datum
fail_outbound(PG_FUNCTION_ARGS)
{
	int64		id;
	char	   *error;
	Interval   *retry_in = NULL;
	SrOutboxEntry e;
	static SPIPlanPtr plan = NULL;
	Datum		values[4];
	bool		dead;
	int			attempts;
	int64		superseded;
	Datum	   *keyvals;
	Datum		result;
	SrEventBatch batch;

	PreventCommandIfReadOnly("sync_resolve.fail_outbound()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("id and error must not be null"),
				 errhint("Pass the id of a claimed outbox entry and what went wrong.")));
	id = PG_GETARG_INT64(0);
	error = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(2))
		retry_in = PG_GETARG_INTERVAL_P(2);

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	/* a change to the row queued meanwhile is committed (merge_into_waiting() sees it) or waits */
	(void) lock_row_then_entry(id, &e, &keyvals);
	if (strcmp(e.status, "sent") == 0 || strcmp(e.status, "dead") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("outbox entry %lld is already %s", (long long) id, e.status),
				 errhint("Only entries still to be sent can fail.")));

	/* claim_outbound() counted the attempt; an entry never claimed counts one */
	attempts = Max(e.attempts, 1);
	superseded = merge_into_waiting(id);
	dead = superseded != 0 || attempts >= sr_max_attempts;
	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(superseded == 0 ? error :
									psprintf("%s (its changes wait in outbox #%lld)",
											 error, (long long) superseded));
	if (retry_in != NULL)
		values[2] = IntervalPGetDatum(retry_in);
	else
	{
		/* exponential backoff: base, 2 x base, 4 x base ... up to the maximum */
		int64		ms = sr_retry_base_ms;
		Interval   *backoff = palloc0(sizeof(Interval));
		int			i;

		for (i = 1; i < attempts && ms < sr_retry_max_ms; i++)
			ms *= 2;
		ms = Min(ms, (int64) sr_retry_max_ms);
		backoff->time = ms * INT64CONST(1000);
		values[2] = IntervalPGetDatum(backoff);
	}
	values[3] = BoolGetDatum(dead);
	if (plan == NULL)
	{
		Oid			types[4] = {INT8OID, TEXTOID, INTERVALOID, BOOLOID};

		plan = sr_prepare_kept("UPDATE sync_resolve.outbox SET"
							   " status = CASE WHEN $4 THEN 'dead' ELSE 'failed' END,"
							   " attempts = greatest(attempts, 1), last_error = $2, lease_until = NULL,"
							   " next_attempt_at = now() + $3, updated_at = now()"
							   " WHERE id = $1 RETURNING *",
							   4, types, true);
	}
	if (sr_spi_execute(plan, values, NULL, true, false, 0, SPI_OK_UPDATE_RETURNING) != 1)
		no_entry(id);
	result = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc));

	memset(&batch, 0, sizeof(batch));
	batch.relid = e.relid;
	batch.key = e.key;
	batch.source = e.target;
	batch.received_at = GetCurrentTimestamp();
	sr_event_add(&batch, "outbound_failed", NULL, NULL, NULL, NULL, e.payload,
				 superseded != 0 ?
				 psprintf("sending outbox #%lld to %s failed with \"%s\"; a later change to the row waits in outbox #%lld, which now carries this one's too",
						  (long long) id, e.target, error, (long long) superseded)
				 : dead ? psprintf("sending outbox #%lld to %s failed %d times, the last with \"%s\": dead",
								 (long long) id, e.target, attempts, error)
				 : psprintf("sending outbox #%lld to %s failed (attempt %d of %d): %s",
							(long long) id, e.target, attempts, sr_max_attempts, error),
				 superseded != 0 ? "merged" : dead ? "dead" : "retry", 0);
	sr_events_flush(&batch);
	SPI_finish();
	sr_cache_leave();
	PG_RETURN_DATUM(result);
}
