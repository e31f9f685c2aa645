/*-------------------------------------------------------------------------
 *
 * strategies.c
 *		The strategies that compute a column's value from the local, the
 *		incoming and the base values: max, min, sum_delta, union,
 *		merge_json, and a custom function.
 *
 * Each returns the value, or false with a reason when it cannot decide and
 * the column must go to review.  Values are compared and ordered with the
 * column type's own operators (typcache), never by text.  No SPI here,
 * except what a custom function does itself.
 *
 * NULL:
 *	max/min		NULL loses to any value, as in the aggregates;
 *	sum_delta	needs a number on all three sides, else review;
 *	union		a NULL array is an empty set;
 *	merge_json	a NULL or missing base is an empty object; a NULL side is an
 *				empty object; anything not an object goes to review.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "sync_resolve.h"

/* ------------------------------------------------------------------------
 * max / min
 * ------------------------------------------------------------------------
 */
static bool
merge_extreme(const SrMergeInput *in, bool want_max, Datum *result,
			  bool *result_null, char **why)
{
	const SrColumn *col = in->col;
	const char *word = want_max ? "larger" : "smaller";
	int32		cmp;

	if (!col->has_cmp)
	{
		*why = psprintf("%s needs an ordering, and type %s has none (the column's type changed since its policy was set)",
						want_max ? "max" : "min", format_type_be(col->typid));
		return false;
	}
	if (in->local_null && in->incoming_null)
	{
		*result_null = true;
		*why = psprintf("%s value wins: both are NULL", word);
		return true;
	}
	if (in->local_null || in->incoming_null)
	{
		*result_null = false;
		*result = in->local_null ? in->incoming : in->local;
		*why = psprintf("%s value wins; NULL loses to any value", word);
		return true;
	}
	cmp = DatumGetInt32(FunctionCall2Coll((FmgrInfo *) &col->cmp_finfo, col->collation,
										  in->incoming, in->local));
	*result_null = false;
	if ((want_max && cmp > 0) || (!want_max && cmp < 0))
		*result = in->incoming;
	else
		*result = in->local;
	*why = psprintf("%s value wins", word);
	return true;
}

/* ------------------------------------------------------------------------
 * sum_delta: L + (I - B)
 * ------------------------------------------------------------------------
 */
