/*-------------------------------------------------------------------------
 *
 * mapping.c
 *		Between JSON and typed values: incoming payload fields become Datums
 *		of the column's type, Datums become jsonb for keys, the history and
 *		the review queue, and values are compared with the type's own
 *		equality.
 *
 * A JSON string goes through the column type's input function (domains
 * included, so their checks run); numbers and booleans through their text;
 * a JSON array into an array column becomes an array literal for the array
 * type's input function (so nested arrays give multi-dimensional ones);
 * jsonb columns take the JSON value as it is.  JSON null is SQL NULL.
 *
 * An input function's error is re-raised naming the table, column, system
 * and value: the transaction is aborted by that error anyway, so catching
 * and rethrowing without a subtransaction is safe.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "sync_resolve.h"

/* Shown values are cut after this many bytes in error messages. */
#define SR_SHOWN_VALUE_MAX 200

static char *
shorten(const char *s)
{
	size_t		len = strlen(s);

	if (len <= SR_SHOWN_VALUE_MAX)
		return pstrdup(s);
	len = pg_mbcliplen(s, len, SR_SHOWN_VALUE_MAX);
	return psprintf("%.*s...", (int) len, s);
}

/* JSON text of a JsonbValue, scalars included */
static char *
jsonb_value_json_text(JsonbValue *v)
{
	Jsonb	   *j = JsonbValueToJsonb(v);

	return JsonbToCString(NULL, &j->root, VARSIZE(j));
}

static char *input_text(Oid base, JsonbValue *v);

/* Append a value to an array or record literal, quoted and escaped. */
static void
append_quoted(StringInfo buf, const char *s)
{
	const char *p;

	appendStringInfoChar(buf, '"');
	for (p = s; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '"');
}

/*
 * A JSON array as the literal of an array whose elements are of base type
 * elem_base (looked up once for the whole array): each element quoted,
 * JSON null as NULL, nested arrays as the array's further dimensions (for
 * json and jsonb elements too, as before: to_jsonb() writes both alike).
 */
static void
append_array_literal(StringInfo buf, Oid elem_base, JsonbValue *v, int depth)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	bool		first = true;

	if (depth > MAXDIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("JSON array nested too deeply for an array column"),
				 errhint("PostgreSQL arrays have at most %d dimensions.", MAXDIM)));
	appendStringInfoChar(buf, '{');
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		if (e.type == jbvNull)
			appendStringInfoString(buf, "NULL");
		else if (e.type == jbvBinary && JsonContainerIsArray(e.val.binary.data) &&
				 !JsonContainerIsScalar(e.val.binary.data))
			append_array_literal(buf, elem_base, &e, depth + 1);
		else
			append_quoted(buf, input_text(elem_base, &e));
	}
	appendStringInfoChar(buf, '}');
}

/*
 * A JSON object as the literal of composite type typid, as to_jsonb()
 * writes one: each attribute from the field of its name (absent or null:
 * NULL); fields the type does not have are left out, as
 * jsonb_populate_record() leaves them.
 */
static void
append_record_literal(StringInfo buf, Oid typid, JsonbValue *v)
{
	TupleDesc	td = lookup_rowtype_tupdesc(typid, -1);
	bool		first = true;
	int			i;

	appendStringInfoChar(buf, '(');
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);
		JsonbValue *f;

		if (att->attisdropped)
			continue;
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		f = getKeyJsonValueFromContainer(v->val.binary.data, NameStr(att->attname),
										 strlen(NameStr(att->attname)), NULL);
		if (f != NULL && f->type != jbvNull)
			append_quoted(buf, input_text(getBaseType(att->atttypid), f));
	}
	appendStringInfoChar(buf, ')');
	ReleaseTupleDesc(td);
}

/*
 * The text a JSON value is given to the input function of a type (base:
 * its base type) as: for json and jsonb, its JSON text (a string quoted);
 * a JSON array for an array type and a JSON object for a composite type as
 * their literals (to_jsonb()'s output of them taken back); anything else
 * as its own text.
 */
static char *
input_text(Oid base, JsonbValue *v)
{
	check_stack_depth();
	if (base == JSONBOID || base == JSONOID)
		return jsonb_value_json_text(v);
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvBinary:
			if (!JsonContainerIsScalar(v->val.binary.data))
			{
				Oid			elem = get_element_type(base);
				StringInfoData buf;

				initStringInfo(&buf);
				if (JsonContainerIsArray(v->val.binary.data) && OidIsValid(elem))
				{
					append_array_literal(&buf, getBaseType(elem), v, 1);
					return buf.data;
				}
				if (JsonContainerIsObject(v->val.binary.data) && base != RECORDOID &&
					type_is_rowtype(base))
				{
					append_record_literal(&buf, base, v);
					return buf.data;
				}
			}
			return jsonb_value_json_text(v);
		default:
			return jsonb_value_json_text(v);
	}
}

