-- Every CREATE INDEX running in this database right now, for the held-snapshot
-- scenario: which table, which index (a new oid for every build attempt), its
-- phase, and whether it waits on a lock. A build is counted once its index exists:
-- before that (its first moments, "initializing") index_relid is 0, which is no
-- second build.
SELECT p.relid::regclass::text AS table_name,
       p.index_relid::bigint AS index_oid,
       p.phase,
       a.wait_event_type = 'Lock' AS waiting
FROM pg_stat_progress_create_index AS p
JOIN pg_stat_activity AS a ON a.pid = p.pid
WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND p.index_relid <> 0;
