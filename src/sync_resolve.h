/*-------------------------------------------------------------------------
 *
 * sync_resolve.h
 *		Shared declarations of the sync_resolve extension.
 *
 * The extension decides, column by column, what a tracked table should hold
 * when several systems write it.  The pieces:
 *
 *	policy_cache.c	tracked-table metadata, column policies and systems,
 *					cached in CacheMemoryContext with relcache invalidation;
 *					the SPI plans that read and write each table
 *	mapping.c		jsonb payload <-> typed Datums, keys, type-aware equality
 *	resolve.c		the pure per-column decision (no SPI, no catalog)
 *	strategies.c	value-computing strategies (max/min, sum_delta, union,
 *					merge_json, custom)
 *	shadow.c		the per-table shadow: bases per (system, row) and the
 *					local per-column change metadata
 *	apply.c			apply(), apply_delete(), apply_batch(): the entry points
 *	review.c		the review queue and resolve()
 *	events.c		the append-only history
 *	direct.c		rows of the history and the outbox written without SQL
 *	trigger.c		triggers on tracked tables and on the policy tables
 *	vclock.c		the sync_resolve.vclock version-vector type
 *	module.c		_PG_init, GUCs, privilege switching
 *
 *-------------------------------------------------------------------------
 */
#ifndef SYNC_RESOLVE_H
#define SYNC_RESOLVE_H

#include "postgres.h"

#include "access/genam.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"
#include "storage/lockdefs.h"
#include "utils/relcache.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "compat.h"

#define SR_SCHEMA			"sync_resolve"
#define SR_LOCAL			"local"

/* ------------------------------------------------------------------------
 * vclock.c: version vectors
 * ------------------------------------------------------------------------
 */
typedef struct varlena SrVclock;

typedef enum SrVclockOrder
{
	SR_VC_EQUAL,
	SR_VC_BEFORE,				/* a happened before b */
	SR_VC_AFTER,				/* b happened before a */
	SR_VC_CONCURRENT
} SrVclockOrder;

#define DatumGetSrVclockP(d)	((SrVclock *) PG_DETOAST_DATUM(d))

extern SrVclockOrder sr_vclock_compare(const SrVclock *a, const SrVclock *b);
extern SrVclock *sr_vclock_merge(const SrVclock *a, const SrVclock *b);
extern SrVclock *sr_vclock_tick(const SrVclock *v, const char *system);
extern char *sr_vclock_to_cstring(const SrVclock *v);
extern void sr_vclock_check_incoming(const SrVclock *v, const SrVclock *own, const char *source,
									 const char *table);

/* ------------------------------------------------------------------------
 * Policies
 * ------------------------------------------------------------------------
 */
typedef enum SrStrategy
{
	SR_STRAT_OWNER,
	SR_STRAT_KEEP_LOCAL,
	SR_STRAT_TAKE_INCOMING,
	SR_STRAT_LATEST,
	SR_STRAT_EARLIEST,
	SR_STRAT_PRIORITY,
	SR_STRAT_MAX,
	SR_STRAT_MIN,
	SR_STRAT_SUM_DELTA,
	SR_STRAT_UNION,
	SR_STRAT_MERGE_JSON,
	SR_STRAT_REVIEW,
	SR_STRAT_CUSTOM
} SrStrategy;

typedef enum SrUnauthorized
{
	SR_UNAUTH_REJECT,
	SR_UNAUTH_REVIEW,
	SR_UNAUTH_ACCEPT
} SrUnauthorized;

typedef enum SrDeleteConflict
{
	SR_DELCONF_DELETE,
	SR_DELCONF_KEEP,
	SR_DELCONF_REVIEW
} SrDeleteConflict;

/* A value value_map does not know (column_policy.unmapped) */
typedef enum SrUnmapped
{
	SR_UNMAPPED_PASS,
	SR_UNMAPPED_NULL,
	SR_UNMAPPED_DEFAULT,
	SR_UNMAPPED_REVIEW,
	SR_UNMAPPED_REJECT
} SrUnmapped;

extern const char *sr_strategy_name(SrStrategy s);

/* A registered system (a row of sync_resolve.system). */
typedef struct SrSystem
{
	char	   *name;
	int			priority;
	Oid			member_role;	/* InvalidOid: anyone may act as it */
	char	   *replication_origin;
	bool		ignore_unknown_fields;
} SrSystem;

/* One row of value_map: a system's value for one of the column's values */
typedef struct SrValueMap
{
	int			sidx;			/* the system, by index in SrTable.systems */
	char	   *external;		/* as the system sends it (a JSON string's text) */
	Datum		local;			/* of the column's type */
} SrValueMap;

/* One row of transition: a change a source may make */
typedef struct SrTransition
{
	bool		from_null;		/* from no value */
	Datum		from;
	Datum		to;
} SrTransition;

/* One row of field_map */
typedef struct SrFieldMap
{
	char	   *field;			/* the system's name for it */
	int			col;			/* index into SrTable.cols */
	bool		has_in;
	bool		has_out;
	FmgrInfo	in_finfo;		/* jsonb -> jsonb, as it comes in */
	FmgrInfo	out_finfo;		/* jsonb -> jsonb, as it goes out */
} SrFieldMap;

/* The field maps of one system for one table */
typedef struct SrSystemMaps
{
	int			nfields;
	SrFieldMap *fields;
	const char *id_field;		/* the field carrying its record id, or NULL */
	const char **field_of_col;	/* [ncols]: the system's name of each column */
	SrFieldMap **map_of_col;	/* [ncols]: its field_map row, or NULL */
} SrSystemMaps;

