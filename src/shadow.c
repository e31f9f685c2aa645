/*-------------------------------------------------------------------------
 *
 * shadow.c
 *		Reading and writing a tracked table's shadow: one row per (row,
 *		system).
 *
 * For an external system the row is its base, the common ancestor of the
 * 3-way comparison: the values it is known to hold (typed columns c<attnum>,
 * with known[] saying which the base holds, since a partial payload teaches
 * only some), the change time and version it last sent, and a tombstone
 * when it deleted the row.  For 'local' the row carries the local version
 * and, per column, when and by which system the local value was last
 * written, and which columns an open review holds.
 *
 * On disk the per-column arrays are indexed by attnum, which is stable for
 * a column's life; in memory everything is indexed like SrTable.cols.
 *
 * Internal table, read by its primary key and written with direct.c, not
 * SQL: every apply() and local write reads and writes it.  A base read is
 * updated in place, without a row lock of its own, when it still is the
 * current version: every writer of a row's shadow holds the tracked row's
 * lock (or, for a row that does not exist, inserts under the primary key).
 * Otherwise it is upserted as ON CONFLICT DO UPDATE would.  With a trigger
 * on the shadow (see direct.c) both go through SQL, as the extension owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"

#include "sync_resolve.h"

const char *const sr_shadow_meta_names[SR_SH_NMETA] = {
	[SR_SH_SYSTEM] = "system",
	[SR_SH_KNOWN] = "known",
	[SR_SH_CHANGED_AT] = "changed_at",
	[SR_SH_VERSION] = "version",
	[SR_SH_RECEIVED_AT] = "received_at",
	[SR_SH_DELETED_AT] = "deleted_at",
	[SR_SH_DELETED_BY] = "deleted_by",
	[SR_SH_COL_CHANGED_AT] = "col_changed_at",
	[SR_SH_COL_WRITER] = "col_writer",
	[SR_SH_HELD] = "held",
	[SR_SH_SENT] = "sent",
	[SR_SH_OWN_XIDS] = "own_xids",
	[SR_SH_SEEN_AT] = "seen_at",
};

/* The type of a meta column (vclock_type: sync_resolve.vclock's oid). */
Oid
sr_shadow_meta_type(SrShadowMeta m, Oid vclock_type)
{
	switch (m)
	{
		case SR_SH_SYSTEM:
		case SR_SH_DELETED_BY:
			return TEXTOID;
		case SR_SH_KNOWN:
		case SR_SH_HELD:
		case SR_SH_SENT:
			return BOOLARRAYOID;
		case SR_SH_CHANGED_AT:
		case SR_SH_RECEIVED_AT:
		case SR_SH_DELETED_AT:
			return TIMESTAMPTZOID;
		case SR_SH_VERSION:
			return vclock_type;
		case SR_SH_COL_CHANGED_AT:
		case SR_SH_SEEN_AT:
			return TIMESTAMPTZARRAYOID;
		case SR_SH_COL_WRITER:
			return TEXTARRAYOID;
		case SR_SH_OWN_XIDS:
			return XID8ARRAYOID;
		case SR_SH_NMETA:
			break;
	}
	elog(ERROR, "sync_resolve: no shadow column %d", (int) m);
	return InvalidOid;			/* keep the compiler quiet */
}

/*
 * The shadow as direct.c reads and writes it: its columns in the order of
 * plan_write_shadow's parameters, merging on its primary key.  Part of the
 * table's cache entry, which any change to the shadow drops.
 */