static bool
merge_sum_delta(const SrMergeInput *in, Datum *result, bool *result_null, char **why)
{
	const SrColumn *col = in->col;
	Oid			t = col->basetypid;

	if (!in->base_known || in->base_null || in->local_null || in->incoming_null)
	{
		*why = psprintf("sum_delta needs a number on all three sides (local, %s and the base); %s",
						in->source,
						!in->base_known ? "there is no base" :
						in->base_null ? "the base is NULL" :
						in->local_null ? "local is NULL" : "the incoming value is NULL");
		return false;
	}
	*result_null = false;

	if (t == INT2OID || t == INT4OID || t == INT8OID)
	{
		int64		l,
					i,
					b,
					d,
					r;
		int64		lo = (t == INT2OID) ? PG_INT16_MIN : (t == INT4OID) ? PG_INT32_MIN : PG_INT64_MIN;
		int64		hi = (t == INT2OID) ? PG_INT16_MAX : (t == INT4OID) ? PG_INT32_MAX : PG_INT64_MAX;

		l = (t == INT2OID) ? DatumGetInt16(in->local) : (t == INT4OID) ? DatumGetInt32(in->local) : DatumGetInt64(in->local);
		i = (t == INT2OID) ? DatumGetInt16(in->incoming) : (t == INT4OID) ? DatumGetInt32(in->incoming) : DatumGetInt64(in->incoming);
		b = (t == INT2OID) ? DatumGetInt16(in->base) : (t == INT4OID) ? DatumGetInt32(in->base) : DatumGetInt64(in->base);
		if (pg_sub_s64_overflow(i, b, &d) || pg_add_s64_overflow(l, d, &r) || r < lo || r > hi)
		{
			*why = psprintf("sum_delta: %lld + (%lld - %lld) is out of range for %s",
							(long long) l, (long long) i, (long long) b, format_type_be(col->typid));
			return false;
		}
		*result = (t == INT2OID) ? Int16GetDatum((int16) r) :
			(t == INT4OID) ? Int32GetDatum((int32) r) : Int64GetDatum(r);
		*why = psprintf("both sides' changes kept: local %lld + %s's change %+lld (from %lld to %lld) = %lld",
						(long long) l, in->source, (long long) d, (long long) b,
						(long long) i, (long long) r);
		return true;
	}
	if (t == FLOAT4OID || t == FLOAT8OID)
	{
		double		l = (t == FLOAT4OID) ? DatumGetFloat4(in->local) : DatumGetFloat8(in->local);
		double		i = (t == FLOAT4OID) ? DatumGetFloat4(in->incoming) : DatumGetFloat8(in->incoming);
		double		b = (t == FLOAT4OID) ? DatumGetFloat4(in->base) : DatumGetFloat8(in->base);
		double		r = l + (i - b);

		if (isinf(r) || isnan(r) || (t == FLOAT4OID && isinf((float) r)))
		{
			*why = psprintf("sum_delta: %g + (%g - %g) is not a finite %s",
							l, i, b, format_type_be(col->typid));
			return false;
		}
		*result = (t == FLOAT4OID) ? Float4GetDatum((float4) r) : Float8GetDatum(r);
		*why = psprintf("both sides' changes kept: local %g + %s's change %+g (from %g to %g) = %g",
						l, in->source, i - b, b, i, r);
		return true;
	}
	if (t == NUMERICOID)
	{
		Datum		d = DirectFunctionCall2(numeric_sub, in->incoming, in->base);
		Datum		r = DirectFunctionCall2(numeric_add, in->local, d);

		/* more digits before the point than the column's numeric(p, s) holds: review */
		if (col->typmod >= 0 &&
			!sr_try_call2(numeric, r, Int32GetDatum(col->typmod), ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, &r))
		{
			*why = psprintf("sum_delta: %s + (%s - %s) = %s does not fit %s",
							DatumGetCString(DirectFunctionCall1(numeric_out, in->local)),
							DatumGetCString(DirectFunctionCall1(numeric_out, in->incoming)),
							DatumGetCString(DirectFunctionCall1(numeric_out, in->base)),
							DatumGetCString(DirectFunctionCall1(numeric_out, r)),
							format_type_with_typemod(col->typid, col->typmod));
			return false;
		}
		*result = r;
		*why = psprintf("both sides' changes kept: local %s + %s's change %s (from %s to %s) = %s",
						DatumGetCString(DirectFunctionCall1(numeric_out, in->local)),
						in->source,
						DatumGetCString(DirectFunctionCall1(numeric_out, d)),
						DatumGetCString(DirectFunctionCall1(numeric_out, in->base)),
						DatumGetCString(DirectFunctionCall1(numeric_out, in->incoming)),
						DatumGetCString(DirectFunctionCall1(numeric_out, r)));
		return true;
	}
	*why = psprintf("sum_delta cannot add values of type %s", format_type_be(col->typid));
	return false;
}

/* ------------------------------------------------------------------------
 * union: 3-way set merge of arrays
 * ------------------------------------------------------------------------
 */
typedef struct SrSet
{
	int			n;
	Datum	   *elems;
	bool	   *nulls;
} SrSet;

static void
set_from_array(const SrColumn *col, Datum arr, bool isnull, SrSet *set)
{
	set->n = 0;
	set->elems = NULL;
	set->nulls = NULL;
	if (isnull)
		return;
	deconstruct_array(DatumGetArrayTypeP(arr), col->elemtypid, col->elemlen,
					  col->elembyval, col->elemalign, &set->elems, &set->nulls, &set->n);
}

