/*-------------------------------------------------------------------------
 *
 * vclock.c
 *		The sync_resolve.vclock type: a version vector, that is a set of
 *		(system, counter) pairs partially ordered by happened-before.
 *
 * This file owns the type's stored layout; its text, binary and jsonb
 * forms; the comparison operators and functions; and the C helpers that
 * sync_resolve.h declares (sr_vclock_compare, sr_vclock_merge,
 * sr_vclock_tick, sr_vclock_to_cstring).  The helpers take values that
 * the caller has already detoasted.
 *
 * Stored layout.  A vclock is a varlena with a four-byte header:
 *
 *		int32	vl_len_			varlena header
 *		int32	count			number of entries
 *		then count entries, back to back, each:
 *			uint8	len			bytes in the system name, 1 .. 63
 *			char	name[len]	the name, not NUL-terminated
 *			varint	counter		1 .. PG_INT64_MAX, unsigned LEB128 in its
 *								shortest form (1 byte up to 127)
 *
 * Entries are sorted by name, bytewise with a prefix first, and names are
 * unique; a zero counter is never stored (absent means zero).  The form is
 * therefore canonical: equal vectors are byte-equal.  Comparing and merging
 * are linear walks over two sorted lists.  Entries are read byte by byte,
 * so nothing beyond the header needs alignment (the type is declared with
 * int4 alignment and extended storage).  This layout is what tables hold:
 * changing it needs an upgrade path for stored values.
 *
 * Text form: {crm:6,local:11}, the empty vector {}.  A system name is
 * written bare when it matches [A-Za-z0-9_.-]+ and in double quotes
 * otherwise, with \" and \\ as the only escapes.  Names are 1 to 63 bytes
 * and hold no control characters, whichever form brings them in.
 *
 * Memory: results are palloc'd in the caller's memory context; arguments
 * are never modified.
 *
 *-------------------------------------------------------------------------
 */
#include "sync_resolve.h"

#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

/* The longest system name, in bytes. */
#define VC_MAX_NAME		63

/*
 * The smallest entry in the binary (send/recv) form: an int32 name length
 * and an int64 counter.
 */
#define VC_MIN_WIRE_ENTRY	12

typedef struct VclockData
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int32		count;			/* number of entries */
	char		entries[FLEXIBLE_ARRAY_MEMBER];
} VclockData;

#define VC_HDRSZ		offsetof(VclockData, entries)

/* One (system, counter) pair, decoded. */
typedef struct VcEntry
{
	const char *name;			/* not necessarily NUL-terminated */
	int			len;
	int64		counter;
} VcEntry;

/* A cursor over the entries of a stored vector. */
typedef struct VcIter
{
	const char *p;
	const char *end;
	int32		left;
} VcIter;

/* The text-form parser's state. */
typedef struct VcParser
{
	const char *input;			/* the whole input, for messages */
	const char *p;				/* the next byte to read */
} VcParser;

#define VC_SYNTAX_ERROR(ps, ...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION), \
			 errmsg("invalid input syntax for type sync_resolve.vclock: \"%s\"", \
					(ps)->input), \
			 errdetail(__VA_ARGS__), \
			 errhint("A version vector is written like {crm:6,local:11}; " \
					 "double-quote a system name that holds characters other " \
					 "than letters, digits, \"_\", \".\" and \"-\".")))

PG_FUNCTION_INFO_V1(vclock_in);
PG_FUNCTION_INFO_V1(vclock_out);
PG_FUNCTION_INFO_V1(vclock_recv);
PG_FUNCTION_INFO_V1(vclock_send);
PG_FUNCTION_INFO_V1(vclock_eq);
PG_FUNCTION_INFO_V1(vclock_ne);
PG_FUNCTION_INFO_V1(vclock_lt);
PG_FUNCTION_INFO_V1(vclock_le);
PG_FUNCTION_INFO_V1(vclock_gt);
PG_FUNCTION_INFO_V1(vclock_ge);
PG_FUNCTION_INFO_V1(vclock_concurrent);
PG_FUNCTION_INFO_V1(vclock_compare);
PG_FUNCTION_INFO_V1(vclock_merge);
PG_FUNCTION_INFO_V1(vclock_tick);
PG_FUNCTION_INFO_V1(vclock_get);
PG_FUNCTION_INFO_V1(vclock_to_jsonb);
PG_FUNCTION_INFO_V1(jsonb_to_vclock);


/* ------------------------------------------------------------------------
 * Names and counters
 * ------------------------------------------------------------------------
 */