Datum
sr_jsonb_value_to_datum(const SrColumn *col, JsonbValue *v, bool *isnull,
						const SrErrorTarget *where)
{
	char	   *text;
	MemoryContext oldcxt = CurrentMemoryContext;
	Datum		result = (Datum) 0;

	*isnull = false;
	if (v->type == jbvNull)
	{
		*isnull = true;
		return (Datum) 0;
	}
	/* jsonb columns take the value as it is, unless a domain must check it */
	if (col->typid == JSONBOID)
		return JsonbPGetDatum(JsonbValueToJsonb(v));

	PG_TRY();
	{
		text = input_text(col->basetypid, v);
		result = InputFunctionCall((FmgrInfo *) &col->in_finfo, text,
								   col->typioparam, col->typmod);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* only a bad value is reworded; a cancel, say, goes on as it was */
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION)
			ReThrowError(edata);
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("invalid value for column \"%s\" of table %s %s: %s",
						col->name, where->tab->display_name,
						where->origin ? where->origin :
						where->system ? psprintf("from system \"%s\"", where->system) : "in the key",
						edata->message),
				 errdetail("The value was %s.", shorten(jsonb_value_json_text(v))),
				 errhint("%s a value of type %s.", where->origin ? "Give" : "Send",
						 format_type_be(col->typid))));
	}
	PG_END_TRY();
	return result;
}

/*
 * The jsonb to_jsonb() makes of a column's value (NULL: JSON null).  For
 * the types most columns have, it is built here: to_jsonb() looks up its
 * argument's type on every call, and makes a number from its text.  A
 * numeric that is not a JSON number (NaN, Infinity) is a string, as
 * to_jsonb() makes it.
 */
Jsonb *
sr_datum_to_jsonb(const SrColumn *col, Datum value, bool isnull)
{
	JsonbValue	v;
	bool		built = true;

	v.type = jbvNull;
	if (!isnull)
	{
		switch (col->basetypid)
		{
			case BOOLOID:
				v.type = jbvBool;
				v.val.boolean = DatumGetBool(value);
				break;
			case INT2OID:
			case INT4OID:
			case INT8OID:
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(col->basetypid == INT2OID ? DatumGetInt16(value) :
												 col->basetypid == INT4OID ? DatumGetInt32(value) :
												 DatumGetInt64(value));
				break;
			case NUMERICOID:
				v.type = jbvNumeric;
				v.val.numeric = DatumGetNumeric(value);
				built = !numeric_is_nan(v.val.numeric) && !numeric_is_inf(v.val.numeric);
				break;
			case TEXTOID:
			case VARCHAROID:
				{
					text	   *t = DatumGetTextPP(value);

					v.type = jbvString;
					v.val.string.val = VARDATA_ANY(t);
					v.val.string.len = VARSIZE_ANY_EXHDR(t);
					/* too long for jsonb: to_jsonb() says so */
					built = v.val.string.len <= JENTRY_OFFLENMASK;
				}
				break;
			case JSONBOID:
				return DatumGetJsonbPCopy(value);
			default:
				built = false;
				break;
		}
	}
	if (!built)
		return DatumGetJsonbP(FunctionCall1Coll((FmgrInfo *) &col->to_jsonb_finfo,
												InvalidOid, value));
	return JsonbValueToJsonb(&v);
}