static bool
set_contains(const SrColumn *col, const SrSet *set, Datum e, bool enull)
{
	int			i;

	for (i = 0; i < set->n; i++)
	{
		if (set->nulls[i] || enull)
		{
			if (set->nulls[i] && enull)
				return true;
			continue;
		}
		if (DatumGetBool(FunctionCall2Coll((FmgrInfo *) &col->elem_eq_finfo,
										   col->collation, set->elems[i], e)))
			return true;
	}
	return false;
}

static void
set_add(const SrColumn *col, SrSet *set, Datum e, bool enull, int cap)
{
	if (set_contains(col, set, e, enull))
		return;
	Assert(set->n < cap);
	set->elems[set->n] = e;
	set->nulls[set->n] = enull;
	set->n++;
}

static bool
merge_union(const SrMergeInput *in, Datum *result, bool *result_null, char **why)
{
	const SrColumn *col = in->col;
	SrSet		L,
				I,
				B,
				R;
	int			cap;
	int			i;
	int			added = 0,
				removed = 0;
	int			dims[1];
	int			lbs[1] = {1};

	if (!OidIsValid(col->elemtypid) || !col->elem_has_eq)
	{
		*why = psprintf("union merges arrays of comparable elements, and the column is of type %s",
						format_type_be(col->typid));
		return false;
	}
	set_from_array(col, in->local, in->local_null, &L);
	set_from_array(col, in->incoming, in->incoming_null, &I);
	set_from_array(col, in->base, !in->base_known || in->base_null, &B);
	cap = L.n + I.n + 1;
	R.n = 0;
	R.elems = palloc(sizeof(Datum) * cap);
	R.nulls = palloc(sizeof(bool) * cap);

	/* local's elements in local's order, unless the source removed them */
	for (i = 0; i < L.n; i++)
	{
		bool		in_base = set_contains(col, &B, L.elems[i], L.nulls[i]);

		if (in_base && !set_contains(col, &I, L.elems[i], L.nulls[i]))
		{
			removed++;
			continue;
		}
		set_add(col, &R, L.elems[i], L.nulls[i], cap);
	}
	/* then the source's additions, unless local removed them */
	for (i = 0; i < I.n; i++)
	{
		if (set_contains(col, &B, I.elems[i], I.nulls[i]))
			continue;			/* kept by both, or removed here */
		if (!set_contains(col, &R, I.elems[i], I.nulls[i]))
			added++;
		set_add(col, &R, I.elems[i], I.nulls[i], cap);
	}

	dims[0] = R.n;
	*result = PointerGetDatum(construct_md_array(R.elems, R.nulls, 1, dims, lbs,
												 col->elemtypid, col->elemlen,
												 col->elembyval, col->elemalign));
	*result_null = false;
	*why = psprintf("set merge keeps both sides' additions and removals: %d added by %s, %d removed by %s",
					added, in->source, removed, in->source);
	return true;
}

/* ------------------------------------------------------------------------
 * merge_json: 3-way key-level merge of jsonb objects
 * ------------------------------------------------------------------------
 */
static bool
json_field(Jsonb *obj, const char *key, int keylen, JsonbValue *out)
{
	if (obj == NULL)
		return false;
	return getKeyJsonValueFromContainer(&obj->root, key, keylen, out) != NULL;
}

static bool
json_values_equal(bool a_has, JsonbValue *a, bool b_has, JsonbValue *b)
{
	Jsonb	   *ja;
	Jsonb	   *jb;

	if (!a_has || !b_has)
		return a_has == b_has;
	ja = JsonbValueToJsonb(a);
	jb = JsonbValueToJsonb(b);
	return DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(ja), JsonbPGetDatum(jb)));
}

static void
collect_keys(Jsonb *obj, List **keys)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (obj == NULL)
		return;
	it = JsonbIteratorInit(&obj->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *k = pnstrdup(v.val.string.val, v.val.string.len);
			ListCell   *lc;
			bool		seen = false;

			foreach(lc, *keys)
				if (strcmp((char *) lfirst(lc), k) == 0)
					seen = true;
			if (!seen)
				*keys = lappend(*keys, k);
		}
	}
}