/* The order of entries: bytewise, a prefix before the longer name. */
static int
vc_name_cmp(const char *a, int alen, const char *b, int blen)
{
	int			cmp = memcmp(a, b, Min(alen, blen));

	if (cmp != 0)
		return cmp;
	return (alen > blen) - (alen < blen);
}

static int
vc_entry_qsort_cmp(const void *a, const void *b)
{
	const VcEntry *ea = (const VcEntry *) a;
	const VcEntry *eb = (const VcEntry *) b;

	return vc_name_cmp(ea->name, ea->len, eb->name, eb->len);
}

/* Characters of a system name that may be written without quotes. */
static inline bool
vc_is_bare_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static inline bool
vc_is_control(char c)
{
	return (unsigned char) c < 0x20 || c == 0x7f;
}

static inline bool
vc_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Why a system name cannot be stored, as a sentence for errdetail, or NULL
 * when it can.
 */
static const char *
vc_name_problem(const char *name, int len)
{
	int			i;

	if (len == 0)
		return "A system name must not be empty.";
	if (len > VC_MAX_NAME)
		return psprintf("A system name must not be longer than %d bytes; this one has %d.",
						VC_MAX_NAME, len);
	for (i = 0; i < len; i++)
	{
		if (vc_is_control(name[i]))
			return "A system name must not contain control characters.";
	}
	return NULL;
}

/*
 * A system name fit for a message: a name too long to store is cut short
 * with "...", and control characters, which no valid name holds, are
 * shown as \xNN.
 */
static char *
vc_name_for_message(const char *name, int len)
{
	StringInfoData buf;
	int			shown = len;
	int			i;

	if (len > VC_MAX_NAME)
		shown = pg_mbcliplen(name, len, VC_MAX_NAME);
	initStringInfo(&buf);
	for (i = 0; i < shown; i++)
	{
		if (vc_is_control(name[i]))
			appendStringInfo(&buf, "\\x%02x", (unsigned char) name[i]);
		else
			appendStringInfoChar(&buf, name[i]);
	}
	if (shown < len)
		appendStringInfoString(&buf, "...");
	return buf.data;
}

/*
 * Appends decimal digit c to *value; false when the result would exceed
 * PG_INT64_MAX.
 */
static inline bool
vc_add_digit(uint64 *value, char c)
{
	uint64		digit = (uint64) (c - '0');

	if (*value > ((uint64) PG_INT64_MAX - digit) / 10)
		return false;
	*value = *value * 10 + digit;
	return true;
}

/* Writes a system name in text form, quoted only when it has to be. */
static void
vc_append_name(StringInfo buf, const char *name, int len)
{
	bool		bare = true;
	int			i;

	for (i = 0; i < len; i++)
	{
		if (!vc_is_bare_char(name[i]))
		{
			bare = false;
			break;
		}
	}
	if (bare)
	{
		appendBinaryStringInfo(buf, name, len);
		return;
	}
	appendStringInfoChar(buf, '"');
	for (i = 0; i < len; i++)
	{
		if (name[i] == '"' || name[i] == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, name[i]);
	}
	appendStringInfoChar(buf, '"');
}


/* ------------------------------------------------------------------------
 * Reading and writing the stored layout
 * ------------------------------------------------------------------------
 */

static void
vc_iter_init(VcIter *it, const SrVclock *v)
{
	const VclockData *d = (const VclockData *) v;

	it->p = d->entries;
	it->end = (const char *) v + VARSIZE(v);
	it->left = d->count;
}

/* Decodes the next entry into *e; false after the last one. */
static bool
vc_iter_next(VcIter *it, VcEntry *e)
{
	uint64		value = 0;
	int			shift = 0;

	if (it->left <= 0)
		return false;
	if (it->p >= it->end)
		elog(ERROR, "corrupt sync_resolve.vclock value: entries run past its end");
	e->len = (uint8) *it->p++;
	if (e->len == 0 || e->len > VC_MAX_NAME || e->len > it->end - it->p)
		elog(ERROR, "corrupt sync_resolve.vclock value: bad name length %d", e->len);
	e->name = it->p;
	it->p += e->len;
	for (;;)
	{
		uint8		b;

		if (it->p >= it->end || shift > 56)
			elog(ERROR, "corrupt sync_resolve.vclock value: bad counter");
		b = (uint8) *it->p++;
		value |= (uint64) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			break;
		shift += 7;
	}
	if (value == 0 || value > (uint64) PG_INT64_MAX)
		elog(ERROR, "corrupt sync_resolve.vclock value: bad counter");
	e->counter = (int64) value;
	it->left--;
	return true;
}