static SrDirectTable *
shadow_direct(SrTable *tab)
{
	SrDirectTable *t;
	SrDirectColumn *cols;
	MemoryContext old;
	int			i;

	if (tab->shadow_direct != NULL)
		return tab->shadow_direct;
	old = MemoryContextSwitchTo(tab->mcxt);
	cols = palloc0(sizeof(SrDirectColumn) * (tab->ncols + SR_SH_NMETA));
	for (i = 0; i < tab->ncols; i++)
	{
		cols[i].name = psprintf("c%d", tab->cols[i].attnum);
		cols[i].type = tab->cols[i].basetypid;
	}
	for (i = 0; i < SR_SH_NMETA; i++)
	{
		SrShadowMeta m = (SrShadowMeta) i;

		cols[tab->ncols + i].name = sr_shadow_meta_names[i];
		if (m == SR_SH_VERSION)
			cols[tab->ncols + i].sr_type = "vclock";
		else
			cols[tab->ncols + i].type = sr_shadow_meta_type(m, InvalidOid);
	}
	t = palloc0(sizeof(SrDirectTable));
	t->relname = tab->shadow_name;
	t->relid = tab->shadow_relid;
	t->owner_cxt = tab->mcxt;
	t->ncols = tab->ncols + SR_SH_NMETA;
	t->cols = cols;
	t->arbiter_pkey = true;
	MemoryContextSwitchTo(old);
	tab->shadow_direct = t;
	return t;
}

void
sr_shadow_init_row(const SrTable *tab, SrShadowRow *row)
{
	int			i;

	memset(row, 0, sizeof(*row));
	row->values = palloc0(sizeof(Datum) * (tab->ncols + 1));
	row->nulls = palloc(sizeof(bool) * (tab->ncols + 1));
	row->known = palloc0(sizeof(bool) * (tab->ncols + 1));
	row->col_changed_at = palloc(sizeof(TimestampTz) * (tab->ncols + 1));
	row->col_writer = palloc0(sizeof(char *) * (tab->ncols + 1));
	row->held = palloc0(sizeof(bool) * (tab->ncols + 1));
	row->sent = palloc0(sizeof(bool) * (tab->ncols + 1));
	for (i = 0; i <= tab->ncols; i++)
	{
		row->nulls[i] = true;
		TIMESTAMP_NOBEGIN(row->col_changed_at[i]);
	}
}

/* Deconstruct a per-attnum array; returns the number of elements. */
static int
attnum_array(Datum d, bool isnull, Oid elemtype, Datum **elems, bool **nulls)
{
	ArrayType  *arr;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			n;

	if (isnull)
		return 0;
	arr = DatumGetArrayTypeP(d);
	if (ARR_NDIM(arr) != 1)
		return 0;
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, elems, nulls, &n);
	/* arrays written here start at 1; be safe about others */
	if (ARR_LBOUND(arr)[0] != 1)
		return 0;
	return n;
}

/*
 * The elements of an array of a 64-bit pass-by-value type (xid8,
 * timestamptz), nulls left out; returns how many.
 */
static int
int64_list(Datum d, bool isnull, Oid elemtype, int64 **out)
{
	Datum	   *elems;
	bool	   *enulls;
	int			n = attnum_array(d, isnull, elemtype, &elems, &enulls);
	int			k = 0;
	int			i;

	*out = palloc(sizeof(int64) * (n + 1));
	for (i = 0; i < n; i++)
		if (!enulls[i])
			(*out)[k++] = DatumGetInt64(elems[i]);
	return k;
}

static inline Datum
column_value(const Datum *vals, const bool *vnulls, int i, bool *isnull)
{
	*isnull = vnulls[i];
	return vals[i];
}

/*
 * Fill row from one shadow row, given as its columns in the order of
 * plan_read_shadow's (the table's columns, then the meta columns).
 */