/*
 * One column of a tracked table, with its type support and its policy.
 * Key columns carry no policy: they identify the row.
 */
typedef struct SrColumn
{
	AttrNumber	attnum;
	char	   *name;
	Oid			typid;			/* the column's declared type */
	int32		typmod;
	Oid			collation;
	Oid			basetypid;		/* domains resolved to their base type */
	int16		typlen;
	bool		typbyval;
	char		typalign;
	bool		is_key;
	bool		identity_always;	/* GENERATED ALWAYS AS IDENTITY */

	/* type support, all with fn_mcxt in the table's context */
	FmgrInfo	in_finfo;		/* input function, for JSON scalars */
	Oid			typioparam;
	bool		has_eq;
	FmgrInfo	eq_finfo;		/* the type's default equality */
	bool		has_cmp;
	FmgrInfo	cmp_finfo;		/* default btree ordering, for max/min */
	FmgrInfo	to_jsonb_finfo; /* to_jsonb() bound to this type */
	bool		is_json;		/* json: compared as jsonb */
	Oid			elemtypid;		/* array element type, or InvalidOid */
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
	bool		elem_has_eq;
	FmgrInfo	elem_eq_finfo;

	/* policy */
	bool		has_policy;		/* a column_policy row exists */
	SrStrategy	strategy;
	char	   *owner;			/* NULL: no owner */
	List	   *writers;		/* char *; NIL: every tracked system */
	int			group;			/* index into SrTable.groups, or -1 */
	Oid			custom_fn;
	FmgrInfo	custom_finfo;
	SrUnauthorized on_unauthorized;

	/* what an incoming value must be (mapping, validation) */
	SrUnmapped	unmapped;
	int			nvalue_maps;
	SrValueMap *value_maps;
	int			ntransitions;
	SrTransition *transitions;
	char	   *check_expr;		/* NULL: none */
	bool		invalid_to_review;	/* on_invalid = review */
	bool		norm_trim;		/* normalization: compared without surrounding blanks */
	bool		norm_case;		/* ... and without letter case */
	SPIPlanPtr	check_plan;		/* prepared at first use, kept */
	SPIPlanPtr	default_plan;	/* likewise: SELECT the column's default */
	bool		default_plan_ready;
} SrColumn;

/* Columns of one col_group. */
typedef struct SrGroup
{
	char	   *name;
	int			ncols;
	int		   *cols;			/* indexes into SrTable.cols */
} SrGroup;

/* A plan for one set of written columns (UPDATE SET / INSERT list). */
typedef struct SrColumnSetPlan
{
	Bitmapset  *cols;			/* column indexes */
	SPIPlanPtr	plan;
} SrColumnSetPlan;

/*
 * Everything sync_resolve needs to know about one tracked table.  Lives in
 * its own memory context under CacheMemoryContext; dropped when a relcache
 * invalidation names the table, its shadow or a policy table.
 */
typedef struct SrTable
{
	Oid			relid;
	bool		valid;
	MemoryContext mcxt;
	char	   *relname;		/* quoted, schema-qualified */
	char	   *display_name;	/* for messages */
	Oid			shadow_relid;
	char	   *shadow_name;	/* quoted, schema-qualified */
	int			natts;			/* attributes including dropped ones */
	int			ncols;
	SrColumn   *cols;			/* live, non-generated columns, attnum order */
	int		   *col_of_attnum;	/* [natts + 1]: index into cols, or -1 */
	int			nkeys;
	int		   *keys;			/* indexes into cols, primary key order */
	int			nsystems;
	char	  **systems;		/* external systems syncing this table */
	SrStrategy	default_strategy;
	SrDeleteConflict on_delete_conflict;
	int			alert_per_hour; /* tracked.alert_per_hour; -1: not set */
	SrSystemMaps *maps;			/* [nsystems] */
	int			nmatch;
	int		   *match_on;		/* indexes into cols: the natural key */
	SPIPlanPtr	plan_match;		/* the row with these match_on values */
	SPIPlanPtr	plan_match_peek;	/* the same, locking nothing */
	List	   *lazy_plans;		/* other kept plans, freed with the table */
	TimestampTz tracked_at;
	int			ngroups;
	SrGroup    *groups;
	bool		other_unique;	/* a unique or exclusion index besides the key */
	bool		deferrable_unique;	/* a deferrable one (the key's too): no ON CONFLICT */

	/* prepared at first use (sr_table_plans), kept */
	bool		plans_ready;
	SPIPlanPtr	plan_lock_row;	/* FOR NO KEY UPDATE */
	SPIPlanPtr	plan_lock_row_for_delete;	/* FOR UPDATE */
	SPIPlanPtr	plan_read_row;	/* no lock (sr_plan_read_rows) */
	SPIPlanPtr	plan_scan_rows;	/* every row, no lock (sr_plan_read_rows) */
	SPIPlanPtr	plan_scan_rows_ordered;	/* the same, in key order */
	SPIPlanPtr	plan_delete_row;
	SPIPlanPtr	plan_read_shadow;
	SPIPlanPtr	plan_write_shadow;
	SPIPlanPtr	plan_write_shadow2;	/* two rows: a base and the local metadata */
	struct SrDirectTable *shadow_direct;	/* the shadow read and written directly */
	Oid			pkey_oid;
	RegProcedure *pkey_eq;		/* its equality functions; NULL: rows locked through SQL */
	char		update_direct;	/* apply()'s UPDATE without SQL: 'y', 'n', 0 not known yet */
	List	   *update_plans;	/* SrColumnSetPlan * */
	List	   *insert_plans;	/* SrColumnSetPlan * */
} SrTable;