/* Bytes that vc_put writes for one entry. */
static int
vc_entry_size(int len, int64 counter)
{
	uint64		value = (uint64) counter;
	int			size = 1 + len;

	do
	{
		size++;
		value >>= 7;
	} while (value != 0);
	return size;
}

/* Writes one entry at p; returns the byte after it. */
static char *
vc_put(char *p, const char *name, int len, int64 counter)
{
	uint64		value = (uint64) counter;

	Assert(len > 0 && len <= VC_MAX_NAME && counter > 0);
	*p++ = (char) len;
	memcpy(p, name, len);
	p += len;
	while (value >= 0x80)
	{
		*p++ = (char) ((value & 0x7f) | 0x80);
		value >>= 7;
	}
	*p++ = (char) value;
	return p;
}

/* Room for a vector whose entries take at most datalen bytes. */
static VclockData *
vc_alloc(Size datalen)
{
	return (VclockData *) palloc(VC_HDRSZ + datalen);
}

/* Seals a vector whose entries end at end. */
static SrVclock *
vc_finish(VclockData *d, const char *end, int32 count)
{
	d->count = count;
	SET_VARSIZE(d, end - (const char *) d);
	return (SrVclock *) d;
}

/*
 * Sorts entries by name.  Returns the index of an entry whose name repeats
 * the one before it, or -1 when the names are unique.
 */
static int
vc_sort_entries(VcEntry *entries, int n)
{
	int			i;

	if (n > 1)
		qsort(entries, n, sizeof(VcEntry), vc_entry_qsort_cmp);
	for (i = 1; i < n; i++)
	{
		if (vc_entry_qsort_cmp(&entries[i - 1], &entries[i]) == 0)
			return i;
	}
	return -1;
}

/*
 * Builds a vector from sorted entries with unique, valid names, dropping
 * zero counters.
 */
static SrVclock *
vc_from_entries(const VcEntry *entries, int n)
{
	VclockData *d;
	Size		datalen = 0;
	char	   *p;
	int32		count = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (entries[i].counter > 0)
			datalen += vc_entry_size(entries[i].len, entries[i].counter);
	}
	if (VC_HDRSZ + datalen > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("sync_resolve.vclock value is too large"),
				 errdetail("The vector has %d entries.", n)));
	d = vc_alloc(datalen);
	p = d->entries;
	for (i = 0; i < n; i++)
	{
		if (entries[i].counter > 0)
		{
			p = vc_put(p, entries[i].name, entries[i].len, entries[i].counter);
			count++;
		}
	}
	return vc_finish(d, p, count);
}

/* The counter of one system, 0 when absent. */
static int64
vc_get(const SrVclock *v, const char *name, int len)
{
	VcIter		it;
	VcEntry		e;

	vc_iter_init(&it, v);
	while (vc_iter_next(&it, &e))
	{
		int			cmp = vc_name_cmp(e.name, e.len, name, len);

		if (cmp == 0)
			return e.counter;
		if (cmp > 0)
			break;
	}
	return 0;
}


/* ------------------------------------------------------------------------
 * The C interface (sync_resolve.h)
 * ------------------------------------------------------------------------
 */

/*
 * How a stands to b: equal, before (every counter of a is at most b's and
 * one is smaller), after (the reverse), or concurrent (each has a counter
 * larger than the other's).
 */
SrVclockOrder
sr_vclock_compare(const SrVclock *a, const SrVclock *b)
{
	VcIter		ia;
	VcIter		ib;
	VcEntry		ea;
	VcEntry		eb;
	bool		has_a;
	bool		has_b;
	bool		a_ahead = false;	/* some counter of a exceeds b's */
	bool		b_ahead = false;	/* some counter of b exceeds a's */

	/* canonical form: byte-equal is equal */
	if (VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0)
		return SR_VC_EQUAL;

	vc_iter_init(&ia, a);
	vc_iter_init(&ib, b);
	has_a = vc_iter_next(&ia, &ea);
	has_b = vc_iter_next(&ib, &eb);
	while ((has_a || has_b) && !(a_ahead && b_ahead))
	{
		int			cmp;

		if (!has_a)
			cmp = 1;
		else if (!has_b)
			cmp = -1;
		else
			cmp = vc_name_cmp(ea.name, ea.len, eb.name, eb.len);

		if (cmp < 0)
		{
			/* a counts a system b has never seen */
			a_ahead = true;
			has_a = vc_iter_next(&ia, &ea);
		}
		else if (cmp > 0)
		{
			b_ahead = true;
			has_b = vc_iter_next(&ib, &eb);
		}
		else
		{
			if (ea.counter > eb.counter)
				a_ahead = true;
			else if (ea.counter < eb.counter)
				b_ahead = true;
			has_a = vc_iter_next(&ia, &ea);
			has_b = vc_iter_next(&ib, &eb);
		}
	}

	if (a_ahead && b_ahead)
		return SR_VC_CONCURRENT;
	if (a_ahead)
		return SR_VC_AFTER;
	if (b_ahead)
		return SR_VC_BEFORE;
	return SR_VC_EQUAL;
}