static void
fill_row(const SrTable *tab, const Datum *vals, const bool *vnulls, SrShadowRow *row)
{
	int			i;
	int			base = tab->ncols;	/* 0-based index of the first meta column */
	bool		isnull;
	Datum		d;
	Datum	   *elems;
	bool	   *enulls;
	int			n;

	row->found = true;
	for (i = 0; i < tab->ncols; i++)
	{
		const SrColumn *col = &tab->cols[i];

		row->nulls[i] = vnulls[i];
		row->values[i] = vnulls[i] ? (Datum) 0 : datumCopy(vals[i], col->typbyval, col->typlen);
	}

	d = column_value(vals, vnulls, base + SR_SH_KNOWN, &isnull);
	n = attnum_array(d, isnull, BOOLOID, &elems, &enulls);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		row->known[i] = tab->cols[i].is_key ||
			(a < n && !enulls[a] && DatumGetBool(elems[a]));
	}

	d = column_value(vals, vnulls, base + SR_SH_CHANGED_AT, &isnull);
	row->has_changed_at = !isnull;
	if (!isnull)
		row->changed_at = DatumGetTimestampTz(d);

	d = column_value(vals, vnulls, base + SR_SH_VERSION, &isnull);
	row->version = isnull ? NULL : (SrVclock *) PG_DETOAST_DATUM_COPY(d);

	d = column_value(vals, vnulls, base + SR_SH_RECEIVED_AT, &isnull);
	if (!isnull)
		row->received_at = DatumGetTimestampTz(d);

	d = column_value(vals, vnulls, base + SR_SH_DELETED_AT, &isnull);
	row->deleted = !isnull;
	if (!isnull)
		row->deleted_at = DatumGetTimestampTz(d);
	d = column_value(vals, vnulls, base + SR_SH_DELETED_BY, &isnull);
	row->deleted_by = isnull ? NULL : TextDatumGetCString(d);

	d = column_value(vals, vnulls, base + SR_SH_COL_CHANGED_AT, &isnull);
	n = attnum_array(d, isnull, TIMESTAMPTZOID, &elems, &enulls);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		if (a < n && !enulls[a])
			row->col_changed_at[i] = DatumGetTimestampTz(elems[a]);
	}

	d = column_value(vals, vnulls, base + SR_SH_COL_WRITER, &isnull);
	n = attnum_array(d, isnull, TEXTOID, &elems, &enulls);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		if (a < n && !enulls[a])
			row->col_writer[i] = TextDatumGetCString(elems[a]);
	}

	d = column_value(vals, vnulls, base + SR_SH_HELD, &isnull);
	n = attnum_array(d, isnull, BOOLOID, &elems, &enulls);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		row->held[i] = (a < n && !enulls[a] && DatumGetBool(elems[a]));
	}

	d = column_value(vals, vnulls, base + SR_SH_SENT, &isnull);
	n = attnum_array(d, isnull, BOOLOID, &elems, &enulls);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		row->sent[i] = (a < n && !enulls[a] && DatumGetBool(elems[a]));
	}

	d = column_value(vals, vnulls, base + SR_SH_OWN_XIDS, &isnull);
	row->nown = int64_list(d, isnull, XID8OID, &row->own_xids);
	d = column_value(vals, vnulls, base + SR_SH_SEEN_AT, &isnull);
	row->nseen = int64_list(d, isnull, TIMESTAMPTZOID, &row->seen_at);
}

/* A one-dimensional array of n elements, or NULL when there are none. */
static Datum
plain_array(Datum *elems, int n, Oid elemtype, bool *isnull)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	*isnull = (n == 0);
	if (n == 0)
		return (Datum) 0;
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(elems, n, elemtype, typlen, typbyval, typalign));
}

/* Where the shadow row of system (a text Datum) goes in st; NULL: nowhere. */
static SrShadowRow *
row_of_system(const SrTable *tab, SrRowState *st, Datum system)
{
	char	   *sys = TextDatumGetCString(system);
	int			i;

	if (strcmp(sys, SR_LOCAL) == 0)
		return &st->local;
	if ((i = sr_table_system_index(tab, sys)) >= 0)
		return &st->bases[i];
	return NULL;				/* a system no longer syncing the table */
}