static Jsonb *
json_as_jsonb(Datum json)
{
	char	   *s = TextDatumGetCString(json);

	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

/*
 * A value as a column's normalization policy compares it: its text, without
 * surrounding white space (trim), in lower case by the column's collation
 * (case).
 */
static char *
normalized(const SrColumn *col, Datum d)
{
	Oid			outfn;
	bool		varlena;
	char	   *s;

	getTypeOutputInfo(col->typid, &outfn, &varlena);
	s = OidOutputFunctionCall(outfn, d);
	if (col->norm_trim)
	{
		char	   *end = s + strlen(s);

		while (*s != '\0' && isspace((unsigned char) *s))
			s++;
		while (end > s && isspace((unsigned char) end[-1]))
			end--;
		*end = '\0';
	}
	if (col->norm_case)
		s = TextDatumGetCString(DirectFunctionCall1Coll(lower,
														OidIsValid(col->collation) ? col->collation : DEFAULT_COLLATION_OID,
														CStringGetTextDatum(s)));
	return s;
}

/*
 * fn(a, b) into *result; false, *result untouched, when it raised an error
 * of SQLSTATE sqlerrcode (a value out of range, say), which is then taken.
 * Any other error goes on.  For PostgreSQL's own functions of values only,
 * which hold no resources an error would leave to clean up.
 */
bool
sr_try_call2(PGFunction fn, Datum a, Datum b, int sqlerrcode, Datum *result)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool done = true;
	volatile Datum r = (Datum) 0;

	PG_TRY();
	{
		r = DirectFunctionCall2(fn, a, b);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != sqlerrcode)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
		done = false;
	}
	PG_END_TRY();
	if (done)
		*result = r;
	return done;
}

/*
 * The sign of an interval taken as a whole, as interval_cmp() takes it:
 * '1 day' is longer than nothing, '1 day -25 hours' shorter.
 */
int
sr_interval_sign(Interval *iv)
{
	Interval	zero = {0};

	return DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(iv),
											 IntervalPGetDatum(&zero)));
}

/*
 * a IS NOT DISTINCT FROM b, by the type's own equality: numeric 1.0 = 1.00,
 * timestamptz by instant, jsonb regardless of key order and whitespace
 * (json too, compared as jsonb).  A type without an equality operator is
 * compared by its binary image.
 */
bool
sr_datum_equal(const SrColumn *col, Datum a, bool anull, Datum b, bool bnull)
{
	if (anull || bnull)
		return anull && bnull;
	if (col->norm_trim || col->norm_case)
		return strcmp(normalized(col, a), normalized(col, b)) == 0;
	if (col->is_json)
		return DatumGetBool(DirectFunctionCall2(jsonb_eq,
												JsonbPGetDatum(json_as_jsonb(a)),
												JsonbPGetDatum(json_as_jsonb(b))));
	if (col->has_eq)
		return DatumGetBool(FunctionCall2Coll((FmgrInfo *) &col->eq_finfo,
											  col->collation, a, b));
	return datum_image_eq(a, b, col->typbyval, col->typlen);
}

/*
 * A hash of a value that agrees with sr_datum_equal(): values it calls
 * equal hash alike (the type's own hash where it has one).  For
 * reconcile_summary()'s checksums.
 */
uint64
sr_datum_hash(const SrColumn *col, Datum v, bool isnull)
{
	TypeCacheEntry *tc;
	Oid			typoutput;
	bool		varlena;
	char	   *s;

	if (isnull)
		return UINT64CONST(0x9e3779b97f4a7c15);
	if (col->norm_trim || col->norm_case)
	{
		s = normalized(col, v);
		return hash_bytes_extended((const unsigned char *) s, strlen(s), 0);
	}
	if (col->is_json)
		return DatumGetUInt64(DirectFunctionCall2(jsonb_hash_extended,
												  JsonbPGetDatum(json_as_jsonb(v)),
												  Int64GetDatum(0)));
	if (col->has_eq)
	{
		tc = lookup_type_cache(col->basetypid, TYPECACHE_HASH_EXTENDED_PROC_FINFO);
		if (OidIsValid(tc->hash_extended_proc))
			return DatumGetUInt64(FunctionCall2Coll(&tc->hash_extended_proc_finfo,
													col->collation, v, Int64GetDatum(0)));
		/* an equality without a hash: equal values are taken to print alike */
		getTypeOutputInfo(col->basetypid, &typoutput, &varlena);
		s = OidOutputFunctionCall(typoutput, v);
		return hash_bytes_extended((const unsigned char *) s, strlen(s), 0);
	}
	return (uint64) datum_image_hash(v, col->typbyval, col->typlen);
}

/* A JSON string */
Jsonb *
sr_jsonb_string(const char *str)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) str;
	v.val.string.len = strlen(str);
	return JsonbValueToJsonb(&v);
}

/* Text of a jsonb value, for messages */
char *
sr_jsonb_value_text(Jsonb *j)
{
	if (j == NULL)
		return pstrdup("(none)");
	return shorten(JsonbToCString(NULL, &j->root, VARSIZE(j)));
}

static void
push_jsonb(JsonbParseState **state, JsonbIteratorToken tok, Jsonb *value)
{
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(value))
	{
		if (!JsonbExtractScalar(&value->root, &v))
			elog(ERROR, "sync_resolve: malformed scalar jsonb");
	}
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &value->root;
		v.val.binary.len = VARSIZE(value) - VARHDRSZ;
	}
	pushJsonbValue(state, tok, &v);
}

