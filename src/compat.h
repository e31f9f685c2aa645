/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every PostgreSQL version difference sync_resolve cares about, in one
 *		place.  The extension is built and tested against PostgreSQL 15; the
 *		guards below keep it compiling where a later release renamed things.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_COMPAT_H
#define SR_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "sync_resolve needs PostgreSQL 15 or later"
#endif

#if PG_VERSION_NUM >= 160000
#include "utils/varlena.h"
#define sr_object_ownercheck(classid, objid, roleid) \
	object_ownercheck((classid), (objid), (roleid))
#else
#define sr_object_ownercheck(classid, objid, roleid) \
	pg_class_ownercheck((objid), (roleid))
#endif

#endif							/* SR_COMPAT_H */