static bool
merge_json(const SrMergeInput *in, Datum *result, bool *result_null, char **why)
{
	Jsonb	   *L;
	Jsonb	   *I;
	Jsonb	   *B;
	List	   *keys = NIL;
	ListCell   *lc;
	JsonbParseState *state = NULL;
	JsonbValue *res;
	int			from_source = 0;

	if (in->col->basetypid != JSONBOID)
	{
		*why = psprintf("merge_json merges jsonb objects, and the column is of type %s",
						format_type_be(in->col->typid));
		return false;
	}
	L = in->local_null ? NULL : DatumGetJsonbP(in->local);
	I = in->incoming_null ? NULL : DatumGetJsonbP(in->incoming);
	B = (!in->base_known || in->base_null) ? NULL : DatumGetJsonbP(in->base);

	if ((L && !JB_ROOT_IS_OBJECT(L)) || (I && !JB_ROOT_IS_OBJECT(I)) ||
		(B && !JB_ROOT_IS_OBJECT(B)))
	{
		*why = psprintf("merge_json merges objects; %s holds %s",
						(L && !JB_ROOT_IS_OBJECT(L)) ? "local" :
						(I && !JB_ROOT_IS_OBJECT(I)) ? in->source : "the base",
						sr_jsonb_value_text((L && !JB_ROOT_IS_OBJECT(L)) ? L :
											(I && !JB_ROOT_IS_OBJECT(I)) ? I : B));
		return false;
	}

	collect_keys(L, &keys);
	collect_keys(I, &keys);
	collect_keys(B, &keys);

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	foreach(lc, keys)
	{
		char	   *k = (char *) lfirst(lc);
		int			klen = strlen(k);
		JsonbValue	lv,
					iv,
					bv,
					kv;
		bool		lh = json_field(L, k, klen, &lv);
		bool		ih = json_field(I, k, klen, &iv);
		bool		bh = json_field(B, k, klen, &bv);
		JsonbValue *take;
		bool		take_has;

		if (json_values_equal(ih, &iv, bh, &bv))
		{
			take = &lv;
			take_has = lh;
		}
		else if (json_values_equal(lh, &lv, bh, &bv))
		{
			take = &iv;
			take_has = ih;
			from_source++;
		}
		else if (json_values_equal(lh, &lv, ih, &iv))
		{
			take = &lv;
			take_has = lh;
		}
		else
		{
			*why = psprintf("key \"%s\" changed on both sides: local %s, %s %s",
							k, lh ? sr_jsonb_value_text(JsonbValueToJsonb(&lv)) : "removed it",
							in->source, ih ? sr_jsonb_value_text(JsonbValueToJsonb(&iv)) : "removed it");
			return false;
		}
		if (!take_has)
			continue;
		kv.type = jbvString;
		kv.val.string.val = k;
		kv.val.string.len = klen;
		pushJsonbValue(&state, WJB_KEY, &kv);
		pushJsonbValue(&state, WJB_VALUE, take);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	*result = JsonbPGetDatum(JsonbValueToJsonb(res));
	*result_null = false;
	*why = psprintf("key-level merge: %d key%s from %s, the rest from local",
					from_source, from_source == 1 ? "" : "s", in->source);
	return true;
}

/* ------------------------------------------------------------------------
 * custom
 * ------------------------------------------------------------------------
 */
static Oid
conflict_type(void)
{
	Oid			nsp = get_namespace_oid(SR_SCHEMA, false);
	Oid			t = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
									CStringGetDatum("conflict"), ObjectIdGetDatum(nsp));

	if (!OidIsValid(t))
		elog(ERROR, "sync_resolve: type sync_resolve.conflict is missing");
	return t;
}

/*
 * Call custom_fn(sync_resolve.conflict); NULL when it returned SQL NULL.
 * label names the column or the group the conflict is about.
 */
