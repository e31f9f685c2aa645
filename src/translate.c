/*-------------------------------------------------------------------------
 *
 * translate.c
 *		An external system's own words: its field names (field_map) and
 *		values (value_map), both ways; its record ids (identity) and the
 *		natural key (match_on) that finds a row created on both sides; and
 *		what an incoming value must be to be taken (transition, check_expr).
 *
 * Field and value maps, transitions and checks are read into the table's
 * cache (policy_cache.c, load_maps); the plans made here at first use (a
 * column's check and default, the match_on lookup) are kept with the table
 * and freed with it.  Identity lookups use plans kept for the session.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "sync_resolve.h"

static SPIPlanPtr identity_get_plan = NULL;
static SPIPlanPtr identity_add_plan = NULL;
static SPIPlanPtr identity_of_row_plan = NULL;

/* A plan kept with the table, freed when the table's cache entry goes. */
static SPIPlanPtr
table_plan(SrTable *tab, const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = sr_prepare_kept(sql, nargs, argtypes, false);
	MemoryContext old = MemoryContextSwitchTo(tab->mcxt);

	tab->lazy_plans = lappend(tab->lazy_plans, plan);
	MemoryContextSwitchTo(old);
	return plan;
}

/* ------------------------------------------------------------------------
 * Fields
 * ------------------------------------------------------------------------
 */

/*
 * The column a payload field of system sidx names: its field_map row, else
 * a column of that name.  SR_FIELD_ID for the field of its record id,
 * SR_FIELD_UNKNOWN for none.
 */
int
sr_field_column(const SrTable *tab, int sidx, const char *field, SrFieldMap **map)
{
	const SrSystemMaps *m = &tab->maps[sidx];
	int			i;

	*map = NULL;
	for (i = 0; i < m->nfields; i++)
	{
		if (strcmp(m->fields[i].field, field) == 0)
		{
			*map = &m->fields[i];
			return m->fields[i].col;
		}
	}
	if (m->id_field != NULL && strcmp(m->id_field, field) == 0)
		return SR_FIELD_ID;
	i = sr_column_by_name(tab, field);
	return i >= 0 ? i : SR_FIELD_UNKNOWN;
}

typedef struct SrFieldContext
{
	const SrTable *tab;
	const char *system;
	const SrFieldMap *map;
	bool		inbound;
} SrFieldContext;

static void
field_error_context(void *arg)
{
	SrFieldContext *fc = arg;

	errcontext("converting field \"%s\" of system \"%s\" %s column \"%s\" of table %s (sync_resolve.field_map)",
			   fc->map->field, fc->system, fc->inbound ? "to" : "from",
			   fc->tab->cols[fc->map->col].name, fc->tab->display_name);
}

/*
 * A conversion function of field_map on one JSON value (SQL NULL: JSON
 * null); its errors name the field, the system, the column and the table.
 */
