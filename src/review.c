/*-------------------------------------------------------------------------
 *
 * review.c
 *		The review queue: opening items for conflicts a person must decide,
 *		and resolve(), which carries out the decision.
 *
 * One open item per held (row, column or group), enforced by a partial
 * unique index; a later incoming value for a held column updates the open
 * item instead of opening another.  Opening an item sends NOTIFY
 * sync_resolve_review with a small JSON payload when the transaction
 * commits (sr_notify_at_commit(): none from a prepared transaction).  While
 * an item is open its columns are marked held in the row's local metadata,
 * so apply() sees it without querying the queue.
 *
 * Internal table: written as the extension owner.  resolve() writes the
 * tracked row as the calling user, who needs the table's privileges.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "sync_resolve.h"

#define REVIEW_NPARAMS 11

static SPIPlanPtr open_plan = NULL;
static SPIPlanPtr read_plan = NULL;
static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr close_plan = NULL;

static void
notify_review(int64 id, const SrReviewRequest *req)
{
	StringInfoData buf;
	Jsonb	   *payload;
	const char *keys[6] = {"id", "table", "key", "column", "kind", "source"};
	Jsonb	   *vals[6];
	JsonbValue	v;
	char	   *table = NULL;

	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(id)));
	vals[0] = JsonbValueToJsonb(&v);
	table = DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(req->relid)));
	v.type = jbvString;
	v.val.string.val = table;
	v.val.string.len = strlen(table);
	vals[1] = JsonbValueToJsonb(&v);
	vals[2] = req->key;
	if (req->column_name)
	{
		v.val.string.val = (char *) req->column_name;
		v.val.string.len = strlen(req->column_name);
		vals[3] = JsonbValueToJsonb(&v);
	}
	else
		vals[3] = NULL;
	v.val.string.val = (char *) req->kind;
	v.val.string.len = strlen(req->kind);
	vals[4] = JsonbValueToJsonb(&v);
	v.val.string.val = (char *) req->source;
	v.val.string.len = strlen(req->source);
	vals[5] = JsonbValueToJsonb(&v);
	payload = sr_jsonb_object(6, keys, vals);

	initStringInfo(&buf);
	appendStringInfoString(&buf, JsonbToCString(NULL, &payload->root, VARSIZE(payload)));
	if (buf.len >= NAMEDATALEN * 100)
	{
		/* NOTIFY payloads are small: a huge key is left out */
		vals[2] = NULL;
		payload = sr_jsonb_object(6, keys, vals);
		resetStringInfo(&buf);
		appendStringInfoString(&buf, JsonbToCString(NULL, &payload->root, VARSIZE(payload)));
	}
	sr_notify_at_commit("sync_resolve_review", buf.data);
}

/*
 * Open a review item, or update the open one for the same (row, column or
 * group).  *updated tells which.  Returns the item's id.
 */
int64
sr_review_open(const SrReviewRequest *req, bool *updated)
{
	Datum		values[REVIEW_NPARAMS];
	char		nulls[REVIEW_NPARAMS + 1];
	bool		isnull;
	int64		id;

	if (open_plan == NULL)
	{
		Oid			types[REVIEW_NPARAMS] = {REGCLASSOID, JSONBOID, TEXTOID, TEXTARRAYOID,
			TEXTOID, TEXTOID, JSONBOID, JSONBOID, JSONBOID, TEXTOID, TEXTOID};

		open_plan = sr_prepare_kept("INSERT INTO sync_resolve.review AS r (relid, key, column_name,"
									 " columns, kind, source, local_value, incoming_value, base_value,"
									 " strategy, reason)"
									 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
									 " ON CONFLICT (relid, key, (coalesce(column_name, '')))"
									 " WHERE status = 'open'"
									 " DO UPDATE SET source = excluded.source,"
									 " incoming_value = excluded.incoming_value,"
									 " local_value = excluded.local_value,"
									 " base_value = excluded.base_value,"
									 " reason = excluded.reason,"
									 " updated_at = pg_catalog.now()"
									 " RETURNING r.id, r.xmax::text OPERATOR(pg_catalog.<>) '0'",
									 REVIEW_NPARAMS, types, true);
	}
	memset(nulls, ' ', REVIEW_NPARAMS);
	nulls[REVIEW_NPARAMS] = '\0';
	values[0] = ObjectIdGetDatum(req->relid);
	values[1] = JsonbPGetDatum(req->key);
	values[2] = req->column_name ? CStringGetTextDatum(req->column_name) : (Datum) 0;
	nulls[2] = req->column_name ? ' ' : 'n';
	values[3] = sr_text_array(req->columns);
	values[4] = CStringGetTextDatum(req->kind);
	values[5] = CStringGetTextDatum(req->source);
	values[6] = req->local_value ? JsonbPGetDatum(req->local_value) : (Datum) 0;
	nulls[6] = req->local_value ? ' ' : 'n';
	values[7] = req->incoming_value ? JsonbPGetDatum(req->incoming_value) : (Datum) 0;
	nulls[7] = req->incoming_value ? ' ' : 'n';
	values[8] = req->base_value ? JsonbPGetDatum(req->base_value) : (Datum) 0;
	nulls[8] = req->base_value ? ' ' : 'n';
	values[9] = req->strategy ? CStringGetTextDatum(req->strategy) : (Datum) 0;
	nulls[9] = req->strategy ? ' ' : 'n';
	values[10] = req->reason ? CStringGetTextDatum(req->reason) : (Datum) 0;
	nulls[10] = req->reason ? ' ' : 'n';

	if (sr_spi_execute(open_plan, values, nulls, true, false, 0, SPI_OK_INSERT_RETURNING) != 1)
		elog(ERROR, "sync_resolve: opening a review item returned no row");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*updated = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (!*updated)
		notify_review(id, req);
	return id;
}

