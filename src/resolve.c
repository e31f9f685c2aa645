/*-------------------------------------------------------------------------
 *
 * resolve.c
 *		The per-column decision: given what the caller found out about one
 *		column (did the source change it since the base, did local, are the
 *		two values equal, may the source write it, is it held) and the
 *		column's policy, what happens to it, and in which words to explain
 *		it.
 *
 * Nothing here touches SPI, the catalogs or a value's bytes: the caller
 * compares values with the type's own equality and hands over booleans,
 * times and priorities.  Strategies that compute a new value (max, min,
 * sum_delta, union, merge_json, custom) are only recognised here
 * (needs_value); strategies.c computes them.
 *
 * The order follows DESIGN section 5, step 4:
 *	not sent, or not changed by the source		-> nothing
 *	the row already holds the incoming value	-> convergent: nothing to write
 *	held by an open review						-> the review item is updated
 *	the source may not write it					-> on_unauthorized
 *	changed by the source only, or the source's
 *	version covers every local change			-> taken
 *	changed by both, differently				-> the strategy decides
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "sync_resolve.h"

static const char *
when(TimestampTz t)
{
	if (TIMESTAMP_NOT_FINITE(t))
		return "an unknown time";
	/* timestamptz_to_str() returns a static buffer */
	return pstrdup(timestamptz_to_str(t));
}

/* "crm and billing": who may write the column, for the rule text */
static const char *
writers_text(const SrColumn *col)
{
	StringInfoData buf;
	ListCell   *lc;

	if (col->writers == NIL)
		return col->owner ? col->owner : "its owner";
	initStringInfo(&buf);
	foreach(lc, col->writers)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&buf, lnext(col->writers, lc) ? ", " : " and ");
		appendStringInfoString(&buf, (const char *) lfirst(lc));
	}
	return buf.data;
}

/*
 * A source that sends the value the row already holds changes nothing,
 * whoever changed what since the base: convergent, and never refused.
 */
SrDelta
sr_classify(const SrColumnInput *in)
{
	if (!in->present || !in->delta_remote)
		return SR_DELTA_NONE;
	if (in->incoming_equals_local)
		return SR_DELTA_CONVERGENT;
	if (in->dominated || !in->delta_local)
		return SR_DELTA_ONE_SIDED;
	return SR_DELTA_CONFLICT;
}

/*
 * Who wins between the two sides by system priority, then by system name:
 * true when the incoming side does.  A tie between a system and itself goes
 * to the incoming value, its newer statement.
 */
static bool
incoming_wins_by_priority(const SrColumnInput *in, char **why)
{
	const SrSide *l = &in->local;
	const SrSide *i = &in->incoming;

	if (i->priority != l->priority)
	{
		bool		wins = i->priority < l->priority;

		*why = psprintf("priority %s %d over %s %d",
						wins ? i->system : l->system, wins ? i->priority : l->priority,
						wins ? l->system : i->system, wins ? l->priority : i->priority);
		return wins;
	}
	if (strcmp(i->system, l->system) == 0)
	{
		*why = psprintf("both written by %s: the newer statement", i->system);
		return true;
	}
	{
		bool		wins = strcmp(i->system, l->system) < 0;

		*why = psprintf("equal priority %d, system name %s before %s",
						i->priority, wins ? i->system : l->system,
						wins ? l->system : i->system);
		return wins;
	}
}

/*
 * The winner-take-all strategies, for one column or a whole group: label
 * names what is decided (a column or "group address").  Fills action and
 * rule; value-computing strategies only set needs_value.
 */