/*
 * Read what the shadow holds for one row: the local metadata and the base
 * of every system of the table.  Rows not found stay as sr_shadow_init_row
 * left them (found = false); rows of systems no longer syncing the table
 * are ignored.
 */
void
sr_shadow_load(SrTable *tab, const Datum *keyvals, SrRowState *st)
{
	int			ncols = tab->ncols + SR_SH_NMETA;
	Datum	   *vals = palloc(sizeof(Datum) * ncols);
	bool	   *vnulls = palloc(sizeof(bool) * ncols);
	SrDirectRead r;
	int			i;

	sr_shadow_init_row(tab, &st->local);
	st->bases = palloc(sizeof(SrShadowRow) * (tab->nsystems + 1));
	for (i = 0; i < tab->nsystems; i++)
		sr_shadow_init_row(tab, &st->bases[i]);

	if (sr_direct_read_begin(&r, shadow_direct(tab), tab->nkeys, keyvals))
	{
		TupleTableSlot *slot;

		while ((slot = sr_direct_read_next(&r)) != NULL)
		{
			SrShadowRow *row;
			bool		isnull;

			slot_getallattrs(slot);
			for (i = 0; i < ncols; i++)
			{
				vals[i] = slot->tts_values[r.attnums[i] - 1];
				vnulls[i] = slot->tts_isnull[r.attnums[i] - 1];
			}
			row = row_of_system(tab, st, vals[tab->ncols + SR_SH_SYSTEM]);
			if (row == NULL)
				continue;
			fill_row(tab, vals, vnulls, row);
			row->has_tid = true;
			row->tid = slot->tts_tid;
			row->xmin = DatumGetTransactionId(slot_getsysattr(slot, MinTransactionIdAttributeNumber,
															  &isnull));
		}
		sr_direct_read_end(&r);
	}
	else
	{
		uint64		k;
		int			n;

		sr_table_plans(tab);
		n = sr_spi_execute(tab->plan_read_shadow, (Datum *) keyvals, NULL,
						   true, false, 0, SPI_OK_SELECT);

		for (k = 0; k < (uint64) n; k++)
		{
			SrShadowRow *row;

			heap_deform_tuple(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, vals, vnulls);
			row = row_of_system(tab, st, vals[tab->ncols + SR_SH_SYSTEM]);
			if (row != NULL)
				fill_row(tab, vals, vnulls, row);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	pfree(vals);
	pfree(vnulls);
}

/*
 * Parameter *value (*null) of a per-attnum array of natts elements from a
 * per-column one; SQL NULL when every element is, which readers take alike
 * (a shorter row: most bases have sent nothing, most rows hold no column).
 */
static void
set_attnum_array(const SrTable *tab, Oid elemtype, const Datum *percol, const bool *percol_null,
				 Datum *value, char *null)
{
	Datum	   *elems = palloc0(sizeof(Datum) * (tab->natts + 1));
	bool	   *nulls = palloc(sizeof(bool) * (tab->natts + 1));
	int			dims[1];
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;
	bool		any = false;
	int			i;

	for (i = 0; i < tab->natts; i++)
		nulls[i] = true;
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		elems[a] = percol[i];
		nulls[a] = percol_null[i];
		any |= !percol_null[i];
	}
	*value = (Datum) 0;
	*null = 'n';
	if (!any)
		return;
	dims[0] = tab->natts;
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	*value = PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
												elemtype, typlen, typbyval, typalign));
	*null = ' ';
}

