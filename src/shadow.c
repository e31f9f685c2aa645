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
 * Internal table: read and written as the extension owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

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

static void
fill_row(const SrTable *tab, HeapTuple tup, TupleDesc td, SrShadowRow *row)
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

		d = SPI_getbinval(tup, td, i + 1, &isnull);
		row->nulls[i] = isnull;
		row->values[i] = isnull ? (Datum) 0 : datumCopy(d, col->typbyval, col->typlen);
	}

	d = SPI_getbinval(tup, td, base + SR_SH_KNOWN + 1, &isnull);
	n = attnum_array(d, isnull, BOOLOID, &elems, &enulls);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		row->known[i] = tab->cols[i].is_key ||
			(a < n && !enulls[a] && DatumGetBool(elems[a]));
	}

	d = SPI_getbinval(tup, td, base + SR_SH_CHANGED_AT + 1, &isnull);
	row->has_changed_at = !isnull;
	if (!isnull)
		row->changed_at = DatumGetTimestampTz(d);

	d = SPI_getbinval(tup, td, base + SR_SH_VERSION + 1, &isnull);
	row->version = isnull ? NULL : (SrVclock *) PG_DETOAST_DATUM_COPY(d);

	d = SPI_getbinval(tup, td, base + SR_SH_RECEIVED_AT + 1, &isnull);
	if (!isnull)
		row->received_at = DatumGetTimestampTz(d);

	d = SPI_getbinval(tup, td, base + SR_SH_DELETED_AT + 1, &isnull);
	row->deleted = !isnull;
	if (!isnull)
		row->deleted_at = DatumGetTimestampTz(d);
	d = SPI_getbinval(tup, td, base + SR_SH_DELETED_BY + 1, &isnull);
	row->deleted_by = isnull ? NULL : TextDatumGetCString(d);

	d = SPI_getbinval(tup, td, base + SR_SH_COL_CHANGED_AT + 1, &isnull);
	n = attnum_array(d, isnull, TIMESTAMPTZOID, &elems, &enulls);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		if (a < n && !enulls[a])
			row->col_changed_at[i] = DatumGetTimestampTz(elems[a]);
	}

	d = SPI_getbinval(tup, td, base + SR_SH_COL_WRITER + 1, &isnull);
	n = attnum_array(d, isnull, TEXTOID, &elems, &enulls);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		if (a < n && !enulls[a])
			row->col_writer[i] = TextDatumGetCString(elems[a]);
	}

	d = SPI_getbinval(tup, td, base + SR_SH_HELD + 1, &isnull);
	n = attnum_array(d, isnull, BOOLOID, &elems, &enulls);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		row->held[i] = (a < n && !enulls[a] && DatumGetBool(elems[a]));
	}

	d = SPI_getbinval(tup, td, base + SR_SH_SENT + 1, &isnull);
	n = attnum_array(d, isnull, BOOLOID, &elems, &enulls);
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		row->sent[i] = (a < n && !enulls[a] && DatumGetBool(elems[a]));
	}

	d = SPI_getbinval(tup, td, base + SR_SH_OWN_XIDS + 1, &isnull);
	row->nown = int64_list(d, isnull, XID8OID, &row->own_xids);
	d = SPI_getbinval(tup, td, base + SR_SH_SEEN_AT + 1, &isnull);
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

/*
 * Read what the shadow holds for one row: the local metadata and the base
 * of every system of the table.  Rows not found stay as sr_shadow_init_row
 * left them (found = false); rows of systems no longer syncing the table
 * are ignored.
 */
