-- Can a VACUUM now leave index-only scans nothing to fetch from the heap?
-- VACUUM marks a page all-visible only when every row on it is visible to
-- every session and its commit hint bit can be set. So: no other session of
-- this database holds back the cleanup horizon (an open transaction or
-- snapshot, autovacuum's ANALYZE included), and the WAL is flushed up to
-- %(lsn)s (under synchronous_commit = off the WAL writer flushes the last
-- commits a moment later; hint bits wait for that).
SELECT NOT EXISTS (SELECT 1
                   FROM pg_stat_activity
                   WHERE datname = current_database()
                     AND pid <> pg_backend_pid()
                     AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL))
       AND pg_current_wal_flush_lsn() >= %(lsn)s::pg_lsn AS ready;
