/*-------------------------------------------------------------------------
 *
 * events.c
 *		The append-only history, sync_resolve.event.
 *
 * Every incoming image leaves at least one event; a decision worth
 * explaining (a conflict, a refusal, a review) leaves one per column.  The
 * events one image causes are collected in an SrEventBatch and written
 * together, straight into the table (direct.c), or where the table was
 * changed so that this would not honour it, by one INSERT ... SELECT FROM
 * unnest(...) with a plan prepared once per backend; they commit or roll
 * back with everything else the image did.
 *
 * The table refuses UPDATE, DELETE and TRUNCATE (append_only_trigger),
 * except for prune_events(), which sets a flag for the length of its own
 * DELETE.
 *
 * Also the notifications (NOTIFY sync_resolve_alert here, and
 * sync_resolve_review for review.c), held until the transaction commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "sync_resolve.h"

#define EVENT_NPARAMS 18

static SPIPlanPtr event_plan = NULL;
static SPIPlanPtr alert_due_plan = NULL;
static SPIPlanPtr alert_send_plan = NULL;
static bool pruning = false;

/* Add an event to the batch; the caller may set its strategy. */
SrEvent *
sr_event_add(SrEventBatch *batch, const char *kind, const char *column_name,
			 Jsonb *old_value, Jsonb *incoming_value, Jsonb *base_value,
			 Jsonb *new_value, const char *rule, const char *decision,
			 int64 review_id)
{
	SrEvent    *ev = palloc(sizeof(SrEvent));

	ev->kind = kind;
	ev->column_name = column_name;
	ev->old_value = old_value;
	ev->incoming_value = incoming_value;
	ev->base_value = base_value;
	ev->new_value = new_value;
	ev->rule = rule;
	ev->decision = decision;
	ev->strategy = NULL;
	ev->review_id = review_id;
	batch->events = lappend(batch->events, ev);
	return ev;
}

static SPIPlanPtr
get_event_plan(void)
{
	Oid			types[EVENT_NPARAMS] = {
		REGCLASSOID, JSONBOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
		TEXTOID, TEXTOID,
		TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, JSONBARRAYOID, JSONBARRAYOID,
		JSONBARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID
	};
	SPIPlanPtr	plan;

	if (event_plan != NULL)
		return event_plan;
	plan = sr_prepare_kept("INSERT INTO sync_resolve.event (relid, key, source, version,"
					   " source_changed_at, received_at, event_id, actor, kind, column_name,"
					   " old_value, incoming_value, base_value, new_value, rule, decision, review_id,"
					   " strategy)"
					   " SELECT $1, $2, $3, $4::sync_resolve.vclock, $5, $6, $7, $8, u.*"
					   " FROM ROWS FROM (pg_catalog.unnest($9), pg_catalog.unnest($10),"
					   " pg_catalog.unnest($11), pg_catalog.unnest($12), pg_catalog.unnest($13),"
					   " pg_catalog.unnest($14), pg_catalog.unnest($15), pg_catalog.unnest($16),"
					   " pg_catalog.unnest($17), pg_catalog.unnest($18)) AS u",
					   EVENT_NPARAMS, types, true);
	event_plan = plan;
	return plan;
}