/* ------------------------------------------------------------------------
 * resolve()
 * ------------------------------------------------------------------------
 */

typedef struct SrReviewItem
{
	int64		id;
	Oid			relid;
	Jsonb	   *key;
	char	   *column_name;
	List	   *columns;
	char	   *kind;
	char	   *source;
	Jsonb	   *local_value;
	Jsonb	   *incoming_value;
	char	   *status;
} SrReviewItem;

static Jsonb *
get_jsonb(HeapTuple tup, TupleDesc td, int fnum)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, td, fnum, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

static char *
get_text(HeapTuple tup, TupleDesc td, int fnum)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, td, fnum, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * Read a review item; with lock, FOR UPDATE.  resolve() reads it first
 * without a lock, locks the tracked row, and only then locks the item, in
 * the order apply() takes them (row, then item), so the two never deadlock.
 */
static bool
fetch_item(int64 id, bool lock, SrReviewItem *item)
{
	Datum		values[1];
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	Datum		d;
	SPIPlanPtr *plan = lock ? &lock_plan : &read_plan;

	if (*plan == NULL)
	{
		Oid			types[1] = {INT8OID};

		*plan = sr_prepare_kept(lock ?
								"SELECT id, relid::oid, key, column_name, columns, kind, source,"
								" local_value, incoming_value, status"
								" FROM sync_resolve.review WHERE id OPERATOR(pg_catalog.=) $1"
								" FOR UPDATE" :
								"SELECT id, relid::oid, key, column_name, columns, kind, source,"
								" local_value, incoming_value, status"
								" FROM sync_resolve.review WHERE id OPERATOR(pg_catalog.=) $1",
								1, types, true);
	}
	values[0] = Int64GetDatum(id);
	if (sr_spi_execute(*plan, values, NULL, true, false, 0, SPI_OK_SELECT) == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	item->id = id;
	item->relid = DatumGetObjectId(SPI_getbinval(tup, td, 2, &isnull));
	item->key = get_jsonb(tup, td, 3);
	item->column_name = get_text(tup, td, 4);
	item->columns = NIL;
	d = SPI_getbinval(tup, td, 5, &isnull);
	if (!isnull)
	{
		Datum	   *elems;
		bool	   *enulls;
		int			n;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &enulls, &n);
		for (i = 0; i < n; i++)
			if (!enulls[i])
				item->columns = lappend(item->columns, TextDatumGetCString(elems[i]));
	}
	item->kind = get_text(tup, td, 6);
	item->source = get_text(tup, td, 7);
	item->local_value = get_jsonb(tup, td, 8);
	item->incoming_value = get_jsonb(tup, td, 9);
	item->status = get_text(tup, td, 10);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/* One value of the decision, as a JsonbValue: for a group, its field. */
static bool
decided_value(Jsonb *decided, bool is_group, const char *column, JsonbValue *out)
{
	if (decided == NULL)
		return false;
	if (is_group)
		return sr_jsonb_get_field(decided, column, out);
	if (JB_ROOT_IS_SCALAR(decided))
		return JsonbExtractScalar(&decided->root, out);
	out->type = jbvBinary;
	out->val.binary.data = &decided->root;
	out->val.binary.len = VARSIZE(decided) - VARHDRSZ;
	return true;
}

PG_FUNCTION_INFO_V1(resolve_review);
Datum
resolve_review(PG_FUNCTION_ARGS)
{
	int64		id;
	char	   *decision;
	Jsonb	   *value = NULL;
	char	   *note = NULL;
	SrReviewItem item;
	SrTable    *tab;
	Relation	rel;
	Datum	   *keyvals;
	Datum	   *L;
	bool	   *Lnull;
	SrRowState	st;
	SrShadowRow *lrow;
	char	   *cause;
	SrEventBatch batch;
	bool		found;
	bool		is_group;
	bool		take = false;
	bool		set = false;
	Jsonb	   *decided = NULL;
	char	   *rule;
	Jsonb	   *newobj = NULL;
	Jsonb	   *oldobj = NULL;
	TimestampTz now = GetCurrentTimestamp();
	Datum		result;
	int			c;

	PreventCommandIfReadOnly("sync_resolve.resolve()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("review_id and decision must not be null"),
				 errhint("Pass the id of an open item of sync_resolve.review and keep_local, take_incoming or set_value.")));
	id = PG_GETARG_INT64(0);
	decision = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(2))
		value = PG_GETARG_JSONB_P(2);
	if (!PG_ARGISNULL(3))
		note = text_to_cstring(PG_GETARG_TEXT_PP(3));

	if (strcmp(decision, "take_incoming") == 0)
		take = true;
	else if (strcmp(decision, "set_value") == 0)
		set = true;
	else if (strcmp(decision, "keep_local") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown decision \"%s\" for review item %lld", decision, (long long) id),
				 errhint("Use keep_local, take_incoming or set_value.")));
	if (set && value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("set_value for review item %lld needs a value", (long long) id),
				 errhint("Pass value => '\"the value\"'::jsonb; JSON null sets NULL.")));
	if (!set && value != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("decision %s for review item %lld takes no value", decision, (long long) id),
				 errhint("Use set_value to choose a value of your own.")));

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");

	if (!fetch_item(id, false, &item))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("review item %lld does not exist", (long long) id),
				 errhint("sync_resolve.review lists the items; open ones have status 'open'.")));
	if (strcmp(item.status, "open") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("review item %lld is already %s", (long long) id, item.status),
				 errhint("Only open items can be resolved.")));
	tab = sr_table_get(item.relid, true, RowExclusiveLock);
	if (tab == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the table of review item %lld is no longer tracked", (long long) id),
				 errhint("Dismiss the item: UPDATE sync_resolve.review SET status = 'dismissed' WHERE id = %lld.",
						 (long long) id)));
	rel = sr_table_hold(tab);

	keyvals = palloc(sizeof(Datum) * (tab->nkeys + 1));
	sr_parse_key(tab, item.key, NULL, "the key of review item", keyvals);
	L = palloc0(sizeof(Datum) * (tab->ncols + 1));
	Lnull = palloc0(sizeof(bool) * (tab->ncols + 1));
	found = sr_lock_row_or_key(tab, keyvals, item.key, strcmp(item.kind, "delete") == 0, L, Lnull);
	/* now the item, read again: an apply may have changed or closed it */
	item.status = NULL;
	if (!fetch_item(id, true, &item) || strcmp(item.status, "open") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("review item %lld is already %s", (long long) id,
						item.status ? item.status : "gone"),
				 errhint("Only open items can be resolved.")));
	sr_shadow_load(tab, keyvals, &st);
	lrow = &st.local;
	cause = psprintf("review #%lld", (long long) id);

	memset(&batch, 0, sizeof(batch));
	batch.relid = tab->relid;
	batch.key = item.key;
	batch.source = SR_LOCAL;
	batch.received_at = now;

	is_group = (item.column_name == NULL || list_length(item.columns) != 1 ||
				strcmp(item.column_name, (char *) linitial(item.columns)) != 0);
	decided = take ? item.incoming_value : value;

	/* whatever the decision, the item's columns are released */
	{
		ListCell   *lc;

		foreach(lc, item.columns)
		{
			c = sr_column_by_name(tab, (char *) lfirst(lc));
			if (c >= 0 && lrow->held[c])
			{
				lrow->held[c] = false;
				lrow->dirty = true;
			}
		}
	}

	if (strcmp(item.kind, "delete") == 0)
	{
		/* the source deleted the row while it was changed here */
		if (set)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("review item %lld is about a delete from %s: set_value does not apply",
							(long long) id, item.source),
					 errhint("Use take_incoming to delete the row, or keep_local to keep it.")));
		if (take)
		{
			bool		back = found &&
				sr_delete_row_then_back(tab, sr_table_system_index(tab, item.source), keyvals, &st);

			if (back)
				rule = psprintf("deleted the row, as %s did; a trigger on table %s wrote it again",
								item.source, tab->display_name);
			else if (found)
			{
				lrow->deleted = true;
				lrow->deleted_at = now;
				lrow->deleted_by = item.source;
				lrow->dirty = true;
				oldobj = item.local_value;
				rule = psprintf("deleted the row, as %s did", item.source);
				sr_outbox_fan_out_delete(tab, item.key, &st, item.source, lrow->version, cause, &batch);
			}
			else
				rule = pstrdup("the row was already gone");
			/* the source deleted it: nothing waiting for it applies (unless the row is back) */
			if (!back)
				sr_outbox_withdraw(tab, item.key, item.source, false, &batch);
		}
		else
		{
			/* the row stays: the source that deleted it gets it back */
			if (found && !sr_system_is_peer(item.source))
				(void) sr_outbox_queue(tab, item.key, item.source, false,
									   sr_row_object(tab, L, Lnull, NULL), lrow->version, cause);
			rule = pstrdup("kept the row");
		}
	}
	else if (strcmp(item.kind, "update_after_delete") == 0 ||
			 (strcmp(item.kind, "refused") == 0 && !found))
	{
		/* the source changed a row deleted here: bring it back, or not */
		if (take || set)
		{
			Bitmapset  *cols = NULL;
			bool		revived;
			Datum	   *vals = palloc0(sizeof(Datum) * (tab->ncols + 1));
			bool	   *nulls = palloc(sizeof(bool) * (tab->ncols + 1));
			SrErrorTarget where = {tab, item.source,
			psprintf("in the decision on review item %lld", (long long) id)};

			if (found)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the row of review item %lld exists again", (long long) id),
						 errhint("Dismiss the item, or decide keep_local.")));
			if (decided == NULL || !JB_ROOT_IS_OBJECT(decided))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("review item %lld needs a row object to re-insert", (long long) id),
						 errhint("Pass value => '{\"column\": ...}'::jsonb.")));
			for (c = 0; c < tab->ncols; c++)
				nulls[c] = true;
			for (c = 0; c < tab->nkeys; c++)
			{
				vals[tab->keys[c]] = keyvals[c];
				nulls[tab->keys[c]] = false;
				cols = bms_add_member(cols, tab->keys[c]);
			}
			for (c = 0; c < tab->ncols; c++)
			{
				JsonbValue	v;

				if (tab->cols[c].is_key || !sr_jsonb_get_field(decided, tab->cols[c].name, &v))
					continue;
				vals[c] = sr_jsonb_value_to_datum(&tab->cols[c], &v, &nulls[c], &where);
				cols = bms_add_member(cols, c);
				lrow->col_writer[c] = take ? item.source : SR_LOCAL;
				lrow->col_changed_at[c] = now;
			}
			revived = lrow->found && lrow->deleted;
			if (!sr_row_insert(tab, keyvals, cols, vals, nulls, NULL, NULL))
				ereport(ERROR,
						(errcode(ERRCODE_UNIQUE_VIOLATION),
						 errmsg("the row of review item %lld clashes with an existing row of table %s",
								(long long) id, tab->display_name),
						 errhint("Dismiss the item, or decide keep_local.")));
			lrow->deleted = false;
			lrow->deleted_by = NULL;
			lrow->dirty = true;
			newobj = decided;
			rule = psprintf("re-inserted the row%s", take ? psprintf(" as %s sent it", item.source) : "");
			{
				bool	   *inserted = palloc0(sizeof(bool) * (tab->ncols + 1));

				for (c = 0; c < tab->ncols; c++)
					inserted[c] = bms_is_member(c, cols);
				sr_outbox_fan_out(tab, item.key, &st, take ? item.source : NULL, vals, nulls,
								  inserted, revived, lrow->version, cause, &batch, NULL);
				if (take && revived)
					sr_outbox_withdraw(tab, item.key, item.source, true, &batch);
			}
		}
		else if (found)
		{
			/* brought back here meanwhile: the source hears the row as it is */
			sr_outbox_fan_out(tab, item.key, &st, NULL, L, Lnull, NULL, true, lrow->version,
							  cause, &batch, NULL);
			rule = pstrdup("kept the row as it is here again");
		}
		else
		{
			/* the row stays deleted: the source that changed it hears so */
			if (!sr_system_is_peer(item.source))
				(void) sr_outbox_queue(tab, item.key, item.source, true, NULL, lrow->version, cause);
			rule = pstrdup("the row stays deleted");
		}
	}
	else
	{
		/* a column, or a column group */
		Bitmapset  *changed = NULL;
		Datum	   *newvals = palloc(sizeof(Datum) * (tab->ncols + 1));
		bool	   *newnulls = palloc(sizeof(bool) * (tab->ncols + 1));
		bool	   *which = palloc0(sizeof(bool) * (tab->ncols + 1));
		SrErrorTarget where = {tab, item.source,
		psprintf("in the decision on review item %lld", (long long) id)};
		ListCell   *lc;

		if (!found && (take || set))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the row of review item %lld no longer exists", (long long) id),
					 errhint("Decide keep_local to close the item.")));
		if (take && decided == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("review item %lld holds no incoming value", (long long) id),
					 errhint("Use keep_local or set_value.")));
		if (set && is_group && !JB_ROOT_IS_OBJECT(decided))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("review item %lld is about group %s: set_value needs an object of its columns",
							(long long) id, item.column_name ? item.column_name : "(row)"),
					 errhint("Pass value => '{\"column\": ..., ...}'::jsonb; columns left out keep their local value.")));

		memcpy(newvals, L, sizeof(Datum) * tab->ncols);
		memcpy(newnulls, Lnull, sizeof(bool) * tab->ncols);
		foreach(lc, item.columns)
		{
			JsonbValue	v;

			c = sr_column_by_name(tab, (char *) lfirst(lc));
			if (c < 0)
				continue;		/* dropped since */
			which[c] = true;
			if (!(take || set) || !decided_value(decided, is_group, tab->cols[c].name, &v))
				continue;
			newvals[c] = sr_jsonb_value_to_datum(&tab->cols[c], &v, &newnulls[c], &where);
			if (!sr_datum_equal(&tab->cols[c], newvals[c], newnulls[c], L[c], Lnull[c]))
			{
				changed = bms_add_member(changed, c);
				lrow->col_writer[c] = take ? item.source : SR_LOCAL;
				lrow->col_changed_at[c] = now;
			}
		}
		oldobj = found ? sr_row_object(tab, L, Lnull, which) : NULL;
		if (changed != NULL)
		{
			if (!sr_row_update(tab, keyvals, changed, newvals, newnulls, NULL, NULL))
				ereport(ERROR,
						(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
						 errmsg("a trigger on table %s skipped the write of review item %lld",
								tab->display_name, (long long) id),
						 errhint("Check the table's BEFORE UPDATE triggers.")));
			newobj = sr_row_object(tab, newvals, newnulls, which);
			if (set)
				lrow->version = sr_vclock_tick(lrow->version, SR_LOCAL);
		}
		if (take)
			rule = psprintf("took %s's value", item.source);
		else if (set)
			rule = pstrdup("set a value of their own");
		else
			rule = pstrdup("kept the local value");
		/* every system that does not hold the decided value hears it */
		if (found)
			sr_outbox_fan_out(tab, item.key, &st, NULL, newvals, newnulls, which,
							  false, lrow->version, cause, &batch, NULL);
	}

	if (note != NULL)
		rule = psprintf("%s; note: %s", rule, note);
	sr_event_add(&batch, "review_resolved", item.column_name, oldobj, item.incoming_value,
				 NULL, newobj, rule, decision, id);
	if (lrow->dirty)
	{
		lrow->received_at = now;
		sr_shadow_local_write(tab, keyvals, lrow);
	}
	sr_events_flush(&batch);

	/* close the item and return it */
	{
		Datum		values[4];
		char		nulls[5] = "    ";

		if (close_plan == NULL)
		{
			Oid			types[4] = {INT8OID, NAMEOID, TEXTOID, TEXTOID};

			close_plan = sr_prepare_kept("UPDATE sync_resolve.review SET status = 'resolved',"
										  " resolved_at = pg_catalog.now(), updated_at = pg_catalog.now(),"
										  " resolved_by = $2, decision = $3, note = $4"
										  " WHERE id OPERATOR(pg_catalog.=) $1 RETURNING *",
										  4, types, true);
		}
		values[0] = Int64GetDatum(id);
		values[1] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
		values[2] = CStringGetTextDatum(decision);
		values[3] = note ? CStringGetTextDatum(note) : (Datum) 0;
		nulls[3] = note ? ' ' : 'n';
		if (sr_spi_execute(close_plan, values, nulls, true, false, 0, SPI_OK_UPDATE_RETURNING) != 1)
			elog(ERROR, "sync_resolve: review item %lld vanished", (long long) id);
		result = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc));
	}
	sr_table_release(rel);
	SPI_finish();
	sr_cache_leave();
	PG_RETURN_DATUM(result);
}