/* The pointwise maximum of a and b, palloc'd. */
SrVclock *
sr_vclock_merge(const SrVclock *a, const SrVclock *b)
{
	VclockData *d;
	char	   *p;
	int32		count = 0;
	VcIter		ia;
	VcIter		ib;
	VcEntry		ea;
	VcEntry		eb;
	bool		has_a;
	bool		has_b;

	/*
	 * Each entry of the result is a copy of an entry of a or of b, with the
	 * same size, so the two inputs together bound its length.
	 */
	d = vc_alloc(VARSIZE(a) + VARSIZE(b));
	p = d->entries;

	vc_iter_init(&ia, a);
	vc_iter_init(&ib, b);
	has_a = vc_iter_next(&ia, &ea);
	has_b = vc_iter_next(&ib, &eb);
	while (has_a || has_b)
	{
		int			cmp;

		if (!has_a)
			cmp = 1;
		else if (!has_b)
			cmp = -1;
		else
			cmp = vc_name_cmp(ea.name, ea.len, eb.name, eb.len);

		if (cmp < 0)
		{
			p = vc_put(p, ea.name, ea.len, ea.counter);
			has_a = vc_iter_next(&ia, &ea);
		}
		else if (cmp > 0)
		{
			p = vc_put(p, eb.name, eb.len, eb.counter);
			has_b = vc_iter_next(&ib, &eb);
		}
		else
		{
			p = vc_put(p, ea.name, ea.len, Max(ea.counter, eb.counter));
			has_a = vc_iter_next(&ia, &ea);
			has_b = vc_iter_next(&ib, &eb);
		}
		count++;
	}
	return vc_finish(d, p, count);
}

/*
 * v with the counter of system advanced by one, palloc'd.  v may be NULL,
 * which stands for the empty vector: the result is then {system:1}.
 */
SrVclock *
sr_vclock_tick(const SrVclock *v, const char *system)
{
	int			len = strlen(system);
	const char *problem = vc_name_problem(system, len);
	VclockData *d;
	char	   *p;
	int32		count = 0;
	bool		done = false;
	VcIter		it;
	VcEntry		e;

	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid system name \"%s\" for type sync_resolve.vclock",
						vc_name_for_message(system, len)),
				 errdetail("%s", problem)));

	if (v == NULL)
	{
		d = vc_alloc(1 + len + 1);
		p = vc_put(d->entries, system, len, 1);
		return vc_finish(d, p, 1);
	}

	/* at worst, one new entry with a counter of 1 */
	d = vc_alloc(VARSIZE(v) + 1 + len + 1);
	p = d->entries;
	vc_iter_init(&it, v);
	while (vc_iter_next(&it, &e))
	{
		int			cmp = done ? -1 : vc_name_cmp(e.name, e.len, system, len);

		if (cmp == 0)
		{
			if (e.counter == PG_INT64_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("counter of system \"%s\" in sync_resolve.vclock is out of range",
								system),
						 errdetail("The counter is already " INT64_FORMAT ", the largest a version vector holds.",
								   e.counter)));

			/*
			 * A longer varint needs one more byte than the entry had: the
			 * allocation above leaves room for it, since no new entry is
			 * added in this case.
			 */
			p = vc_put(p, e.name, e.len, e.counter + 1);
			done = true;
		}
		else
		{
			if (cmp > 0)
			{
				p = vc_put(p, system, len, 1);
				count++;
				done = true;
			}
			p = vc_put(p, e.name, e.len, e.counter);
		}
		count++;
	}
	if (!done)
	{
		p = vc_put(p, system, len, 1);
		count++;
	}
	return vc_finish(d, p, count);
}

/*
 * Refuse a version from system source for a row of table (own: the row's
 * version) whose counter for local, the one entry this database ticks,
 * leaves no room to tick it: a source learns local's counter only from
 * what it is sent, and no database makes 2^62 changes to a row.  Merged
 * into the row's version, such a counter (an integration's bug, or a
 * forged version) would have made every later local change of the row
 * fail: the counter cannot pass the largest int8.  A counter the row has
 * reached itself is always taken.
 */