/* A one-dimensional array of varlena values; a zero Datum is NULL. */
static Datum
nullable_array(int n, const Datum *values, Oid elemtype)
{
	bool	   *nulls = palloc(sizeof(bool) * (n + 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	for (i = 0; i < n; i++)
		nulls[i] = (values[i] == (Datum) 0);
	return PointerGetDatum(construct_md_array((Datum *) values, nulls, 1, dims, lbs,
											  elemtype, -1, false, TYPALIGN_INT));
}

#define TEXT_OR_ZERO(s)		((s) ? CStringGetTextDatum(s) : (Datum) 0)
#define JSONB_OR_ZERO(j)	((j) ? JsonbPGetDatum(j) : (Datum) 0)

/* The history's columns, as the direct write names them (EV_* index them). */
static const SrDirectColumn event_columns[] = {
	{"id", INT8OID, NULL},
	{"at", TIMESTAMPTZOID, NULL},
	{"relid", REGCLASSOID, NULL},
	{"key", JSONBOID, NULL},
	{"kind", TEXTOID, NULL},
	{"column_name", TEXTOID, NULL},
	{"source", TEXTOID, NULL},
	{"old_value", JSONBOID, NULL},
	{"incoming_value", JSONBOID, NULL},
	{"base_value", JSONBOID, NULL},
	{"new_value", JSONBOID, NULL},
	{"version", InvalidOid, "vclock"},
	{"source_changed_at", TIMESTAMPTZOID, NULL},
	{"received_at", TIMESTAMPTZOID, NULL},
	{"rule", TEXTOID, NULL},
	{"decision", TEXTOID, NULL},
	{"event_id", TEXTOID, NULL},
	{"review_id", INT8OID, NULL},
	{"actor", TEXTOID, NULL},
	{"strategy", TEXTOID, NULL},
};

enum
{
	EV_ID, EV_AT, EV_RELID, EV_KEY, EV_KIND, EV_COLUMN, EV_SOURCE, EV_OLD, EV_INCOMING,
	EV_BASE, EV_NEW, EV_VERSION, EV_CHANGED_AT, EV_RECEIVED_AT, EV_RULE, EV_DECISION,
	EV_EVENT_ID, EV_REVIEW_ID, EV_ACTOR, EV_STRATEGY
};

static SrDirectTable event_table = {
	"event", lengthof(event_columns), event_columns, NULL
};

#define TEXT_OR_NULL(d, col, s)		sr_direct_set(d, col, (s) ? CStringGetTextDatum(s) : (Datum) 0, (s) == NULL)
#define JSONB_OR_NULL(d, col, j)	sr_direct_set(d, col, (j) ? JsonbPGetDatum(j) : (Datum) 0, (j) == NULL)

/*
 * Write the batch's events straight into the table; false if it must be
 * done through SQL (see direct.c).
 */
static bool
flush_direct(SrEventBatch *batch, Datum actor)
{
	SrDirect	d;
	ListCell   *lc;

	if (!sr_direct_begin(&d, &event_table))
		return false;
	foreach(lc, batch->events)
	{
		SrEvent    *ev = (SrEvent *) lfirst(lc);

		sr_direct_set(&d, EV_RELID, ObjectIdGetDatum(batch->relid), false);
		JSONB_OR_NULL(&d, EV_KEY, batch->key);
		TEXT_OR_NULL(&d, EV_SOURCE, batch->source);
		sr_direct_set(&d, EV_VERSION, PointerGetDatum(batch->version), batch->version == NULL);
		sr_direct_set(&d, EV_CHANGED_AT, TimestampTzGetDatum(batch->changed_at),
					  !batch->has_changed_at);
		sr_direct_set(&d, EV_RECEIVED_AT, TimestampTzGetDatum(batch->received_at), false);
		TEXT_OR_NULL(&d, EV_EVENT_ID, batch->event_id);
		sr_direct_set(&d, EV_ACTOR, actor, false);
		TEXT_OR_NULL(&d, EV_KIND, ev->kind);
		TEXT_OR_NULL(&d, EV_COLUMN, ev->column_name);
		JSONB_OR_NULL(&d, EV_OLD, ev->old_value);
		JSONB_OR_NULL(&d, EV_INCOMING, ev->incoming_value);
		JSONB_OR_NULL(&d, EV_BASE, ev->base_value);
		JSONB_OR_NULL(&d, EV_NEW, ev->new_value);
		TEXT_OR_NULL(&d, EV_RULE, ev->rule);
		TEXT_OR_NULL(&d, EV_DECISION, ev->decision);
		TEXT_OR_NULL(&d, EV_STRATEGY, ev->strategy);
		sr_direct_set(&d, EV_REVIEW_ID, Int64GetDatum(ev->review_id), ev->review_id == 0);
		sr_direct_insert(&d);
	}
	sr_direct_end(&d);
	return true;
}

/* The same through one INSERT ... SELECT FROM unnest(...). */
static void
flush_sql(SrEventBatch *batch, Datum actor)
{
	int			n = list_length(batch->events);
	Datum		values[EVENT_NPARAMS];
	char		nulls[EVENT_NPARAMS + 1];
	Datum	   *kinds,
			   *columns,
			   *rules,
			   *decisions,
			   *strategies,
			   *olds,
			   *incomings,
			   *bases,
			   *news;
	Datum	   *review_ids;
	bool	   *review_nulls;
	int			dims[1] = {n};
	int			lbs[1] = {1};
	ListCell   *lc;
	int			i = 0;

	kinds = palloc(sizeof(Datum) * n);
	columns = palloc(sizeof(Datum) * n);
	rules = palloc(sizeof(Datum) * n);
	decisions = palloc(sizeof(Datum) * n);
	strategies = palloc(sizeof(Datum) * n);
	olds = palloc(sizeof(Datum) * n);
	incomings = palloc(sizeof(Datum) * n);
	bases = palloc(sizeof(Datum) * n);
	news = palloc(sizeof(Datum) * n);
	review_ids = palloc(sizeof(Datum) * n);
	review_nulls = palloc(sizeof(bool) * n);
	foreach(lc, batch->events)
	{
		SrEvent    *ev = (SrEvent *) lfirst(lc);

		kinds[i] = TEXT_OR_ZERO(ev->kind);
		columns[i] = TEXT_OR_ZERO(ev->column_name);
		rules[i] = TEXT_OR_ZERO(ev->rule);
		decisions[i] = TEXT_OR_ZERO(ev->decision);
		strategies[i] = TEXT_OR_ZERO(ev->strategy);
		olds[i] = JSONB_OR_ZERO(ev->old_value);
		incomings[i] = JSONB_OR_ZERO(ev->incoming_value);
		bases[i] = JSONB_OR_ZERO(ev->base_value);
		news[i] = JSONB_OR_ZERO(ev->new_value);
		review_ids[i] = Int64GetDatum(ev->review_id);
		review_nulls[i] = (ev->review_id == 0);
		i++;
	}

	memset(nulls, ' ', EVENT_NPARAMS);
	nulls[EVENT_NPARAMS] = '\0';
	values[0] = ObjectIdGetDatum(batch->relid);
	values[1] = batch->key ? JsonbPGetDatum(batch->key) : (Datum) 0;
	nulls[1] = batch->key ? ' ' : 'n';
	values[2] = batch->source ? CStringGetTextDatum(batch->source) : (Datum) 0;
	nulls[2] = batch->source ? ' ' : 'n';
	values[3] = batch->version ? CStringGetTextDatum(sr_vclock_to_cstring(batch->version)) : (Datum) 0;
	nulls[3] = batch->version ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(batch->changed_at);
	nulls[4] = batch->has_changed_at ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(batch->received_at);
	values[6] = batch->event_id ? CStringGetTextDatum(batch->event_id) : (Datum) 0;
	nulls[6] = batch->event_id ? ' ' : 'n';
	values[7] = actor;
	values[8] = nullable_array(n, kinds, TEXTOID);
	values[9] = nullable_array(n, columns, TEXTOID);
	values[10] = nullable_array(n, olds, JSONBOID);
	values[11] = nullable_array(n, incomings, JSONBOID);
	values[12] = nullable_array(n, bases, JSONBOID);
	values[13] = nullable_array(n, news, JSONBOID);
	values[14] = nullable_array(n, rules, TEXTOID);
	values[15] = nullable_array(n, decisions, TEXTOID);
	values[16] = PointerGetDatum(construct_md_array(review_ids, review_nulls, 1, dims, lbs,
													INT8OID, 8, FLOAT8PASSBYVAL,
													TYPALIGN_DOUBLE));
	values[17] = nullable_array(n, strategies, TEXTOID);

	sr_spi_execute(get_event_plan(), values, nulls, true, false, 0, SPI_OK_INSERT);
}

/*
 * Notifications wait here until the transaction commits, each with the
 * subtransaction that queued it, and go to PostgreSQL's NOTIFY just before
 * (XACT_EVENT_PRE_COMMIT comes before PreCommit_Notify()), so that
 * listeners hear them when the transaction commits, as they would a
 * NOTIFY.  A NOTIFY made at once would keep the transaction from being
 * prepared: PostgreSQL refuses PREPARE TRANSACTION after one, and a
 * transaction that opened a review item could not take part in two-phase
 * commit, nor could a two-phase subscription's apply worker open one.  A
 * transaction that is prepared sends none: PostgreSQL has no way to send a
 * notification from one, so they are dropped at PREPARE.
 */
typedef struct PendingNotify
{
	const char *channel;
	char	   *payload;
	SubTransactionId subid;
} PendingNotify;

static List *pending_notifies = NIL;	/* PendingNotify *, in TopTransactionContext */
static bool notify_callbacks = false;

static void
notify_xact(XactEvent event, void *arg)
{
	List	   *due = pending_notifies;
	ListCell   *lc;

	/* the list's memory goes with the transaction's */
	pending_notifies = NIL;
	if (event != XACT_EVENT_PRE_COMMIT)
		return;
	foreach(lc, due)
	{
		PendingNotify *n = (PendingNotify *) lfirst(lc);

		Async_Notify(n->channel, n->payload);
	}
}

/*
 * The end of subtransaction mySubid for a list of this transaction's
 * entries, each tagged with the subtransaction that made it (the
 * SubTransactionId at subid_off in each): committed, its entries pass to
 * its parent; rolled back, they go.  Returns the list.
 */
static List *
subxact_end(List *list, size_t subid_off, SubXactEvent event,
			SubTransactionId mySubid, SubTransactionId parentSubid)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return list;
	foreach(lc, list)
	{
		SubTransactionId *subid = (SubTransactionId *) ((char *) lfirst(lc) + subid_off);

		if (*subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			*subid = parentSubid;
		else
			list = foreach_delete_current(list, lc);
	}
	return list;
}

static void
notify_subxact(SubXactEvent event, SubTransactionId mySubid,
			   SubTransactionId parentSubid, void *arg)
{
	pending_notifies = subxact_end(pending_notifies, offsetof(PendingNotify, subid),
								   event, mySubid, parentSubid);
}

/*
 * NOTIFY channel with payload when the transaction commits (not at all if
 * the subtransaction that asks rolls back, or the transaction is prepared).
 * channel must be a constant.
 */
void
sr_notify_at_commit(const char *channel, const char *payload)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingNotify *n = palloc(sizeof(PendingNotify));

	if (!notify_callbacks)
	{
		RegisterXactCallback(notify_xact, NULL);
		RegisterSubXactCallback(notify_subxact, NULL);
		notify_callbacks = true;
	}
	n->channel = channel;
	n->payload = pstrdup(payload);
	n->subid = GetCurrentSubTransactionId();
	pending_notifies = lappend(pending_notifies, n);
	MemoryContextSwitchTo(old);
}

/* Record the alert, and notify it; values are alert_send_plan's parameters. */
static void
send_alert(void *values)
{
	bool		isnull;
	Datum		payload;

	if (sr_spi_execute(alert_send_plan, (Datum *) values, NULL, true, false, 0, SPI_OK_SELECT) > 0)
	{
		payload = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			sr_notify_at_commit("sync_resolve_alert", TextDatumGetCString(payload));
	}
	SPI_freetuptable(SPI_tuptable);
}

/* The alert row changed after this transaction's snapshot: sent by another */
static bool
alert_sent_meanwhile(const ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE;
}

/*
 * The tables whose alert this transaction settled (alert_settled()), each
 * with the subtransaction that settled it: one rolled back takes its alert
 * row and NOTIFY with it, so the table is no longer settled (a run of
 * apply_batch() that an element failed, say).
 */
typedef struct SettledAlert
{
	Oid			relid;
	SubTransactionId subid;
} SettledAlert;

static LocalTransactionId settled_lxid = InvalidLocalTransactionId;
static List *settled = NIL;		/* SettledAlert *, in TopTransactionContext */
static bool settled_callback = false;

static void
settled_subxact(SubXactEvent event, SubTransactionId mySubid,
				SubTransactionId parentSubid, void *arg)
{
	if (settled_lxid == MyProc->lxid)
		settled = subxact_end(settled, offsetof(SettledAlert, subid), event, mySubid, parentSubid);
}

/* Whether this transaction settled relid's alert; note it as settled if settle. */
static bool
alert_settled(Oid relid, bool settle)
{
	ListCell   *lc;

	if (settled_lxid != MyProc->lxid)
	{
		settled_lxid = MyProc->lxid;
		settled = NIL;			/* the old list went with its transaction */
	}
	foreach(lc, settled)
		if (((SettledAlert *) lfirst(lc))->relid == relid)
			return true;
	if (settle)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
		SettledAlert *a = palloc(sizeof(SettledAlert));

		if (!settled_callback)
		{
			RegisterSubXactCallback(settled_subxact, NULL);
			settled_callback = true;
		}
		a->relid = relid;
		a->subid = GetCurrentSubTransactionId();
		settled = lappend(settled, a);
		MemoryContextSwitchTo(old);
	}
	return false;
}