/* policy_cache.c */
extern SrTable *sr_table_get(Oid relid, bool missing_ok, LOCKMODE lockmode);
extern Relation sr_table_hold(const SrTable *tab);
extern void sr_table_release(Relation rel);
extern const SrSystem *sr_system_get(const char *name, bool missing_ok);
extern const SrSystem *sr_system_by_origin(const char *origin);
extern Oid	sr_tracked_relid(Relation rel);
extern bool sr_table_has_system(const SrTable *tab, const char *system);
extern int	sr_table_system_index(const SrTable *tab, const char *system);
extern bool sr_column_writable_by(const SrColumn *col, const char *system);
extern int	sr_column_by_name(const SrTable *tab, const char *name);
extern SrColumnSetPlan *sr_plan_update(SrTable *tab, Bitmapset *cols);
extern SPIPlanPtr sr_plan_insert(SrTable *tab, Bitmapset *cols);
extern void sr_table_plans(SrTable *tab);
/* What sr_plan_read_rows() reads */
typedef enum SrRowsRead
{
	SR_ROWS_BY_KEY,				/* the row with the key given ($1...) */
	SR_ROWS_ALL,				/* every row, in no order */
	SR_ROWS_IN_KEY_ORDER		/* every row, ordered by the key columns */
} SrRowsRead;

extern SPIPlanPtr sr_plan_read_rows(SrTable *tab, SrRowsRead which);
extern void sr_cache_init(void);
extern void sr_cache_enter(void);
extern void sr_cache_leave(void);
extern Oid	sr_extension_owner(void);
extern Oid	sr_internal_relid(const char *relname);

/* ------------------------------------------------------------------------
 * mapping.c: jsonb <-> Datum
 * ------------------------------------------------------------------------
 */
/* Where a value came from, for error messages. */
typedef struct SrErrorTarget
{
	const SrTable *tab;
	const char *system;			/* the sending system, or NULL */
	const char *origin;			/* instead of "from system ...": e.g. "returned by f()" */
} SrErrorTarget;

extern Datum sr_jsonb_value_to_datum(const SrColumn *col, JsonbValue *v,
									 bool *isnull, const SrErrorTarget *where);
extern Jsonb *sr_datum_to_jsonb(const SrColumn *col, Datum value, bool isnull);
extern uint64 sr_datum_hash(const SrColumn *col, Datum v, bool isnull);
extern int	sr_interval_sign(Interval *iv);
extern bool sr_try_call2(PGFunction fn, Datum a, Datum b, int sqlerrcode, Datum *result);
extern bool sr_datum_equal(const SrColumn *col, Datum a, bool anull,
						   Datum b, bool bnull);
extern Jsonb *sr_build_key(const SrTable *tab, const Datum *keyvals,
						   const bool *keynulls);
extern void sr_parse_key(const SrTable *tab, Jsonb *obj, const char *system,
						 const char *what, Datum *keyvals);
extern char *sr_key_column_list(const SrTable *tab);
extern char *sr_jsonb_value_text(Jsonb *j);
extern Jsonb *sr_jsonb_string(const char *str);
extern Jsonb *sr_jsonb_object(int n, const char **keys, Jsonb **values);
extern bool sr_jsonb_get_field(Jsonb *obj, const char *key, JsonbValue *out);
extern Datum sr_text_array(List *strings);

/* ------------------------------------------------------------------------
 * translate.c: a system's own field names, values and record ids; what an
 * incoming value must be
 * ------------------------------------------------------------------------
 */
#define SR_FIELD_ID			(-1)	/* the field of the system's record id */
#define SR_FIELD_UNKNOWN	(-2)

#define SR_VALUE_AS_IS		0
#define SR_VALUE_MAPPED		1
#define SR_VALUE_UNMAPPED	2

struct SrImage;
extern int	sr_field_column(const SrTable *tab, int sidx, const char *field, SrFieldMap **map);
extern char *sr_external_text(const JsonbValue *v);
extern void sr_field_in(const SrTable *tab, const char *system, const SrFieldMap *map,
						JsonbValue *v);
extern int	sr_value_in(const SrColumn *col, int sidx, JsonbValue *v, Datum *out);
extern Datum sr_column_default(SrTable *tab, int c, bool *isnull);
extern Jsonb *sr_payload_out(const SrTable *tab, int sidx, Jsonb *payload,
							 const char *external_id);
extern char *sr_invalid_reason(SrTable *tab, int c, bool found, Datum L, bool Lnull,
							   Datum v, bool vnull);
extern Jsonb *sr_identity_key(const SrTable *tab, const char *system, const char *external_id);
extern char *sr_identity_of_row(const SrTable *tab, const char *system, Jsonb *key);
extern void sr_identity_add(const SrTable *tab, const char *system, const char *external_id,
							Jsonb *key);
extern int	sr_match_row(SrTable *tab, const struct SrImage *img, Datum *keyvals, bool peek);

/* ------------------------------------------------------------------------
 * Shadow rows (shadow.c)
 * ------------------------------------------------------------------------
 */