void
sr_vclock_check_incoming(const SrVclock *v, const SrVclock *own, const char *source,
						 const char *table)
{
	int64		local;

	if (v == NULL)
		return;
	local = vc_get(v, SR_LOCAL, strlen(SR_LOCAL));
	if (local >= (INT64CONST(1) << 62) &&
		(own == NULL || local > vc_get(own, SR_LOCAL, strlen(SR_LOCAL))))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("version %s from system \"%s\" for table %s gives local a counter of " INT64_FORMAT ", beyond any change made here",
						sr_vclock_to_cstring(v), source, table, local),
				 errdetail("sync_resolve gives each system the local counter with what it sends; merged into the row's version, a counter this large would leave no room for the row's next local change."),
				 errhint("Send the version the system was given with the row, or none.")));
}

/* The text form of v, palloc'd. */
char *
sr_vclock_to_cstring(const SrVclock *v)
{
	StringInfoData buf;
	VcIter		it;
	VcEntry		e;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	vc_iter_init(&it, v);
	while (vc_iter_next(&it, &e))
	{
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		vc_append_name(&buf, e.name, e.len);
		appendStringInfo(&buf, ":" INT64_FORMAT, e.counter);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}


/* ------------------------------------------------------------------------
 * Text form
 * ------------------------------------------------------------------------
 */

static void
vc_skip_ws(VcParser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
		   *ps->p == '\r' || *ps->p == '\f' || *ps->p == '\v')
		ps->p++;
}

/* The 1-based character position of at in the input. */
static int
vc_pos(const VcParser *ps, const char *at)
{
	return pg_mbstrlen_with_len(ps->input, at - ps->input) + 1;
}

/* What stands at at, for a message. */
static const char *
vc_found(const char *at)
{
	unsigned char c = (unsigned char) *at;

	if (c == '\0')
		return "end of input";
	if (vc_is_control(*at))
		return psprintf("control character 0x%02x", c);
	if (c >= 0x80)
		return "a non-ASCII character";
	return psprintf("\"%c\"", c);
}

/*
 * Reads a system name, bare or quoted, into buf (VC_MAX_NAME + 1 bytes),
 * NUL-terminated; returns its length.
 */
static int
vc_parse_name(VcParser *ps, char *buf)
{
	const char *start = ps->p;
	int			n = 0;

	if (*ps->p == '"')
	{
		ps->p++;
		for (;;)
		{
			char		c = *ps->p;

			if (c == '\0')
				VC_SYNTAX_ERROR(ps, "The quoted system name that starts at position %d is not terminated.",
								vc_pos(ps, start));
			if (c == '"')
			{
				ps->p++;
				break;
			}
			if (c == '\\')
			{
				c = ps->p[1];
				if (c != '"' && c != '\\')
					VC_SYNTAX_ERROR(ps, "Found %s after the backslash at position %d; only \\\" and \\\\ are escapes in a quoted system name.",
									vc_found(ps->p + 1), vc_pos(ps, ps->p));
				ps->p++;
			}
			else if (vc_is_control(c))
				VC_SYNTAX_ERROR(ps, "The system name that starts at position %d contains a control character.",
								vc_pos(ps, start));
			if (n >= VC_MAX_NAME)
				VC_SYNTAX_ERROR(ps, "The system name that starts at position %d is longer than %d bytes.",
								vc_pos(ps, start), VC_MAX_NAME);
			buf[n++] = c;
			ps->p++;
		}
		if (n == 0)
			VC_SYNTAX_ERROR(ps, "The system name at position %d is empty.",
							vc_pos(ps, start));
	}
	else
	{
		while (vc_is_bare_char(*ps->p))
		{
			if (n >= VC_MAX_NAME)
				VC_SYNTAX_ERROR(ps, "The system name that starts at position %d is longer than %d bytes.",
								vc_pos(ps, start), VC_MAX_NAME);
			buf[n++] = *ps->p++;
		}
		if (n == 0)
			VC_SYNTAX_ERROR(ps, "Expected a system name at position %d, found %s.",
							vc_pos(ps, start), vc_found(start));
	}
	buf[n] = '\0';
	return n;
}