/*
 * DESIGN 12: a table whose conflicts in the last hour outnumber its
 * tracked.alert_per_hour sends NOTIFY sync_resolve_alert, at most once an
 * hour.  sync_resolve.alert holds when each table last did.
 *
 * Whether one is due is read first, without a lock, so that the conflicts
 * after an alert neither count the hour's history again nor queue on the
 * row.  A due alert is sent by one session at a time: the others skip it
 * (an advisory lock of the table, tried, never waited for, so that two
 * sessions alerting two tables cannot deadlock).  The row is written in a
 * subtransaction, and where the row changed since this transaction's
 * snapshot (REPEATABLE READ fails that write) another session has just
 * alerted: the caller's write goes on without.  The notification goes out
 * when the transaction commits, and not at all if it rolls back, with the
 * row.  A transaction settles a table's alert once: after it sent it, or
 * gave way, it does not look again.  A SERIALIZABLE transaction does not
 * look at all: its reads of the history and of the alerts would make
 * concurrent writers fail to serialize; its conflicts count in the next
 * check a transaction at another level makes.  The hour is counted back
 * from the statement's start, not the transaction's (an index can search
 * by it, as it cannot by the clock); the alert's time is the clock's, as
 * the events' are, so that a long transaction does not date it back.  SPI
 * is connected.
 */