typedef struct SrShadowRow
{
	bool		found;			/* read from the shadow table */
	bool		dirty;			/* must be written back */
	/* base values, for external systems; indexed like SrTable.cols */
	Datum	   *values;
	bool	   *nulls;
	bool	   *known;			/* the base holds this column */
	bool		has_changed_at;
	TimestampTz changed_at;		/* the source's own clock, last seen */
	SrVclock   *version;		/* NULL: none */
	TimestampTz received_at;
	bool		deleted;		/* tombstone */
	TimestampTz deleted_at;
	char	   *deleted_by;		/* local row: the system that deleted it */
	/* local change metadata, for the 'local' row; indexed like cols */
	TimestampTz *col_changed_at;	/* DT_NOBEGIN: unknown */
	char	  **col_writer;		/* NULL: unknown */
	bool	   *held;			/* column held by an open review */
	/* for an external system: the base value is what this database sent */
	bool	   *sent;

	/*
	 * Local row, with PostgreSQL peers: this node's own transactions that
	 * wrote the row (their commit times not looked up yet), and the times of
	 * the changes the row already has, this node's and its peers' (origin
	 * commit times): the same change coming back, or relayed by another
	 * node, is an echo.
	 */
	int			nown;
	int64	   *own_xids;		/* FullTransactionId values */
	int			nseen;
	TimestampTz *seen_at;

	/* the version read or written last, when read or written directly */
	bool		has_tid;
	ItemPointerData tid;
	TransactionId xmin;
} SrShadowRow;

/*
 * The shadow's own columns, after the c<attnum> copies of the tracked
 * table's columns, in this order (see _create_shadow in sync_resolve.sql).
 */
typedef enum SrShadowMeta
{
	SR_SH_SYSTEM,
	SR_SH_KNOWN,
	SR_SH_CHANGED_AT,
	SR_SH_VERSION,
	SR_SH_RECEIVED_AT,
	SR_SH_DELETED_AT,
	SR_SH_DELETED_BY,
	SR_SH_COL_CHANGED_AT,
	SR_SH_COL_WRITER,
	SR_SH_HELD,
	SR_SH_SENT,
	SR_SH_OWN_XIDS,
	SR_SH_SEEN_AT,
	SR_SH_NMETA
} SrShadowMeta;

extern const char *const sr_shadow_meta_names[SR_SH_NMETA];
/* shadow rows written in this backend so far: a change says that some were */
extern uint64 sr_shadow_writes;
extern Oid	sr_shadow_meta_type(SrShadowMeta m, Oid vclock_type);

extern void sr_shadow_init_row(const SrTable *tab, SrShadowRow *row);
/* Everything the shadow holds for one row. */
typedef struct SrRowState
{
	SrShadowRow local;
	SrShadowRow *bases;			/* [nsystems], in SrTable.systems order */
} SrRowState;

extern void sr_shadow_load(SrTable *tab, const Datum *keyvals, SrRowState *st);
extern void sr_shadow_write_rows(SrTable *tab, const Datum *keyvals, const char *system,
								 SrShadowRow *row, SrShadowRow *lrow);
extern void sr_shadow_write(SrTable *tab, const Datum *keyvals,
							const char *system, SrShadowRow *row);
extern void sr_shadow_local_write(SrTable *tab, const Datum *keyvals,
								  SrShadowRow *lrow);

/* ------------------------------------------------------------------------
 * The per-column decision (resolve.c) and strategies (strategies.c)
 * ------------------------------------------------------------------------
 */
typedef enum SrDelta
{
	SR_DELTA_NONE,				/* not sent, or the source did not change it */
	SR_DELTA_ONE_SIDED,			/* only the source changed it */
	SR_DELTA_CONVERGENT,		/* both changed it to the same value */
	SR_DELTA_CONFLICT			/* both changed it, differently */
} SrDelta;

typedef enum SrAction
{
	SR_ACT_NOTHING,				/* nothing to take */
	SR_ACT_TAKE,				/* the incoming value */
	SR_ACT_KEEP,				/* the local value stays */
	SR_ACT_MERGE,				/* a computed value (SrColumnDecision.value) */
	SR_ACT_REVIEW,				/* the local value stays; held for a person */
	SR_ACT_REJECT				/* refused: the source may not write it */
} SrAction;

/* What the decision needs to know about one side of a column. */
typedef struct SrSide
{
	const char *system;			/* who wrote this value */
	int			priority;
	TimestampTz changed_at;		/* when */
	bool		since_tracking;	/* unknown: changed_at is when tracking began */
} SrSide;

typedef struct SrColumnInput
{
	bool		present;		/* in the incoming image */
	bool		delta_remote;	/* I IS DISTINCT FROM B, or no base */
	bool		delta_local;	/* L IS DISTINCT FROM B (or from I: no base) */
	bool		incoming_equals_local;
	bool		held;			/* an open review holds it */
	bool		authorized;		/* the source may write it */
	bool		dominated;		/* the incoming version covers every local change */
	SrSide		local;
	SrSide		incoming;
} SrColumnInput;

typedef struct SrColumnDecision
{
	SrDelta		delta;
	SrAction	action;
	const char *kind;			/* event kind: conflict, unauthorized, ... */
	char	   *rule;			/* why, in words; NULL when nothing happened */
	bool		needs_value;	/* the strategy computes the value */
	char	   *accepted_unauthorized;	/* on_unauthorized = accept: why it
										 * was logged */
} SrColumnDecision;

extern SrDelta sr_classify(const SrColumnInput *in);
extern void sr_decide(const SrColumn *col, const SrColumnInput *in,
					  SrColumnDecision *out);