/* Reads the counter of system name. */
static int64
vc_parse_counter(VcParser *ps, const char *name)
{
	const char *start = ps->p;
	uint64		value = 0;

	if (*ps->p == '-')
		VC_SYNTAX_ERROR(ps, "The counter of system \"%s\" at position %d is negative.",
						name, vc_pos(ps, start));
	if (!vc_is_digit(*ps->p))
		VC_SYNTAX_ERROR(ps, "Expected the counter of system \"%s\" at position %d, found %s.",
						name, vc_pos(ps, start), vc_found(start));
	while (vc_is_digit(*ps->p))
	{
		if (!vc_add_digit(&value, *ps->p))
			VC_SYNTAX_ERROR(ps, "The counter of system \"%s\" at position %d is larger than " INT64_FORMAT ".",
							name, vc_pos(ps, start), PG_INT64_MAX);
		ps->p++;
	}
	if (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E')
		VC_SYNTAX_ERROR(ps, "The counter of system \"%s\" at position %d is not an integer.",
						name, vc_pos(ps, start));
	return (int64) value;
}

static SrVclock *
vc_parse(const char *input)
{
	VcParser	ps;
	VcEntry    *entries;
	int			n = 0;
	int			cap = 8;
	int			dup;

	ps.input = input;
	ps.p = input;

	vc_skip_ws(&ps);
	if (*ps.p != '{')
		VC_SYNTAX_ERROR(&ps, "Expected \"{\" at position %d, found %s.",
						vc_pos(&ps, ps.p), vc_found(ps.p));
	ps.p++;
	vc_skip_ws(&ps);

	entries = (VcEntry *) palloc(cap * sizeof(VcEntry));
	if (*ps.p == '}')
		ps.p++;
	else
	{
		for (;;)
		{
			char		name[VC_MAX_NAME + 1];
			int			len;
			int64		counter;

			len = vc_parse_name(&ps, name);
			vc_skip_ws(&ps);
			if (*ps.p != ':')
				VC_SYNTAX_ERROR(&ps, "Expected \":\" after system name \"%s\" at position %d, found %s.",
								name, vc_pos(&ps, ps.p), vc_found(ps.p));
			ps.p++;
			vc_skip_ws(&ps);
			counter = vc_parse_counter(&ps, name);

			if (n == cap)
			{
				cap *= 2;
				entries = (VcEntry *) repalloc_huge(entries, cap * sizeof(VcEntry));
			}
			entries[n].name = pnstrdup(name, len);
			entries[n].len = len;
			entries[n].counter = counter;
			n++;

			vc_skip_ws(&ps);
			if (*ps.p == ',')
			{
				ps.p++;
				vc_skip_ws(&ps);
				continue;
			}
			if (*ps.p == '}')
			{
				ps.p++;
				break;
			}
			VC_SYNTAX_ERROR(&ps, "Expected \",\" or \"}\" at position %d, found %s.",
							vc_pos(&ps, ps.p), vc_found(ps.p));
		}
	}

	vc_skip_ws(&ps);
	if (*ps.p != '\0')
		VC_SYNTAX_ERROR(&ps, "Found %s at position %d, after the closing \"}\".",
						vc_found(ps.p), vc_pos(&ps, ps.p));

	dup = vc_sort_entries(entries, n);
	if (dup >= 0)
		VC_SYNTAX_ERROR(&ps, "System \"%s\" appears more than once.",
						entries[dup].name);

	return vc_from_entries(entries, n);
}

Datum
vclock_in(PG_FUNCTION_ARGS)
{
	char	   *input = PG_GETARG_CSTRING(0);

	PG_RETURN_POINTER(vc_parse(input));
}

Datum
vclock_out(PG_FUNCTION_ARGS)
{
	SrVclock   *v = DatumGetSrVclockP(PG_GETARG_DATUM(0));

	PG_RETURN_CSTRING(sr_vclock_to_cstring(v));
}


/* ------------------------------------------------------------------------
 * Binary form: int32 count, then per entry the name as int32 length and
 * bytes in the client encoding, and the counter as int8
 * ------------------------------------------------------------------------
 */

Datum
vclock_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		count = (int32) pq_getmsgint(buf, 4);
	VcEntry    *entries;
	int			dup;
	int			i;

	if (count < 0 || count > (buf->len - buf->cursor) / VC_MIN_WIRE_ENTRY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid entry count %d in binary data for type sync_resolve.vclock",
						count),
				 errdetail("The count must be between 0 and the number of entries that the remaining %d bytes can hold.",
						   buf->len - buf->cursor)));

	entries = (VcEntry *) palloc(Max(count, 1) * sizeof(VcEntry));
	for (i = 0; i < count; i++)
	{
		int32		rawlen = (int32) pq_getmsgint(buf, 4);
		int			nbytes;
		char	   *name = pq_getmsgtext(buf, rawlen, &nbytes);
		const char *problem = vc_name_problem(name, nbytes);
		int64		counter;

		if (problem != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid system name \"%s\" in binary data for type sync_resolve.vclock",
							vc_name_for_message(name, nbytes)),
					 errdetail("%s", problem)));
		counter = pq_getmsgint64(buf);
		if (counter < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid counter " INT64_FORMAT " of system \"%s\" in binary data for type sync_resolve.vclock",
							counter, name),
					 errdetail("A counter must not be negative.")));
		entries[i].name = name;
		entries[i].len = nbytes;
		entries[i].counter = counter;
	}

	dup = vc_sort_entries(entries, count);
	if (dup >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("duplicate system \"%s\" in binary data for type sync_resolve.vclock",
						entries[dup].name),
				 errdetail("Each system may appear once in a version vector.")));

	PG_RETURN_POINTER(vc_from_entries(entries, count));
}