/* The parameters of one row of plan_write_shadow: values[] and nulls[]. */
static void
row_params(SrTable *tab, const Datum *keyvals, const char *system,
		   SrShadowRow *row, bool is_local, Datum *values, char *nulls)
{
	int			nparams = tab->ncols + SR_SH_NMETA;
	Datum	   *tmp = palloc0(sizeof(Datum) * (tab->ncols + 1));
	bool	   *tmpnull = palloc(sizeof(bool) * (tab->ncols + 1));
	int			i;
	int			k = 0;
	int			m = tab->ncols;

	memset(values, 0, sizeof(Datum) * nparams);
	memset(nulls, 'n', nparams);

	for (i = 0; i < tab->ncols; i++)
	{
		if (tab->cols[i].is_key)
		{
			values[i] = keyvals[k++];
			nulls[i] = ' ';
		}
		else if (!is_local && row->known[i] && !row->nulls[i])
		{
			values[i] = row->values[i];
			nulls[i] = ' ';
		}
	}

	values[m + SR_SH_SYSTEM] = CStringGetTextDatum(system);
	nulls[m + SR_SH_SYSTEM] = ' ';
	if (!is_local)
	{
		for (i = 0; i < tab->ncols; i++)
		{
			tmp[i] = BoolGetDatum(row->known[i]);
			tmpnull[i] = tab->cols[i].is_key;
		}
		set_attnum_array(tab, BOOLOID, tmp, tmpnull, &values[m + SR_SH_KNOWN], &nulls[m + SR_SH_KNOWN]);
		for (i = 0; i < tab->ncols; i++)
		{
			tmp[i] = BoolGetDatum(row->sent[i]);
			tmpnull[i] = tab->cols[i].is_key || !row->sent[i];
		}
		set_attnum_array(tab, BOOLOID, tmp, tmpnull, &values[m + SR_SH_SENT], &nulls[m + SR_SH_SENT]);
	}
	if (row->has_changed_at)
	{
		values[m + SR_SH_CHANGED_AT] = TimestampTzGetDatum(row->changed_at);
		nulls[m + SR_SH_CHANGED_AT] = ' ';
	}
	if (row->version)
	{
		values[m + SR_SH_VERSION] = PointerGetDatum(row->version);
		nulls[m + SR_SH_VERSION] = ' ';
	}
	values[m + SR_SH_RECEIVED_AT] = TimestampTzGetDatum(row->received_at);
	nulls[m + SR_SH_RECEIVED_AT] = ' ';
	if (row->deleted)
	{
		values[m + SR_SH_DELETED_AT] = TimestampTzGetDatum(row->deleted_at);
		nulls[m + SR_SH_DELETED_AT] = ' ';
		if (row->deleted_by)
		{
			values[m + SR_SH_DELETED_BY] = CStringGetTextDatum(row->deleted_by);
			nulls[m + SR_SH_DELETED_BY] = ' ';
		}
	}
	if (is_local)
	{
		for (i = 0; i < tab->ncols; i++)
		{
			tmp[i] = TimestampTzGetDatum(row->col_changed_at[i]);
			tmpnull[i] = tab->cols[i].is_key || TIMESTAMP_IS_NOBEGIN(row->col_changed_at[i]);
		}
		set_attnum_array(tab, TIMESTAMPTZOID, tmp, tmpnull, &values[m + SR_SH_COL_CHANGED_AT], &nulls[m + SR_SH_COL_CHANGED_AT]);
		for (i = 0; i < tab->ncols; i++)
		{
			tmpnull[i] = tab->cols[i].is_key || row->col_writer[i] == NULL;
			tmp[i] = tmpnull[i] ? (Datum) 0 : CStringGetTextDatum(row->col_writer[i]);
		}
		set_attnum_array(tab, TEXTOID, tmp, tmpnull, &values[m + SR_SH_COL_WRITER], &nulls[m + SR_SH_COL_WRITER]);
		for (i = 0; i < tab->ncols; i++)
		{
			tmp[i] = BoolGetDatum(row->held[i]);
			tmpnull[i] = tab->cols[i].is_key || !row->held[i];
		}
		set_attnum_array(tab, BOOLOID, tmp, tmpnull, &values[m + SR_SH_HELD], &nulls[m + SR_SH_HELD]);

		sr_note_own_write(tab, row);
		{
			Datum	   *xids = palloc(sizeof(Datum) * (row->nown + 1));
			Datum	   *times = palloc(sizeof(Datum) * (row->nseen + 1));
			bool		isnull;

			for (i = 0; i < row->nown; i++)
				xids[i] = Int64GetDatum(row->own_xids[i]);
			values[m + SR_SH_OWN_XIDS] = plain_array(xids, row->nown, XID8OID, &isnull);
			nulls[m + SR_SH_OWN_XIDS] = isnull ? 'n' : ' ';
			for (i = 0; i < row->nseen; i++)
				times[i] = TimestampTzGetDatum(row->seen_at[i]);
			values[m + SR_SH_SEEN_AT] = plain_array(times, row->nseen, TIMESTAMPTZOID, &isnull);
			nulls[m + SR_SH_SEEN_AT] = isnull ? 'n' : ' ';
		}
	}

}