extern void sr_decide_winner(SrStrategy strategy, const char *owner,
							 const char *label, const SrColumnInput *in,
							 SrColumnDecision *out);
extern int	sr_clock_skew_ms;

/* strategies.c: value-computing strategies */
typedef struct SrMergeInput
{
	const SrTable *tab;
	const SrColumn *col;
	Jsonb	   *key;
	const char *source;
	Datum		local;
	bool		local_null;
	Datum		incoming;
	bool		incoming_null;
	Datum		base;
	bool		base_null;
	bool		base_known;
	SrSide		local_side;
	SrSide		incoming_side;
} SrMergeInput;

/* Returns false when the column must go to review; *why says why. */
extern bool sr_merge_value(SrStrategy strategy, const SrMergeInput *in,
						   Datum *result, bool *result_null, char **why);
extern Jsonb *sr_call_custom(const SrColumn *col, const char *label,
							 const SrMergeInput *in,
							 Jsonb *local, Jsonb *incoming, Jsonb *base);

/* ------------------------------------------------------------------------
 * History (events.c)
 * ------------------------------------------------------------------------
 */
typedef struct SrEvent
{
	const char *kind;
	const char *column_name;
	Jsonb	   *old_value;
	Jsonb	   *incoming_value;
	Jsonb	   *base_value;
	Jsonb	   *new_value;
	const char *rule;
	const char *decision;
	const char *strategy;		/* a conflict's: what decided it (NULL: none) */
	int64		review_id;		/* 0: none */
} SrEvent;

/* Facts shared by every event one incoming image causes. */
typedef struct SrEventBatch
{
	Oid			relid;
	Jsonb	   *key;
	const char *source;
	SrVclock   *version;
	bool		has_changed_at;
	TimestampTz changed_at;
	TimestampTz received_at;
	const char *event_id;
	bool		alert;			/* its table has tracked.alert_per_hour set: */
	int			alert_per_hour; /* conflicts in an hour above this notify */
	const char *relname;		/* the table, quoted, schema-qualified */
	List	   *events;			/* SrEvent * */
} SrEventBatch;

extern SrEvent *sr_event_add(SrEventBatch *batch, const char *kind,
						 const char *column_name, Jsonb *old_value,
						 Jsonb *incoming_value, Jsonb *base_value,
						 Jsonb *new_value, const char *rule,
						 const char *decision, int64 review_id);
extern void sr_events_flush(SrEventBatch *batch);
extern void sr_notify_at_commit(const char *channel, const char *payload);

/* ------------------------------------------------------------------------
 * Review queue (review.c)
 * ------------------------------------------------------------------------
 */
typedef struct SrReviewRequest
{
	Oid			relid;
	Jsonb	   *key;
	const char *column_name;	/* column, group name, or NULL: whole row */
	List	   *columns;		/* char *: the held columns */
	const char *kind;			/* conflict, unauthorized, delete, ... */
	const char *source;
	Jsonb	   *local_value;
	Jsonb	   *incoming_value;
	Jsonb	   *base_value;
	const char *strategy;
	const char *reason;
} SrReviewRequest;

extern int64 sr_review_open(const SrReviewRequest *req, bool *updated);

/* ------------------------------------------------------------------------
 * outbox.c
 * ------------------------------------------------------------------------
 */
extern int	sr_max_attempts;
extern int	sr_retry_base_ms;
extern int	sr_retry_max_ms;

extern bool sr_system_is_peer(const char *system);

/* The outbox entries waiting for one row, read once, when first needed. */
typedef struct SrOutboxWaiting
{
	const SrTable *tab;
	Jsonb	   *key;
	bool		read;			/* read yet */
	bool		direct;			/* read by an index scan (else: not known) */
	int			n;
	int			room;
	char	  **targets;		/* per entry: its target, */
	ItemPointerData *tids;		/* where it was read (invalid: written since), */
	TransactionId *xmins;		/* and its xmin there */
} SrOutboxWaiting;

extern void sr_outbox_waiting_init(SrOutboxWaiting *w, const SrTable *tab, Jsonb *key);
extern bool sr_outbox_waits(SrOutboxWaiting *w, const char *target);
extern int64 sr_outbox_queue(const SrTable *tab, Jsonb *key, const char *target,
							 bool is_delete, Jsonb *payload, SrVclock *version,
							 const char *cause);
extern void sr_outbox_fan_out(SrTable *tab, Jsonb *key, SrRowState *st,
							  const char *except, const Datum *values,
							  const bool *nulls, const bool *cols, bool revived,
							  SrVclock *version, const char *cause,
							  SrEventBatch *batch, SrOutboxWaiting *waiting);
extern void sr_outbox_fan_out_delete(SrTable *tab, Jsonb *key, SrRowState *st,
									 const char *except, SrVclock *version,
									 const char *cause, SrEventBatch *batch);
extern int64 sr_outbox_find_echo(const SrTable *tab, Jsonb *key, const char *target,
								 const char *event_id, Jsonb *image);
extern void sr_outbox_confirm_echo(int64 id);
extern void sr_outbox_withdraw(const SrTable *tab, Jsonb *key, const char *target,
							   bool deletes_only, SrEventBatch *batch);
extern void sr_outbox_forget(const SrTable *tab, Jsonb *key, const char *target,
							 const bool *cols, SrOutboxWaiting *waiting);

/* ------------------------------------------------------------------------
 * direct.c: writes to the extension's own tables without SQL
 * ------------------------------------------------------------------------
 */
