/*-------------------------------------------------------------------------
 *
 * trigger.c
 *		The trigger track() installs on a tracked table.
 *
 * sync_resolve_after (AFTER INSERT OR UPDATE OR DELETE, FOR EACH ROW,
 * enabled ALWAYS) records local writes: for each column the statement
 * really changed (by the type's equality), when and by whom, and it ticks
 * the row's version for local.  A delete leaves a local tombstone.  Writes
 * made by sync_resolve itself (apply, resolve) are skipped: they record
 * their own metadata.
 *
 * A partition of a tracked partitioned table records under its ancestor,
 * its tuples converted to the ancestor's layout.
 *
 * Locking: the tracked row is already locked by the statement; the shadow
 * row is written after, in the same order apply() uses.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/tupconvert.h"
#include "commands/trigger.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "sync_resolve.h"

/* Key values of a heap tuple, in primary-key order. */
static void
tuple_keys(const SrTable *tab, HeapTuple tup, TupleDesc td, Datum *keyvals)
{
	int			i;

	for (i = 0; i < tab->nkeys; i++)
	{
		bool		isnull;

		keyvals[i] = heap_getattr(tup, tab->cols[tab->keys[i]].attnum, td, &isnull);
		if (isnull)
			elog(ERROR, "sync_resolve: null primary key in %s", tab->display_name);
	}
}

static bool
keys_equal(const SrTable *tab, HeapTuple a, HeapTuple b, TupleDesc td)
{
	int			i;

	for (i = 0; i < tab->nkeys; i++)
	{
		const SrColumn *col = &tab->cols[tab->keys[i]];
		bool		an,
					bn;
		Datum		av = heap_getattr(a, col->attnum, td, &an);
		Datum		bv = heap_getattr(b, col->attnum, td, &bn);

		if (!sr_datum_equal(col, av, an, bv, bn))
			return false;
	}
	return true;
}

/* The key of a row and its local metadata. */
static Datum *
read_local(SrTable *tab, HeapTuple tup, TupleDesc td, SrShadowRow *lrow)
{
	Datum	   *keyvals = palloc(sizeof(Datum) * (tab->nkeys + 1));

	tuple_keys(tab, tup, td, keyvals);
	sr_shadow_init_row(tab, lrow);
	sr_shadow_read(tab, keyvals, NULL, NULL, lrow);
	return keyvals;
}

/* Is this the row sync_resolve itself is writing? */
static bool
own_write(const SrTable *tab, HeapTuple tup, TupleDesc td)
{
	int			i;

	if (sr_applying.relid != tab->relid || sr_applying.keyvals == NULL)
		return false;
	for (i = 0; i < tab->nkeys; i++)
	{
		const SrColumn *col = &tab->cols[tab->keys[i]];
		bool		isnull;
		Datum		v = heap_getattr(tup, col->attnum, td, &isnull);

		if (!sr_datum_equal(col, v, isnull, sr_applying.keyvals[i], false))
			return false;
	}
	return true;
}

/* Record a local write of some columns (all when old is NULL). */
static void
record_write(SrTable *tab, HeapTuple tup, HeapTuple old, TupleDesc td,
			 TimestampTz now)
{
	SrShadowRow lrow;
	Datum	   *keyvals = read_local(tab, tup, td, &lrow);
	bool		any = false;
	int			c;

	for (c = 0; c < tab->ncols; c++)
	{
		const SrColumn *col = &tab->cols[c];

		if (col->is_key)
			continue;
		if (old != NULL)
		{
			bool		nn,
						on;
			Datum		nv = heap_getattr(tup, col->attnum, td, &nn);
			Datum		ov = heap_getattr(old, col->attnum, td, &on);

			if (sr_datum_equal(col, nv, nn, ov, on))
				continue;
		}
		lrow.col_writer[c] = SR_LOCAL;
		lrow.col_changed_at[c] = now;
		any = true;
	}
	if (!any && !(old == NULL && (!lrow.found || lrow.deleted)))
		return;
	lrow.deleted = false;
	lrow.deleted_by = NULL;
	lrow.version = sr_vclock_tick(lrow.version, SR_LOCAL);
	lrow.received_at = now;
	sr_shadow_local_write(tab, keyvals, &lrow);
}

/* Leave a local tombstone for a deleted row. */
static void
record_delete(SrTable *tab, HeapTuple old, TupleDesc td, TimestampTz now)
{
	SrShadowRow lrow;
	Datum	   *keyvals = read_local(tab, old, td, &lrow);
	bool		any_held = false;
	int			c;
	lrow.deleted = true;
	lrow.deleted_at = now;
	lrow.deleted_by = SR_LOCAL;
	for (c = 0; c < tab->ncols; c++)
	{
		if (lrow.held[c])
			any_held = true;
		lrow.held[c] = false;
	}
	/* the row is gone: its open reviews have nothing left to decide */
	if (any_held)
		sr_dismiss_reviews(tab, sr_build_key(tab, keyvals, NULL), "row deleted locally");
	lrow.version = sr_vclock_tick(lrow.version, SR_LOCAL);
	lrow.received_at = now;
	sr_shadow_local_write(tab, keyvals, &lrow);
}

PG_FUNCTION_INFO_V1(local_write_trigger);
Datum
local_write_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	td;
	SrTable    *tab;
	Oid			relid;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	HeapTuple	rettuple;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("local_write_trigger: not called by trigger manager")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("local_write_trigger: must be fired AFTER ... FOR EACH ROW")));

	rel = trigdata->tg_relation;
	td = RelationGetDescr(rel);
	oldtup = trigdata->tg_trigtuple;
	newtup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : NULL;
	rettuple = newtup ? newtup : oldtup;

	/* a partition's writes are its tracked ancestor's */
	relid = sr_tracked_relid(rel);
	if (!OidIsValid(relid))
		return PointerGetDatum(rettuple);

	sr_cache_enter();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "sync_resolve: SPI_connect failed");
	tab = sr_table_get(relid, true, relid == RelationGetRelid(rel) ? NoLock : AccessShareLock);
	if (tab != NULL)
	{
		if (relid != RelationGetRelid(rel))
		{
			/* the partition's columns may be laid out otherwise */
			Relation	parent = relation_open(relid, NoLock);
			TupleConversionMap *map = convert_tuples_by_name(td, RelationGetDescr(parent));

			td = CreateTupleDescCopy(RelationGetDescr(parent));
			relation_close(parent, NoLock);
			if (map != NULL)
			{
				oldtup = execute_attr_map_tuple(oldtup, map);
				if (newtup)
					newtup = execute_attr_map_tuple(newtup, map);
			}
		}

		/* sync_resolve's own writes record their metadata themselves */
		if (!own_write(tab, newtup ? newtup : oldtup, td))
		{
			TimestampTz now = GetCurrentTimestamp();

			if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
				record_write(tab, oldtup, NULL, td, now);
			else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
			{
				if (keys_equal(tab, oldtup, newtup, td))
					record_write(tab, newtup, oldtup, td, now);
				else
				{
					/* a new key is a new row to every other system */
					record_delete(tab, oldtup, td, now);
					record_write(tab, newtup, NULL, td, now);
				}
			}
			else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
				record_delete(tab, oldtup, td, now);
		}
	}
	SPI_finish();
	sr_cache_leave();
	return PointerGetDatum(rettuple);
}