Datum
vclock_send(PG_FUNCTION_ARGS)
{
	SrVclock   *v = DatumGetSrVclockP(PG_GETARG_DATUM(0));
	StringInfoData buf;
	VcIter		it;
	VcEntry		e;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, ((const VclockData *) v)->count);
	vc_iter_init(&it, v);
	while (vc_iter_next(&it, &e))
	{
		char	   *name = pg_server_to_client(e.name, e.len);
		int			len = (name == e.name) ? e.len : (int) strlen(name);

		pq_sendint32(&buf, len);
		pq_sendbytes(&buf, name, len);
		pq_sendint64(&buf, e.counter);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}


/* ------------------------------------------------------------------------
 * Comparison
 * ------------------------------------------------------------------------
 */

/* sr_vclock_compare on the first two arguments of a SQL call. */
static SrVclockOrder
vc_compare_args(FunctionCallInfo fcinfo)
{
	SrVclock   *a = DatumGetSrVclockP(PG_GETARG_DATUM(0));
	SrVclock   *b = DatumGetSrVclockP(PG_GETARG_DATUM(1));
	SrVclockOrder order = sr_vclock_compare(a, b);

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return order;
}

Datum
vclock_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vc_compare_args(fcinfo) == SR_VC_EQUAL);
}

Datum
vclock_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vc_compare_args(fcinfo) != SR_VC_EQUAL);
}

/* a happened before b */
Datum
vclock_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vc_compare_args(fcinfo) == SR_VC_BEFORE);
}

/* every counter of a is at most b's */
Datum
vclock_le(PG_FUNCTION_ARGS)
{
	SrVclockOrder order = vc_compare_args(fcinfo);

	PG_RETURN_BOOL(order == SR_VC_BEFORE || order == SR_VC_EQUAL);
}

/* b happened before a */
Datum
vclock_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vc_compare_args(fcinfo) == SR_VC_AFTER);
}

Datum
vclock_ge(PG_FUNCTION_ARGS)
{
	SrVclockOrder order = vc_compare_args(fcinfo);

	PG_RETURN_BOOL(order == SR_VC_AFTER || order == SR_VC_EQUAL);
}

/* neither is <= the other */
Datum
vclock_concurrent(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vc_compare_args(fcinfo) == SR_VC_CONCURRENT);
}

Datum
vclock_compare(PG_FUNCTION_ARGS)
{
	const char *word = NULL;

	switch (vc_compare_args(fcinfo))
	{
		case SR_VC_EQUAL:
			word = "equal";
			break;
		case SR_VC_BEFORE:
			word = "before";
			break;
		case SR_VC_AFTER:
			word = "after";
			break;
		case SR_VC_CONCURRENT:
			word = "concurrent";
			break;
	}
	if (word == NULL)
		elog(ERROR, "unexpected sync_resolve.vclock order");
	PG_RETURN_TEXT_P(cstring_to_text(word));
}


/* ------------------------------------------------------------------------
 * Merge, tick, get
 * ------------------------------------------------------------------------
 */

/* Declared STRICT: a NULL argument gives NULL. */
Datum
vclock_merge(PG_FUNCTION_ARGS)
{
	SrVclock   *a = DatumGetSrVclockP(PG_GETARG_DATUM(0));
	SrVclock   *b = DatumGetSrVclockP(PG_GETARG_DATUM(1));

	PG_RETURN_POINTER(sr_vclock_merge(a, b));
}

/* Not strict: a NULL vector ticks to {system:1}; a NULL system is an error. */
Datum
vclock_tick(PG_FUNCTION_ARGS)
{
	SrVclock   *v = NULL;
	char	   *system;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("system name passed to sync_resolve.vclock_tick must not be null"),
				 errhint("Pass the name of the system whose counter is to advance.")));
	if (!PG_ARGISNULL(0))
		v = DatumGetSrVclockP(PG_GETARG_DATUM(0));
	system = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_POINTER(sr_vclock_tick(v, system));
}