typedef struct SrDirectColumn
{
	const char *name;
	Oid			type;			/* its type, or InvalidOid and ... */
	const char *sr_type;		/* ... the name of a type in SR_SCHEMA */
} SrDirectColumn;

/*
 * One of the extension's tables, as direct.c writes it: a static of its
 * user, or (owner_cxt set) part of a cache entry that is dropped whenever
 * the table changes, as a tracked table's shadow is part of its SrTable.
 */
typedef struct SrDirectTable
{
	const char *relname;		/* in SR_SCHEMA; with owner_cxt, relid instead */
	int			ncols;
	const SrDirectColumn *cols; /* the columns its writers name */
	const char *arbiter;		/* the unique index an upsert merges on, or NULL */
	bool		arbiter_pkey;	/* ... or its primary key */
	MemoryContext owner_cxt;	/* see above; NULL: a static */
	const Oid  *arbiter_types;	/* the arbiter's key types, as reads pass them, */
	int			narbiter_types; /* ... all of them; NULL: not checked */
	/* learnt on first use, dropped by a relcache callback */
	bool		registered;
	bool		valid;
	bool		usable;			/* false: write through SQL */
	Oid			relid;
	Oid			arbiter_oid;
	int			natts;
	AttrNumber *attnums;		/* per cols[i] */
	int		   *colof;			/* per attribute, its index in cols, or -1 */
	Expr	  **defaults;		/* per attribute, planned, or NULL */
	bool	   *checkatt;		/* per attribute: a conflict check reads it */
	int			narbiter;		/* the arbiter's key columns */
	RegProcedure *arbiter_eq;	/* per key column: its equality function */
	int			nindexes;		/* its indexes, learnt by the first write */
	Oid		   *index_oids;		/* ... that opens them (NULL: not yet), */
	IndexInfo **index_infos;	/* ... as BuildIndexInfo() describes them, */
	bool	   *index_private;	/* ... and whether each write compiles their own */
	bool	   *default_private;	/* per attribute: each write compiles its own, */
	bool	   *default_unplanned;	/* ... planning it first (learn_default()) */
	/* the others compiled once, for one write at a time (see claim_states()) */
	MemoryContext states_cxt;	/* a child of cxt, or NULL */
	uint64		states_changes; /* function changes counted when made */
	ExprState **default_states; /* per attribute, by the first write needing it */
	struct SrIndexStates *index_states; /* per index, with index_infos */
	LocalTransactionId claim_lxid;	/* the write using them: its transaction */
	SubTransactionId claim_subid;	/* ... and subtransaction, or Invalid */
	MemoryContext cxt;
	struct SrDirectTable *next;
} SrDirectTable;

typedef struct SrUserSwitch
{
	Oid			saved_userid;
	int			saved_sec_context;
} SrUserSwitch;

/* One write (of any number of rows) under way. */
typedef struct SrDirect
{
	SrDirectTable *tab;
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	bool		indices_open;	/* rri's indexes: opened by the first write needing them */
	TupleTableSlot *slot;		/* the row written last */
	TupleTableSlot *existing;	/* the row sr_direct_insert_or_lock() found */
	/* the table's layout when the write began */
	int			natts;
	AttrNumber *attnums;
	int		   *colof;
	bool	   *checkatt;
	Oid			arbiter_oid;
	Expr	  **default_exprs;	/* per attribute, planned, or NULL */
	ExprState **defaults;		/* ... ready to run, once one was needed */
	bool	   *default_private;
	bool	   *default_unplanned;
	bool		own_states;		/* this write claimed the layout's states: */
	MemoryContext states_cxt;	/* ... their memory, */
	ExprState **default_states; /* ... and its defaults' */
	Datum	   *values;
	bool	   *isnull;
	char	   *given;
	SrUserSwitch sw;
} SrDirect;

extern bool sr_direct_begin(SrDirect *d, SrDirectTable *t);
extern void sr_direct_set(SrDirect *d, int col, Datum value, bool isnull);
extern void sr_direct_clear(SrDirect *d);
extern void sr_direct_set_default(SrDirect *d, int col);
extern Datum sr_direct_get(SrDirect *d, TupleTableSlot *slot, int col, bool *isnull);
extern void sr_direct_insert(SrDirect *d);
extern TupleTableSlot *sr_direct_insert_or_find(SrDirect *d, bool likely_absent);
extern bool sr_direct_update(SrDirect *d);
extern bool sr_direct_update_tid(SrDirect *d, ItemPointer tid, TransactionId xmin);
extern bool sr_direct_fetch_tid(SrDirect *d, ItemPointer tid, TransactionId xmin);
extern void sr_direct_end(SrDirect *d);

/* A read of the rows whose arbiter key starts with given values. */
typedef struct SrDirectRead
{
	Relation	rel;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	AttrNumber *attnums;		/* per column of the table's cols: where it is */
} SrDirectRead;

extern bool sr_index_eq_procs(Relation index, RegProcedure *eq);
extern bool sr_direct_lock_row(Relation rel, Relation index, const RegProcedure *eq,
							   int nkeys, const Datum *keyvals, LockTupleMode mode,
							   TupleTableSlot *slot);
extern bool sr_direct_update_row(Relation rel, Relation index, const RegProcedure *eq,
								 int nkeys, const Datum *keyvals, const bool *set,
								 const Datum *values, const bool *isnull,
								 TupleTableSlot *slot);