/*
 * Write one shadow row directly: an update of the version read or written
 * last, when it still is the row's current one (the tracked row's lock
 * keeps other writers out), else an upsert as ON CONFLICT DO UPDATE does.
 */
static void
write_direct(SrDirect *d, int nparams, const Datum *values, const char *nulls,
			 SrShadowRow *row)
{
	int			i;

	for (i = 0; i < nparams; i++)
		sr_direct_set(d, i, values[i], nulls[i] == 'n');
	if (!row->has_tid || !sr_direct_update_tid(d, &row->tid, row->xmin))
	{
		/* every column is given: an update after a failed one writes the same */
		while (sr_direct_insert_or_find(d, false) != NULL && !sr_direct_update(d))
			;
	}
	row->has_tid = true;
	row->tid = d->slot->tts_tid;
	row->xmin = GetCurrentTransactionId();
}

uint64		sr_shadow_writes = 0;

/*
 * Upsert a system's base (when system is not NULL) and the local metadata
 * (when lrow is not NULL).
 */
void
sr_shadow_write_rows(SrTable *tab, const Datum *keyvals, const char *system,
					 SrShadowRow *row, SrShadowRow *lrow)
{
	int			nparams = tab->ncols + SR_SH_NMETA;
	Datum	   *values = palloc(sizeof(Datum) * nparams * 2);
	char	   *nulls = palloc(sizeof(char) * (nparams * 2 + 1));
	SrShadowRow *rows[2];
	SrDirect	d;
	int			n = 0;
	int			r;

	if (system != NULL)
	{
		row_params(tab, keyvals, system, row, false, values, nulls);
		rows[n++] = row;
	}
	if (lrow != NULL)
	{
		row_params(tab, keyvals, SR_LOCAL, lrow, true, values + n * nparams, nulls + n * nparams);
		rows[n++] = lrow;
	}
	if (n == 0)
		return;
	sr_shadow_writes++;
	if (sr_direct_begin(&d, shadow_direct(tab)))
	{
		for (r = 0; r < n; r++)
			write_direct(&d, nparams, values + r * nparams, nulls + r * nparams, rows[r]);
		sr_direct_end(&d);
	}
	else
	{
		nulls[n * nparams] = '\0';
		sr_table_plans(tab);
		sr_spi_execute(n == 2 ? tab->plan_write_shadow2 : tab->plan_write_shadow,
					   values, nulls, true, false, 0, SPI_OK_INSERT);
	}
	for (r = 0; r < n; r++)
	{
		rows[r]->found = true;
		rows[r]->dirty = false;
	}
}

/* Upsert the base of an external system. */
void
sr_shadow_write(SrTable *tab, const Datum *keyvals, const char *system,
				SrShadowRow *row)
{
	sr_shadow_write_rows(tab, keyvals, system, row, NULL);
}

/* Upsert the local metadata of a row. */
void
sr_shadow_local_write(SrTable *tab, const Datum *keyvals, SrShadowRow *lrow)
{
	sr_shadow_write_rows(tab, keyvals, NULL, NULL, lrow);
}