static void
alert_if_due(SrEventBatch *batch)
{
	ErrorData  *edata;
	Datum		values[4];
	ListCell   *lc;
	LOCKTAG		tag;
	bool		conflict = false;
	bool		isnull;
	int64		conflicts;

	foreach(lc, batch->events)
	{
		SrEvent    *ev = (SrEvent *) lfirst(lc);

		if (ev->kind != NULL && strcmp(ev->kind, "conflict") == 0)
			conflict = true;
	}
	if (!conflict || IsolationIsSerializable() || alert_settled(batch->relid, false))
		return;
	if (alert_due_plan == NULL)
	{
		Oid			types[2] = {REGCLASSOID, INT4OID};

		alert_due_plan = sr_prepare_kept(
			"SELECT c.n FROM (SELECT pg_catalog.count(*) AS n FROM sync_resolve.event e"
			" WHERE e.relid OPERATOR(pg_catalog.=) $1 AND e.kind OPERATOR(pg_catalog.=) 'conflict'"
			" AND e.at OPERATOR(pg_catalog.>)"
			" (pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) interval '1 hour')) c"
			" WHERE c.n OPERATOR(pg_catalog.>) $2"
			" AND NOT EXISTS (SELECT FROM sync_resolve.alert a WHERE a.relid OPERATOR(pg_catalog.=) $1"
			" AND a.alerted_at OPERATOR(pg_catalog.>)"
			" (pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) interval '1 hour'))",
			2, types, true);
	}
	if (alert_send_plan == NULL)
	{
		Oid			types[4] = {REGCLASSOID, INT8OID, TEXTOID, INT4OID};

		alert_send_plan = sr_prepare_kept(
			"WITH sent AS ("
			" INSERT INTO sync_resolve.alert AS a (relid, alerted_at, conflicts)"
			" VALUES ($1, pg_catalog.clock_timestamp(), $2)"
			" ON CONFLICT (relid) DO UPDATE SET alerted_at = excluded.alerted_at,"
			" conflicts = excluded.conflicts"
			" WHERE a.alerted_at OPERATOR(pg_catalog.<=)"
			" (excluded.alerted_at OPERATOR(pg_catalog.-) interval '1 hour')"
			" RETURNING a.conflicts)"
			" SELECT pg_catalog.jsonb_build_object("
			" 'table', $3, 'conflicts_last_hour', sent.conflicts, 'alert_per_hour', $4)::text"
			" FROM sent",
			4, types, true);
	}
	values[0] = ObjectIdGetDatum(batch->relid);
	values[1] = Int32GetDatum(batch->alert_per_hour);
	if (sr_spi_execute(alert_due_plan, values, NULL, true, false, 1, SPI_OK_SELECT) == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return;
	}
	conflicts = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
											&isnull));
	SPI_freetuptable(SPI_tuptable);

	/* sent here, given way or being sent by another: settled for this transaction */
	(void) alert_settled(batch->relid, true);
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) batch->relid, 0, SR_ALERT_LOCK_SPACE);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return;

	values[1] = Int64GetDatum(conflicts);
	values[2] = CStringGetTextDatum(batch->relname);
	values[3] = Int32GetDatum(batch->alert_per_hour);
	(void) sr_try_subxact(send_alert, values, alert_sent_meanwhile, &edata);
}