/* {"k1": v1, ...}; a NULL value pointer leaves its key out */
Jsonb *
sr_jsonb_object(int n, const char **keys, Jsonb **values)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	int			i;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < n; i++)
	{
		JsonbValue	k;

		if (values[i] == NULL)
			continue;
		k.type = jbvString;
		k.val.string.val = (char *) keys[i];
		k.val.string.len = strlen(keys[i]);
		pushJsonbValue(&state, WJB_KEY, &k);
		push_jsonb(&state, WJB_VALUE, values[i]);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

bool
sr_jsonb_get_field(Jsonb *obj, const char *key, JsonbValue *out)
{
	JsonbValue *v;

	if (obj == NULL || !JB_ROOT_IS_OBJECT(obj))
		return false;
	v = getKeyJsonValueFromContainer(&obj->root, key, strlen(key), out);
	return v != NULL;
}

/* The key of a row: {"pk1": v1, ...} in the columns' own JSON forms. */
Jsonb *
sr_build_key(const SrTable *tab, const Datum *keyvals, const bool *keynulls)
{
	const char **names = palloc(sizeof(char *) * tab->nkeys);
	Jsonb	  **values = palloc(sizeof(Jsonb *) * tab->nkeys);
	int			i;

	for (i = 0; i < tab->nkeys; i++)
	{
		const SrColumn *col = &tab->cols[tab->keys[i]];

		names[i] = col->name;
		values[i] = sr_datum_to_jsonb(col, keyvals[i], keynulls ? keynulls[i] : false);
	}
	return sr_jsonb_object(tab->nkeys, names, values);
}

/*
 * The key columns of a row from a JSON object: every primary-key column
 * must be there and not null.  keyvals is in primary-key order.
 */
void
sr_parse_key(const SrTable *tab, Jsonb *obj, const char *system,
			 const char *what, Datum *keyvals)
{
	SrErrorTarget where = {tab, system, NULL};
	const char *from = system ? psprintf(" from system \"%s\"", system) : "";
	int			i;

	if (obj == NULL || !JB_ROOT_IS_OBJECT(obj))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s for table %s%s is not a JSON object",
						what, tab->display_name, from),
				 errdetail("It was %s.", sr_jsonb_value_text(obj)),
				 errhint("Send an object such as {\"%s\": ...}.",
						 tab->cols[tab->keys[0]].name)));
	for (i = 0; i < tab->nkeys; i++)
	{
		const SrColumn *col = &tab->cols[tab->keys[i]];
		JsonbValue	v;
		bool		isnull;

		if (!sr_jsonb_get_field(obj, col->name, &v))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s for table %s%s has no key column \"%s\"",
							what, tab->display_name, from, col->name),
					 errdetail("It was %s.", sr_jsonb_value_text(obj)),
					 errhint("Every primary-key column must be sent: %s.",
							 sr_key_column_list(tab))));
		keyvals[i] = sr_jsonb_value_to_datum(col, &v, &isnull, &where);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("key column \"%s\" of table %s is null in %s%s",
							col->name, tab->display_name, what, from),
					 errhint("A row is identified by its primary key; send a value for it.")));
	}
}

char *
sr_key_column_list(const SrTable *tab)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < tab->nkeys; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", tab->cols[tab->keys[i]].name);
	return buf.data;
}

/* text[] from a List of C strings */
Datum
sr_text_array(List *strings)
{
	Datum	   *elems = palloc(sizeof(Datum) * (list_length(strings) + 1));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, strings)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * canonical_key(tbl, key): a key as sync_resolve records it, so that
 * {"id": "7"} and {"id": 7.0} find the same row's story.
 */
PG_FUNCTION_INFO_V1(canonical_key);
Datum
canonical_key(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Jsonb	   *key = PG_GETARG_JSONB_P(1);
	SrTable    *tab;
	Datum	   *keyvals;

	Jsonb	   *result = key;

	sr_cache_enter();
	tab = sr_table_get(relid, true, AccessShareLock);
	if (tab != NULL)
	{
		keyvals = palloc(sizeof(Datum) * tab->nkeys);
		sr_parse_key(tab, key, NULL, "key", keyvals);
		result = sr_build_key(tab, keyvals, NULL);
	}
	sr_cache_leave();
	PG_RETURN_JSONB_P(result);
}
