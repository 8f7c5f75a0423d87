-- What a CREATE/DROP INDEX backend is doing right now (PostgreSQL 12+):
-- its phase and counters from pg_stat_progress_create_index (an ALTER TABLE
-- ... VALIDATE CONSTRAINT, of which PostgreSQL reports no progress: the phase
-- 'validating' while it runs, so that its elapsed time shows), whether it
-- waits on a lock, and the sessions it waits for; and the server's WAL insert
-- position at this look (the runner's marks for measuring standby lag).
SELECT a.wait_event_type = 'Lock' AS waiting,
       coalesce(p.phase, CASE WHEN a.query ~* 'VALIDATE\s+CONSTRAINT' THEN 'validating' END) AS phase,
       p.blocks_done, p.blocks_total,
       p.tuples_done, p.tuples_total,
       nullif(p.current_locker_pid, 0) AS locker_pid,
       pg_blocking_pids(a.pid) AS blocking_pids,
       pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint AS wal_position
FROM pg_stat_activity AS a
LEFT JOIN pg_stat_progress_create_index AS p ON p.pid = a.pid
WHERE a.pid = %(pid)s;