/*
 * Write the batch's events; the batch is emptied.  The actor is the
 * session's user (the writes themselves run as the extension owner).
 */
void
sr_events_flush(SrEventBatch *batch)
{
	Datum		actor;

	if (batch->events == NIL)
		return;
	actor = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	if (!flush_direct(batch, actor))
		flush_sql(batch, actor);
	if (batch->alert)
		alert_if_due(batch);
	list_free_deep(batch->events);
	batch->events = NIL;
}

/*
 * BEFORE UPDATE OR DELETE (row) and BEFORE TRUNCATE (statement) on
 * sync_resolve.event.
 */
PG_FUNCTION_INFO_V1(append_only_trigger);
Datum
append_only_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("append_only_trigger: not called by trigger manager")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("append_only_trigger: must be fired BEFORE")));

	if (pruning && TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("the history in %s is append-only",
					RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("Events explain past decisions; they are never changed."),
			 errhint("Use sync_resolve.prune_events() to delete old history.")));
	PG_RETURN_NULL();			/* not reached */
}

/*
 * prune_events(older_than interval): delete events and delivery ids older
 * than the given age.  Only its own DELETE passes the append-only trigger.
 */
PG_FUNCTION_INFO_V1(prune_events);
Datum
prune_events(PG_FUNCTION_ARGS)
{
	Interval   *age = PG_GETARG_INTERVAL_P(0);
	Datum		cutoff;
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	SrUserSwitch sw;
	int			rc;
	int64		deleted;

	/* a negative age would be a time to come: all of the history */
	if (sr_interval_sign(age) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("prune_events: older_than %s is negative",
						DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(age)))),
				 errhint("Pass an age such as '90 days'.")));
	/* an age reaching back past the first timestamp: nothing is that old */
	if (!sr_try_call2(timestamptz_mi_interval,
					  TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
					  IntervalPGetDatum(age), ERRCODE_DATETIME_VALUE_OUT_OF_RANGE, &cutoff))
		cutoff = TimestampTzGetDatum(DT_NOBEGIN);
	values[0] = cutoff;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	sr_become_owner(&sw);
	pruning = true;
	PG_TRY();
	{
		rc = SPI_execute_with_args("DELETE FROM sync_resolve.event WHERE at OPERATOR(pg_catalog.<) $1",
								   1, types, values, NULL, false, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "sync_resolve: pruning events failed: %s", SPI_result_code_string(rc));
		deleted = (int64) SPI_processed;
		rc = SPI_execute_with_args("DELETE FROM sync_resolve.delivery WHERE received_at OPERATOR(pg_catalog.<) $1",
								   1, types, values, NULL, false, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "sync_resolve: pruning deliveries failed: %s", SPI_result_code_string(rc));
	}
	PG_FINALLY();
	{
		pruning = false;
	}
	PG_END_TRY();
	sr_restore_user(&sw);
	SPI_finish();
	PG_RETURN_INT64(deleted);
}