void
sr_shadow_load(SrTable *tab, const Datum *keyvals, SrRowState *st)
{
	uint64		r;
	int			n;
	int			i;

	sr_shadow_init_row(tab, &st->local);
	st->bases = palloc(sizeof(SrShadowRow) * (tab->nsystems + 1));
	for (i = 0; i < tab->nsystems; i++)
		sr_shadow_init_row(tab, &st->bases[i]);

	n = sr_spi_execute(tab->plan_read_shadow, (Datum *) keyvals, NULL, true, false, 0,
					   SPI_OK_SELECT);
	for (r = 0; r < (uint64) n; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *sys;

		sys = TextDatumGetCString(SPI_getbinval(tup, td, tab->ncols + SR_SH_SYSTEM + 1, &isnull));
		if (strcmp(sys, SR_LOCAL) == 0)
			fill_row(tab, tup, td, &st->local);
		else if ((i = sr_table_system_index(tab, sys)) >= 0)
			fill_row(tab, tup, td, &st->bases[i]);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* A per-attnum array of natts elements from a per-column one. */
static Datum
to_attnum_array(const SrTable *tab, Oid elemtype, const Datum *percol, const bool *percol_null)
{
	Datum	   *elems = palloc0(sizeof(Datum) * (tab->natts + 1));
	bool	   *nulls = palloc(sizeof(bool) * (tab->natts + 1));
	int			dims[1];
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			i;

	for (i = 0; i < tab->natts; i++)
		nulls[i] = true;
	for (i = 0; i < tab->ncols; i++)
	{
		int			a = tab->cols[i].attnum - 1;

		elems[a] = percol[i];
		nulls[a] = percol_null[i];
	}
	dims[0] = tab->natts;
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  elemtype, typlen, typbyval, typalign));
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
		values[m + SR_SH_KNOWN] = to_attnum_array(tab, BOOLOID, tmp, tmpnull);
		nulls[m + SR_SH_KNOWN] = ' ';
		for (i = 0; i < tab->ncols; i++)
		{
			tmp[i] = BoolGetDatum(row->sent[i]);
			tmpnull[i] = tab->cols[i].is_key || !row->sent[i];
		}
		values[m + SR_SH_SENT] = to_attnum_array(tab, BOOLOID, tmp, tmpnull);
		nulls[m + SR_SH_SENT] = ' ';
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
		values[m + SR_SH_COL_CHANGED_AT] = to_attnum_array(tab, TIMESTAMPTZOID, tmp, tmpnull);
		nulls[m + SR_SH_COL_CHANGED_AT] = ' ';
		for (i = 0; i < tab->ncols; i++)
		{
			tmpnull[i] = tab->cols[i].is_key || row->col_writer[i] == NULL;
			tmp[i] = tmpnull[i] ? (Datum) 0 : CStringGetTextDatum(row->col_writer[i]);
		}
		values[m + SR_SH_COL_WRITER] = to_attnum_array(tab, TEXTOID, tmp, tmpnull);
		nulls[m + SR_SH_COL_WRITER] = ' ';
		for (i = 0; i < tab->ncols; i++)
		{
			tmp[i] = BoolGetDatum(row->held[i]);
			tmpnull[i] = tab->cols[i].is_key || !row->held[i];
		}
		values[m + SR_SH_HELD] = to_attnum_array(tab, BOOLOID, tmp, tmpnull);
		nulls[m + SR_SH_HELD] = ' ';

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
 * Upsert a system's base (when system is not NULL) and the local metadata
 * (when lrow is not NULL): both in one statement.
 */
void
sr_shadow_write_rows(SrTable *tab, const Datum *keyvals, const char *system,
					 SrShadowRow *row, SrShadowRow *lrow)
{
	int			nparams = tab->ncols + SR_SH_NMETA;
	Datum	   *values = palloc(sizeof(Datum) * nparams * 2);
	char	   *nulls = palloc(sizeof(char) * (nparams * 2 + 1));
	int			n = 0;

	if (system != NULL)
	{
		row_params(tab, keyvals, system, row, false, values, nulls);
		n++;
	}
	if (lrow != NULL)
	{
		row_params(tab, keyvals, SR_LOCAL, lrow, true, values + n * nparams, nulls + n * nparams);
		n++;
	}
	if (n == 0)
		return;
	nulls[n * nparams] = '\0';
	sr_spi_execute(n == 2 ? tab->plan_write_shadow2 : tab->plan_write_shadow,
				   values, nulls, true, false, 0, SPI_OK_INSERT);
	if (system != NULL)
	{
		row->found = true;
		row->dirty = false;
	}
	if (lrow != NULL)
	{
		lrow->found = true;
		lrow->dirty = false;
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
