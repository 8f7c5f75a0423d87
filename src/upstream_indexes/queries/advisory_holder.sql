-- Who holds the migrator lock: the session-level advisory lock every
-- `invoke migrate` / `invoke rollback` takes (key split into classid/objid
-- as pg_locks shows a bigint key).
SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr,
       extract(epoch FROM now() - a.backend_start)::int AS connected_seconds
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.classid = (%(key)s::bigint >> 32)::oid
  AND l.objid = (%(key)s::bigint & 4294967295)::oid
  AND l.objsubid = 1;