extern bool sr_direct_read_begin(SrDirectRead *r, SrDirectTable *t, int nkeys,
								 const Datum *keyvals);
extern TupleTableSlot *sr_direct_read_next(SrDirectRead *r);
extern void sr_direct_read_end(SrDirectRead *r);

/* ------------------------------------------------------------------------
 * module.c: GUCs and privilege switching
 * ------------------------------------------------------------------------
 */
extern char *sr_source_guc;
extern bool sr_enforce_ownership;

extern void sr_become_owner(SrUserSwitch *sw);
extern void sr_restore_user(const SrUserSwitch *sw);
extern SPIPlanPtr sr_prepare_kept(const char *sql, int nargs, Oid *argtypes,
								  bool as_owner);
extern SPIPlanPtr sr_prepare_kept_generic(const char *sql, int nargs, Oid *argtypes,
										  bool as_owner);
extern bool sr_try_subxact(void (*fn) (void *), void *arg,
						   bool (*gives_way) (const ErrorData *), ErrorData **caught);

/*
 * Items applied in runs, each run in one subtransaction, an item that fails
 * set aside (sr_runs()).  The caller fills the first four fields and sets
 * len to SR_RUN_MIN before the first call.
 */
typedef struct SrRuns
{
	void	   *arg;
	void		(*apply) (void *arg, int i);	/* item i, in its run */
	bool		(*gives_way) (const ErrorData *edata);	/* the item's own error */
	void		(*set_aside) (void *arg, int i, ErrorData *edata);	/* in no run */
	int			len;			/* the next run's length */
	int			from;			/* the run being applied: from .. to - 1 */
	int			to;
	int			current;		/* its item being applied */
} SrRuns;

#define SR_RUN_MIN 8
#define SR_RUN_MAX 1024

extern void sr_runs(SrRuns *runs, int from, int to);
extern int	sr_spi_execute(SPIPlanPtr plan, Datum *values, const char *nulls,
						   bool as_owner, bool read_only, long count,
						   int expected);

/* trigger.c: TRUNCATE of a tracked table or partition, as a local DELETE of every row */
extern void sr_truncate_rows(Relation rel);

/* ------------------------------------------------------------------------
 * apply.c: row writes shared by apply(), resolve() and the trigger
 * ------------------------------------------------------------------------
 */
/*
 * Set while sync_resolve writes a row of a tracked table, so that its own
 * trigger does not take the write for a local one (keyvals NULL: a new row,
 * whatever its key).  Writes that other triggers make meanwhile, to other
 * rows, are still recorded.
 */
typedef struct SrApplying
{
	Oid			relid;
	const SrTable *tab;
	const Datum *keyvals;
	CommandId	cid;			/* the command its write runs as */
} SrApplying;

extern SrApplying sr_applying;

extern const SrSystem *sr_check_source(const SrTable *tab, const char *source);
extern bool sr_row_lock(SrTable *tab, const Datum *keyvals, bool for_delete,
						Datum *values, bool *nulls);
extern bool sr_row_read(SrTable *tab, const Datum *keyvals, Datum *values, bool *nulls);
extern bool sr_own_trigger(const Trigger *trig);
extern void sr_copy_row(const SrTable *tab, HeapTuple tup, TupleDesc td, Datum *values,
						bool *nulls);
extern bool sr_row_update(SrTable *tab, const Datum *keyvals, Bitmapset *cols,
						  const Datum *values, const bool *nulls,
						  Datum *out_values, bool *out_nulls);
extern bool sr_row_insert(SrTable *tab, const Datum *keyvals, Bitmapset *cols,
						  const Datum *values, const bool *nulls,
						  Datum *out_values, bool *out_nulls);
extern bool sr_delete_row_then_back(SrTable *tab, int sidx, const Datum *keyvals, SrRowState *st);
extern void sr_row_delete(SrTable *tab, const Datum *keyvals);
extern Jsonb *sr_row_object(const SrTable *tab, const Datum *values,
							const bool *nulls, const bool *which);

/* One incoming change: from apply(), apply_batch(), or a source's write */
typedef struct SrApplyCall
{
	SrTable    *tab;
	const SrSystem *sys;
	const char *source;
	int			sidx;			/* the source's index in tab->systems */
	Jsonb	   *payload;		/* the image, or the key for a delete */
	bool		has_changed_at;
	TimestampTz changed_at;
	SrVclock   *version;
	const char *event_id;
	TimestampTz received_at;

	/*
	 * The source delivers its changes in order (a replication stream): an
	 * earlier changed_at than the last one seen is not staleness, it is a
	 * change relayed from a third node, stamped with that node's time.
	 */
	bool		in_order;

	/* Only reading (reconcile): a record id is looked up without a lock. */
	bool		peek;

	/*
	 * Only the record's key (reconcile, of a record that cannot be taken as
	 * a whole): the fields of key and match_on columns and the record id are
	 * read, the others skipped unread.
	 */
	bool		keys_only;

	/*
	 * In a BEFORE trigger, for the statement's own row: the row as it is
	 * (locked by the statement), and instead of writing it, the values the
	 * statement is to write (out_take: the columns taken from the image;
	 * the others get their defaults) and whether it is to write at all.
	 */
	bool		rewrite;
	const Datum *old_values;
	const bool *old_nulls;
	Datum	   *out_values;
	bool	   *out_nulls;
	bool	   *out_take;
	bool		out_write;
} SrApplyCall;