Jsonb *
sr_call_custom(const SrColumn *col, const char *label, const SrMergeInput *in,
			   Jsonb *local, Jsonb *incoming, Jsonb *base)
{
	TupleDesc	td = lookup_rowtype_tupdesc_copy(conflict_type(), -1);
	Datum		values[10];
	bool		nulls[10] = {false, false, false, false, false, false, false, false, false, false};
	HeapTuple	tup;
	LOCAL_FCINFO(fcinfo, 1);
	Datum		r;

	if (td->natts != 10)
		elog(ERROR, "sync_resolve: type sync_resolve.conflict has %d attributes, expected 10", td->natts);
	values[0] = ObjectIdGetDatum(in->tab->relid);
	values[1] = JsonbPGetDatum(in->key);
	values[2] = CStringGetTextDatum(label);
	values[3] = CStringGetTextDatum(in->source);
	values[4] = JsonbPGetDatum(local);
	values[5] = JsonbPGetDatum(incoming);
	if (base != NULL)
		values[6] = JsonbPGetDatum(base);
	else
		nulls[6] = true;
	values[7] = TimestampTzGetDatum(in->local_side.changed_at);
	nulls[7] = TIMESTAMP_NOT_FINITE(in->local_side.changed_at);
	values[8] = TimestampTzGetDatum(in->incoming_side.changed_at);
	values[9] = CStringGetTextDatum(in->local_side.system);
	tup = heap_form_tuple(td, values, nulls);

	InitFunctionCallInfoData(*fcinfo, (FmgrInfo *) &col->custom_finfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = HeapTupleGetDatum(tup);
	fcinfo->args[0].isnull = false;
	r = FunctionCallInvoke(fcinfo);
	if (fcinfo->isnull)
		return NULL;
	return DatumGetJsonbPCopy(r);
}

static bool
merge_custom(const SrMergeInput *in, Datum *result, bool *result_null, char **why)
{
	const SrColumn *col = in->col;
	Jsonb	   *r;
	JsonbValue	v;
	char	   *fn = format_procedure(col->custom_fn);
	SrErrorTarget where = {in->tab, in->source, psprintf("returned by %s", fn)};

	r = sr_call_custom(col, col->name, in,
					   sr_datum_to_jsonb(col, in->local, in->local_null),
					   sr_datum_to_jsonb(col, in->incoming, in->incoming_null),
					   in->base_known ? sr_datum_to_jsonb(col, in->base, in->base_null) : NULL);
	if (r == NULL)
	{
		*why = psprintf("%s returned NULL: a person decides", fn);
		return false;
	}
	if (JB_ROOT_IS_SCALAR(r))
	{
		if (!JsonbExtractScalar(&r->root, &v))
			elog(ERROR, "sync_resolve: malformed scalar jsonb from %s", fn);
	}
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &r->root;
		v.val.binary.len = VARSIZE(r) - VARHDRSZ;
	}
	*result = sr_jsonb_value_to_datum(col, &v, result_null, &where);
	*why = psprintf("%s decided", fn);
	return true;
}

bool
sr_merge_value(SrStrategy strategy, const SrMergeInput *in, Datum *result,
			   bool *result_null, char **why)
{
	switch (strategy)
	{
		case SR_STRAT_MAX:
			return merge_extreme(in, true, result, result_null, why);
		case SR_STRAT_MIN:
			return merge_extreme(in, false, result, result_null, why);
		case SR_STRAT_SUM_DELTA:
			return merge_sum_delta(in, result, result_null, why);
		case SR_STRAT_UNION:
			return merge_union(in, result, result_null, why);
		case SR_STRAT_MERGE_JSON:
			return merge_json(in, result, result_null, why);
		case SR_STRAT_CUSTOM:
			return merge_custom(in, result, result_null, why);
		default:
			break;
	}
	elog(ERROR, "sync_resolve: strategy %s computes no value", sr_strategy_name(strategy));
	return false;
}
