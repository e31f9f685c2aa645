-- sync_resolve: column-level conflict resolution for tables written by several systems.
-- The one source of the install script; the Makefile builds sync_resolve--<version>.sql from it.
\echo Use "CREATE EXTENSION sync_resolve" to load this file. \quit

-- ==== vclock: version vectors (DESIGN 10) ====
-- ==== end vclock ====