static Jsonb *
convert_field(const SrTable *tab, const char *system, const SrFieldMap *map, bool inbound,
			  Jsonb *value)
{
	LOCAL_FCINFO(fcinfo, 1);
	SrFieldContext fc = {tab, system, map, inbound};
	ErrorContextCallback errcb;
	Datum		result;

	errcb.callback = field_error_context;
	errcb.arg = &fc;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	InitFunctionCallInfoData(*fcinfo, (FmgrInfo *) (inbound ? &map->in_finfo : &map->out_finfo),
							 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = JsonbPGetDatum(value);
	fcinfo->args[0].isnull = false;
	result = FunctionCallInvoke(fcinfo);
	error_context_stack = errcb.previous;
	if (fcinfo->isnull)
	{
		JsonbValue	jnull;

		jnull.type = jbvNull;
		return JsonbValueToJsonb(&jnull);
	}
	return DatumGetJsonbP(result);
}

/* An incoming value through its field's inbound function. */
void
sr_field_in(const SrTable *tab, const char *system, const SrFieldMap *map, JsonbValue *v)
{
	Jsonb	   *out;

	if (map == NULL || !map->has_in)
		return;
	out = convert_field(tab, system, map, true, JsonbValueToJsonb(v));
	if (JB_ROOT_IS_SCALAR(out))
	{
		JsonbValue	scalar;

		if (!JsonbExtractScalar(&out->root, &scalar))
			elog(ERROR, "sync_resolve: could not read a JSON scalar");
		*v = scalar;
	}
	else
	{
		v->type = jbvBinary;
		v->val.binary.data = &out->root;
		v->val.binary.len = VARSIZE(out) - VARHDRSZ;
	}
}

/* ------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------
 */

/*
 * A JSON scalar as a system's text: a string's own text, a number's or a
 * boolean's; NULL for anything else.  value_map and record ids hold this.
 */
char *
sr_external_text(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/* Does system sidx have value maps for the column? */
static bool
has_value_maps(const SrColumn *col, int sidx)
{
	int			i;

	for (i = 0; i < col->nvalue_maps; i++)
		if (col->value_maps[i].sidx == sidx)
			return true;
	return false;
}

/*
 * An incoming value through value_map: SR_VALUE_AS_IS when the system has
 * no map for the column (or sent null), SR_VALUE_MAPPED with *out set,
 * SR_VALUE_UNMAPPED when it has maps and none of them is this value.
 */
int
sr_value_in(const SrColumn *col, int sidx, JsonbValue *v, Datum *out)
{
	char	   *text;
	int			i;

	if (col->nvalue_maps == 0 || v->type == jbvNull || !has_value_maps(col, sidx))
		return SR_VALUE_AS_IS;
	text = sr_external_text(v);
	if (text == NULL)
		return SR_VALUE_UNMAPPED;
	for (i = 0; i < col->nvalue_maps; i++)
	{
		const SrValueMap *vm = &col->value_maps[i];

		if (vm->sidx == sidx && strcmp(vm->external, text) == 0)
		{
			*out = datumCopy(vm->local, col->typbyval, col->typlen);
			return SR_VALUE_MAPPED;
		}
	}
	return SR_VALUE_UNMAPPED;
}

/* The column's default, as an INSERT would compute it (NULL without one). */
Datum
sr_column_default(SrTable *tab, int c, bool *isnull)
{
	SrColumn   *col = &tab->cols[c];
	int			n;
	Datum		d;

	if (!col->default_plan_ready)
	{
		Oid			argtypes[2] = {OIDOID, INT2OID};
		Datum		args[2];
		SPIPlanPtr	lookup;
		char	   *expr = NULL;
		MemoryContext cxt = CurrentMemoryContext;

		args[0] = ObjectIdGetDatum(tab->relid);
		args[1] = Int16GetDatum(col->attnum);
		lookup = SPI_prepare("SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d"
							 " WHERE d.adrelid OPERATOR(pg_catalog.=) $1 AND d.adnum OPERATOR(pg_catalog.=) $2",
							 2, argtypes);
		if (lookup == NULL)
			elog(ERROR, "sync_resolve: could not prepare the lookup of a column default");
		if (SPI_execute_plan(lookup, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "sync_resolve: the lookup of a column default failed");
		/* SPI leaves its own procedure context current: take ours back */
		MemoryContextSwitchTo(cxt);
		if (SPI_processed == 1)
			expr = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		SPI_freetuptable(SPI_tuptable);
		SPI_freeplan(lookup);
		if (expr != NULL)
			col->default_plan = table_plan(tab, psprintf("SELECT (%s)::%s", expr,
														 format_type_with_typemod(col->typid, col->typmod)),
										   0, NULL);
		col->default_plan_ready = true;
	}
	if (col->default_plan == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	n = sr_spi_execute(col->default_plan, NULL, NULL, false, false, 1, SPI_OK_SELECT);
	if (n != 1)
		elog(ERROR, "sync_resolve: the default of column \"%s\" gave no value", col->name);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
	d = *isnull ? (Datum) 0 : datumCopy(d, col->typbyval, col->typlen);
	SPI_freetuptable(SPI_tuptable);
	return d;
}

/* ------------------------------------------------------------------------
 * Outgoing payloads, in the target's words
 * ------------------------------------------------------------------------
 */

/* A local value as the target calls it; false: leave the field out. */
static bool
value_out(const SrTable *tab, int c, int sidx, JsonbValue *v, Jsonb **out)
{
	const SrColumn *col = &tab->cols[c];
	SrErrorTarget where = {tab, tab->systems[sidx], "in an outbox entry"};
	Datum		d;
	bool		isnull;
	int			i;

	*out = JsonbValueToJsonb(v);
	if (col->nvalue_maps == 0 || v->type == jbvNull || !has_value_maps(col, sidx))
		return true;
	d = sr_jsonb_value_to_datum(col, v, &isnull, &where);
	for (i = 0; i < col->nvalue_maps; i++)
	{
		const SrValueMap *vm = &col->value_maps[i];

		if (vm->sidx == sidx && sr_datum_equal(col, vm->local, false, d, isnull))
		{
			*out = sr_jsonb_string(vm->external);
			return true;
		}
	}
	switch (col->unmapped)
	{
		case SR_UNMAPPED_PASS:
			return true;
		case SR_UNMAPPED_NULL:
			{
				JsonbValue	jnull;

				jnull.type = jbvNull;
				*out = JsonbValueToJsonb(&jnull);
				return true;
			}
		default:
			return false;
	}
}

/*
 * An outbox payload (local column names and values) as target sidx calls
 * them: field_map names, value_map values, outbound functions, and its
 * record id in its id field when it is known.
 */
Jsonb *
sr_payload_out(const SrTable *tab, int sidx, Jsonb *payload, const char *external_id)
{
	const SrSystemMaps *m = &tab->maps[sidx];
	const char **keys = palloc(sizeof(char *) * (tab->ncols + 2));
	Jsonb	  **values = palloc(sizeof(Jsonb *) * (tab->ncols + 2));
	int			n = 0;
	int			c;

	if (payload == NULL || !JB_ROOT_IS_OBJECT(payload))
		return payload;
	for (c = 0; c < tab->ncols; c++)
	{
		JsonbValue	v;
		Jsonb	   *out;
		const SrFieldMap *f = m->map_of_col[c];

		if (!sr_jsonb_get_field(payload, tab->cols[c].name, &v))
			continue;
		if (!value_out(tab, c, sidx, &v, &out))
			continue;
		if (f != NULL && f->has_out)
			out = convert_field(tab, tab->systems[sidx], f, false, out);
		keys[n] = m->field_of_col[c];
		values[n++] = out;
	}
	if (m->id_field != NULL && external_id != NULL)
	{
		keys[n] = m->id_field;
		values[n++] = sr_jsonb_string(external_id);
	}
	return sr_jsonb_object(n, keys, values);
}

/* ------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------
 */

/*
 * Why an incoming value of column c may not replace the local one (L,
 * Lnull; found false: a new row), or NULL when it may: an allowed
 * transition is needed when the column has any, and check_expr must not
 * be false.
 */
char *
sr_invalid_reason(SrTable *tab, int c, bool found, Datum L, bool Lnull, Datum v, bool vnull)
{
	SrColumn   *col = &tab->cols[c];

	if (col->ntransitions > 0)
	{
		bool		ok = false;
		int			i;

		for (i = 0; i < col->ntransitions && !ok; i++)
		{
			const SrTransition *t = &col->transitions[i];

			if (vnull || !sr_datum_equal(col, t->to, false, v, false))
				continue;
			if (t->from_null ? (!found || Lnull)
				: (found && !Lnull && sr_datum_equal(col, t->from, false, L, false)))
				ok = true;
		}
		if (!ok)
		{
			Jsonb	   *from = found ? sr_datum_to_jsonb(col, L, Lnull) : NULL;

			return psprintf("%s may not change from %s to %s (sync_resolve.transition)",
							col->name, from ? sr_jsonb_value_text(from) : "no value",
							sr_jsonb_value_text(sr_datum_to_jsonb(col, v, vnull)));
		}
	}
	if (col->check_expr != NULL)
	{
		bool		isnull;
		Datum		ok;
		char		nulls[1] = {vnull ? 'n' : ' '};
		Datum		args[1] = {v};

		if (col->check_plan == NULL)
		{
			Oid			argtypes[1] = {col->typid};

			col->check_plan = table_plan(tab, psprintf("SELECT (%s)::pg_catalog.bool FROM (SELECT $1 AS %s) AS v",
													   col->check_expr, quote_identifier(col->name)),
										 1, argtypes);
		}
		if (sr_spi_execute(col->check_plan, args, nulls, false, true, 1, SPI_OK_SELECT) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("check_expr of column \"%s\" of table %s gave no value for %s",
							col->name, tab->display_name,
							sr_jsonb_value_text(sr_datum_to_jsonb(col, v, vnull))),
					 errdetail("The expression was: %s", col->check_expr),
					 errhint("Write one boolean expression of the column, without set-returning functions, with sync_resolve.set_policy().")));
		ok = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		SPI_freetuptable(SPI_tuptable);
		if (!isnull && !DatumGetBool(ok))
			return psprintf("%s fails its check: %s", sr_jsonb_value_text(sr_datum_to_jsonb(col, v, vnull)),
							col->check_expr);
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Identity and match_on
 * ------------------------------------------------------------------------
 */

/*
 * One value of sync_resolve.identity for (table, system, what): the row's
 * key by record id, or the record id by key; NULL when there is none.
 */
static Datum
identity_lookup(SPIPlanPtr *plan, const char *sql, Oid whattype, const SrTable *tab,
				const char *system, Datum what, bool *found)
{
	Datum		args[3];
	bool		isnull;
	Datum		d;

	if (*plan == NULL)
	{
		Oid			argtypes[3] = {OIDOID, TEXTOID, whattype};

		*plan = sr_prepare_kept(sql, 3, argtypes, true);
	}
	args[0] = ObjectIdGetDatum(tab->relid);
	args[1] = CStringGetTextDatum(system);
	args[2] = what;
	*found = false;
	d = (Datum) 0;
	/* not read-only: a record id linked earlier in the same statement counts */
	if (sr_spi_execute(*plan, args, NULL, true, false, 1, SPI_OK_SELECT) == 1)
	{
		/* a key (jsonb) or a record id (text): either is a varlena */
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		*found = !isnull;
		d = isnull ? (Datum) 0 : datumCopy(d, false, -1);
	}
	SPI_freetuptable(SPI_tuptable);
	return d;
}

/* The key of the row linked to a system's record id, or NULL. */
Jsonb *
sr_identity_key(const SrTable *tab, const char *system, const char *external_id)
{
	bool		found;
	Datum		d = identity_lookup(&identity_get_plan,
									"SELECT key FROM sync_resolve.identity"
									" WHERE relid = $1 AND system = $2 AND external_id = $3",
									TEXTOID, tab, system, CStringGetTextDatum(external_id), &found);

	return found ? DatumGetJsonbPCopy(d) : NULL;
}

/* A system's record id of a row, or NULL. */
char *
sr_identity_of_row(const SrTable *tab, const char *system, Jsonb *key)
{
	bool		found;
	Datum		d = identity_lookup(&identity_of_row_plan,
									"SELECT external_id FROM sync_resolve.identity"
									" WHERE relid = $1 AND system = $2 AND key = $3",
									JSONBOID, tab, system, JsonbPGetDatum(key), &found);

	return found ? TextDatumGetCString(d) : NULL;
}

/* Remember a system's record id for a row, unless it has one already. */
void
sr_identity_add(const SrTable *tab, const char *system, const char *external_id, Jsonb *key)
{
	Datum		args[4];

	if (identity_add_plan == NULL)
	{
		Oid			argtypes[4] = {OIDOID, TEXTOID, TEXTOID, JSONBOID};

		identity_add_plan = sr_prepare_kept("INSERT INTO sync_resolve.identity (relid, system, external_id, key)"
											" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
											4, argtypes, true);
	}
	args[0] = ObjectIdGetDatum(tab->relid);
	args[1] = CStringGetTextDatum(system);
	args[2] = CStringGetTextDatum(external_id);
	args[3] = JsonbPGetDatum(key);
	(void) sr_spi_execute(identity_add_plan, args, NULL, true, false, 0, SPI_OK_INSERT);
}

/*
 * The row whose match_on columns equal the image's: its key values in
 * keyvals.  Returns how many rows match (0, 1, or 2 for more than one);
 * -1 when the image lacks a match_on column or sends it NULL.  The row is
 * locked (FOR NO KEY UPDATE) unless peek.
 */
int
sr_match_row(SrTable *tab, const SrImage *img, Datum *keyvals, bool peek)
{
	SPIPlanPtr *plan = peek ? &tab->plan_match_peek : &tab->plan_match;
	Datum	   *args = palloc(sizeof(Datum) * (tab->nmatch + 1));
	int			i;
	int			n;

	if (tab->nmatch == 0)
		return -1;
	for (i = 0; i < tab->nmatch; i++)
	{
		int			c = tab->match_on[i];

		if (!img->present[c] || img->nulls[c])
			return -1;
		args[i] = img->values[c];
	}
	if (*plan == NULL)
	{
		StringInfoData sql;
		Oid		   *argtypes = palloc(sizeof(Oid) * (tab->nmatch + 1));

		initStringInfo(&sql);
		appendStringInfoString(&sql, "SELECT ");
		for (i = 0; i < tab->nkeys; i++)
			appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(tab->cols[tab->keys[i]].name));
		appendStringInfo(&sql, " FROM %s WHERE ", tab->relname);
		for (i = 0; i < tab->nmatch; i++)
		{
			appendStringInfo(&sql, "%s%s = $%d", i ? " AND " : "",
							 quote_identifier(tab->cols[tab->match_on[i]].name), i + 1);
			argtypes[i] = tab->cols[tab->match_on[i]].typid;
		}
		appendStringInfoString(&sql, peek ? " LIMIT 2" : " LIMIT 2 FOR NO KEY UPDATE");
		*plan = table_plan(tab, sql.data, tab->nmatch, argtypes);
	}
	n = sr_spi_execute(*plan, args, NULL, false, false, 2, SPI_OK_SELECT);
	if (n == 1)
	{
		for (i = 0; i < tab->nkeys; i++)
		{
			const SrColumn *col = &tab->cols[tab->keys[i]];
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull);

			keyvals[i] = datumCopy(d, col->typbyval, col->typlen);
		}
	}
	SPI_freetuptable(SPI_tuptable);
	return n;
}