void
sr_decide_winner(SrStrategy strategy, const char *owner, const char *label,
				 const SrColumnInput *in, SrColumnDecision *out)
{
	out->kind = "conflict";
	out->needs_value = false;

	switch (strategy)
	{
		case SR_STRAT_OWNER:
			if (owner != NULL && strcmp(owner, in->incoming.system) == 0)
				out->action = SR_ACT_TAKE;
			else
				out->action = SR_ACT_KEEP;
			out->rule = psprintf("%s is owned by %s", label, owner ? owner : "nobody");
			break;
		case SR_STRAT_KEEP_LOCAL:
			out->action = SR_ACT_KEEP;
			out->rule = psprintf("%s always keeps the local value", label);
			break;
		case SR_STRAT_TAKE_INCOMING:
			out->action = SR_ACT_TAKE;
			out->rule = psprintf("%s always takes the incoming value", label);
			break;
		case SR_STRAT_LATEST:
		case SR_STRAT_EARLIEST:
			{
				bool		latest = (strategy == SR_STRAT_LATEST);
				TimestampTz ti = in->incoming.changed_at;
				TimestampTz tl = in->local.changed_at;
				int64		skew = (int64) sr_clock_skew_ms * 1000;
				int64		diff;
				char	   *tie;

				/* unknown local times were replaced by the tracking time */
				if (ti > tl)
					diff = (TIMESTAMP_NOT_FINITE(tl) || TIMESTAMP_NOT_FINITE(ti)) ? PG_INT64_MAX : ti - tl;
				else
					diff = (TIMESTAMP_NOT_FINITE(tl) || TIMESTAMP_NOT_FINITE(ti)) ? PG_INT64_MIN : ti - tl;

				if (diff > skew || diff < -skew)
				{
					bool		incoming_later = diff > 0;

					out->action = (incoming_later == latest) ? SR_ACT_TAKE : SR_ACT_KEEP;
					out->rule = psprintf("%s change wins: %s changed %s at %s, %s %s %s",
										 latest ? "latest" : "earliest",
										 in->incoming.system, label, when(ti),
										 in->local.system,
										 in->local.since_tracking ? "has held it since tracking began at" : "at",
										 when(tl));
				}
				else
				{
					out->action = incoming_wins_by_priority(in, &tie) ? SR_ACT_TAKE : SR_ACT_KEEP;
					out->rule = psprintf("%s change wins, but %s changed %s at %s and %s at %s, within the clock skew of %s: a tie, broken by %s",
										 latest ? "latest" : "earliest",
										 in->incoming.system, label, when(ti),
										 in->local.system, when(tl),
										 GetConfigOptionByName("sync_resolve.clock_skew", NULL, false),
										 tie);
				}
			}
			break;
		case SR_STRAT_PRIORITY:
			{
				char	   *why;

				out->action = incoming_wins_by_priority(in, &why) ? SR_ACT_TAKE : SR_ACT_KEEP;
				out->rule = psprintf("%s goes by priority: %s", label, why);
			}
			break;
		case SR_STRAT_REVIEW:
			out->action = SR_ACT_REVIEW;
			out->rule = psprintf("%s is decided by a person", label);
			break;
		case SR_STRAT_MAX:
		case SR_STRAT_MIN:
		case SR_STRAT_SUM_DELTA:
		case SR_STRAT_UNION:
		case SR_STRAT_MERGE_JSON:
		case SR_STRAT_CUSTOM:
			out->action = SR_ACT_MERGE;
			out->needs_value = true;
			out->rule = NULL;	/* strategies.c words it */
			break;
	}
}

void
sr_decide(const SrColumn *col, const SrColumnInput *in, SrColumnDecision *out)
{
	memset(out, 0, sizeof(*out));
	out->delta = sr_classify(in);

	if (out->delta == SR_DELTA_NONE || out->delta == SR_DELTA_CONVERGENT)
	{
		out->action = SR_ACT_NOTHING;
		out->kind = (out->delta == SR_DELTA_CONVERGENT) ? "convergent" : NULL;
		return;
	}

	if (in->held)
	{
		out->action = SR_ACT_REVIEW;
		out->kind = "review_updated";
		out->rule = psprintf("%s is held by an open review", col->name);
		return;
	}

	if (!in->authorized)
	{
		const char *whom = writers_text(col);
		out->kind = "unauthorized";
		switch (col->on_unauthorized)
		{
			case SR_UNAUTH_REJECT:
				out->action = SR_ACT_REJECT;
				out->rule = psprintf("%s may not write %s, only %s may", in->incoming.system,
									 col->name, whom);
				return;
			case SR_UNAUTH_REVIEW:
				out->action = SR_ACT_REVIEW;
				out->rule = psprintf("%s may not write %s, only %s may; a person decides",
									 in->incoming.system, col->name, whom);
				return;
			case SR_UNAUTH_ACCEPT:
				/* logged on its own, then decided like any other change */
				out->kind = NULL;
				out->accepted_unauthorized =
					psprintf("%s may not write %s, only %s may; accepted anyway",
							 in->incoming.system, col->name, whom);
				break;
		}
	}

	switch (out->delta)
	{
		case SR_DELTA_ONE_SIDED:
			out->action = SR_ACT_TAKE;
			out->kind = "applied";
			return;
		case SR_DELTA_CONFLICT:
			sr_decide_winner(col->strategy, col->owner, col->name, in, out);
			return;
		case SR_DELTA_NONE:
		case SR_DELTA_CONVERGENT:
			break;				/* handled above */
	}
}