/* The counter of a system; 0 when the vector does not hold it. */
Datum
vclock_get(PG_FUNCTION_ARGS)
{
	SrVclock   *v = DatumGetSrVclockP(PG_GETARG_DATUM(0));
	text	   *system = PG_GETARG_TEXT_PP(1);

	PG_RETURN_INT64(vc_get(v, VARDATA_ANY(system), VARSIZE_ANY_EXHDR(system)));
}


/* ------------------------------------------------------------------------
 * jsonb casts: {"crm": 6, "local": 11}
 * ------------------------------------------------------------------------
 */

Datum
vclock_to_jsonb(PG_FUNCTION_ARGS)
{
	SrVclock   *v = DatumGetSrVclockP(PG_GETARG_DATUM(0));
	JsonbParseState *state = NULL;
	JsonbValue *result;
	VcIter		it;
	VcEntry		e;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	vc_iter_init(&it, v);
	while (vc_iter_next(&it, &e))
	{
		JsonbValue	key;
		JsonbValue	value;

		key.type = jbvString;
		key.val.string.val = (char *) e.name;
		key.val.string.len = e.len;
		pushJsonbValue(&state, WJB_KEY, &key);

		value.type = jbvNumeric;
		value.val.numeric = int64_to_numeric(e.counter);
		pushJsonbValue(&state, WJB_VALUE, &value);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}

/* A jsonb value as text, for a message. */
static char *
vc_jsonb_value_text(JsonbValue *v)
{
	Jsonb	   *j = JsonbValueToJsonb(v);

	return JsonbToCString(NULL, &j->root, VARSIZE(j));
}

/*
 * The counter a jsonb value stands for: a number that is a non-negative
 * integer no larger than PG_INT64_MAX (6 and 6.0 both mean 6).  False for
 * anything else.
 */
static bool
vc_jsonb_counter(const JsonbValue *v, int64 *counter)
{
	char	   *s;
	uint64		value = 0;

	if (v->type != jbvNumeric)
		return false;
	s = DatumGetCString(DirectFunctionCall1(numeric_out,
											NumericGetDatum(v->val.numeric)));

	/* numeric_out writes -5, 5.25, NaN, Infinity: never an exponent */
	if (!vc_is_digit(*s))
		return false;
	while (vc_is_digit(*s))
	{
		if (!vc_add_digit(&value, *s))
			return false;
		s++;
	}
	if (*s == '.')
	{
		s++;
		while (*s == '0')
			s++;
	}
	if (*s != '\0')
		return false;
	*counter = (int64) value;
	return true;
}

Datum
jsonb_to_vclock(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	VcEntry    *entries;
	int			n = 0;
	char	   *key = NULL;
	int			keylen = 0;

	if (!JB_ROOT_IS_OBJECT(jb))
	{
		const char *what = "array";
		JsonbValue	scalar;

		if (JB_ROOT_IS_SCALAR(jb) && JsonbExtractScalar(&jb->root, &scalar))
			what = JsonbTypeName(&scalar);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("cannot cast jsonb %s to type sync_resolve.vclock", what),
				 errdetail("A version vector in jsonb is an object whose keys are system names and whose values are counters, such as {\"crm\": 6, \"local\": 11}.")));
	}

	entries = (VcEntry *) palloc(Max(JB_ROOT_COUNT(jb), 1) * sizeof(VcEntry));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			keylen = v.val.string.len;
		}
		else if (tok == WJB_VALUE)
		{
			const char *problem = vc_name_problem(key, keylen);
			int64		counter;

			if (problem != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid system name \"%s\" in jsonb for type sync_resolve.vclock",
								vc_name_for_message(key, keylen)),
						 errdetail("%s", problem)));
			if (!vc_jsonb_counter(&v, &counter))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid counter for system \"%s\" in jsonb for type sync_resolve.vclock: %s",
								key, vc_jsonb_value_text(&v)),
						 errdetail("A counter must be a non-negative integer no larger than " INT64_FORMAT ".",
								   PG_INT64_MAX)));
			entries[n].name = key;
			entries[n].len = keylen;
			entries[n].counter = counter;
			n++;
		}
	}

	/* jsonb keeps object keys unique */
	if (vc_sort_entries(entries, n) >= 0)
		elog(ERROR, "duplicate key in jsonb object");

	PG_RETURN_POINTER(vc_from_entries(entries, n));
}