/* The incoming image: present columns and their values, by column index. */
typedef struct SrImage
{
	bool	   *present;
	Datum	   *values;
	bool	   *nulls;
	Datum	   *keyvals;
	Jsonb	   *key;
	int			npresent;		/* non-key columns present */

	/* how the row was found (apply() payloads) */
	char	   *external_id;	/* the source's record id, or NULL */
	bool		identity_known; /* ... already linked to the row */
	char	   *linked;			/* found by match_on: why, for the history */
	bool		unkeyed;		/* peek: a new row, its key not made (no key) */
	bool		key_made;		/* a new row keyed by its key columns' defaults */

	/* columns set aside before the decision: SrScreened * */
	List	   *screened;
} SrImage;

/* A value not taken as it came: unmapped, or invalid */
typedef struct SrScreened
{
	int			col;
	const char *kind;			/* "unmapped" or "invalid" */
	Jsonb	   *value;			/* as the source sent it */
	char	   *rule;
	bool		review;			/* to review; else refused */
} SrScreened;

typedef struct SrApplyResult
{
	const char *outcome;
	Jsonb	   *key;
	List	   *applied;
	List	   *kept;
	List	   *queued;
	List	   *rejected;
} SrApplyResult;

/* review ids live in a growable array beside the result */
typedef struct SrReviewIds
{
	int			n;
	int			cap;
	int64	   *ids;
} SrReviewIds;

extern void sr_apply_image(SrApplyCall *call, SrImage *img, SrApplyResult *res,
						   SrReviewIds *reviews);
extern bool sr_try_apply_image(SrApplyCall *call, SrImage *img, SrApplyResult *res,
							   SrReviewIds *reviews, char **why);
extern void sr_apply_refused(SrApplyCall *call, SrImage *img, const char *why,
							 SrApplyResult *res, SrReviewIds *reviews);
extern void sr_apply_delete_image(SrApplyCall *call, SrApplyResult *res,
								  SrReviewIds *reviews);
extern void sr_init_image(const SrTable *tab, SrImage *img);
extern void sr_parse_image(const SrApplyCall *call, SrImage *img);
extern void sr_merge_column(const SrApplyCall *call, Jsonb *key, int c, Datum I,
							bool Inull, Datum L, bool Lnull, const SrShadowRow *srow,
							const SrColumnInput *in, SrColumnDecision *dec,
							Datum *M, bool *Mnull);
extern void sr_screen_invalid(SrApplyCall *call, SrImage *img, const Datum *L,
							  const bool *Lnull, bool found, const SrShadowRow *srow);
extern char *sr_time_text(TimestampTz t);
extern void sr_column_input(const SrApplyCall *call, int c, Datum I, bool Inull,
							Datum L, bool Lnull, const SrShadowRow *srow,
							const SrShadowRow *lrow, const SrSide *incoming,
							SrColumnInput *in);
/* replication.c: an apply worker's writes, decided at commit */
extern void sr_hold_image(const SrTable *tab, const char *source, const SrImage *img);
extern void sr_hold_retime(const SrTable *tab, const char *source, Jsonb *key,
						   TimestampTz written_at);
extern void sr_hold_drop(const SrTable *tab, const char *source, Jsonb *key);
extern bool sr_hold_until_commit(void);
extern void sr_note_own_write(const SrTable *tab, SrShadowRow *lrow);
extern bool sr_change_seen(const SrTable *tab, SrShadowRow *lrow, const char *source,
						   TimestampTz t);
extern void sr_note_seen(SrShadowRow *lrow, TimestampTz t);
extern SrImage *sr_copy_image(const SrTable *tab, const SrImage *img);
extern void sr_merge_image(const SrTable *tab, SrImage *into, const SrImage *img);
extern void sr_init_call(SrApplyCall *call, SrTable *tab, const char *source);


extern void sr_dismiss_reviews(const SrTable *tab, Jsonb *key, const char *by, const char *why);
extern void sr_release_reviews(const SrTable *tab, Jsonb *key, SrShadowRow *lrow, const char *by,
							   const char *why);
extern void sr_lock_key(const SrTable *tab, Jsonb *key);
extern bool sr_lock_row_or_key(SrTable *tab, const Datum *keyvals, Jsonb *key,
							   bool for_delete, Datum *L, bool *Lnull);
/* A column group decided as one (sr_decide_group()) */
typedef struct SrGroupDecision
{
	SrColumnDecision dec;		/* the group's action and rule */
	bool		held;			/* held by an open review */
	bool	   *members;		/* [ncols]: the group's columns */
	Jsonb	   *lobj;			/* the members: local, incoming, base */
	Jsonb	   *iobj;
	Jsonb	   *bobj;			/* NULL: no base */
} SrGroupDecision;

extern bool sr_decide_group(const SrApplyCall *call, const SrImage *img, int g,
							const Datum *L, const bool *Lnull, const SrShadowRow *srow,
							const SrShadowRow *lrow, const SrColumnDecision *dec,
							const SrSide *incoming, Datum *I, bool *Inull,
							Datum *M, bool *Mnull, SrGroupDecision *gd);
extern int64 sr_review_row_gone(const SrApplyCall *call, const Datum *keyvals, Jsonb *key,
								const char *reason, SrEventBatch *batch);

/* the fourth field of sync_resolve's advisory locks: 'SR' */
#define SR_ADVISORY_LOCK_SPACE 0x5352
/* ... of the lock of a table's alert (events.c): 'SA' */
#define SR_ALERT_LOCK_SPACE 0x5341

#endif							/* SYNC_RESOLVE_H */
