-- Citus: the worker side of a CREATE / DROP INDEX CONCURRENTLY the coordinator
-- backend %(pid)s sends to the shards. Citus runs each shard's command in a
-- backend named `citus_internal gpid=<global pid of %(pid)s>` on its worker
-- (in parallel per worker); each node answers through run_command_on_all_nodes
-- with those backends: the shard index, its phase and counters
-- (pg_stat_progress_create_index), whether it waits on a lock, and the
-- session it waits for there.
WITH node_answers AS (
    SELECT r.nodeid, r.result
    FROM run_command_on_all_nodes(format(
        $$SELECT coalesce(json_agg(json_build_object(
                     'shard_index', coalesce(p.index_relid::regclass::text, ''),
                     'phase', p.phase,
                     'blocks_done', p.blocks_done, 'blocks_total', p.blocks_total,
                     'tuples_done', p.tuples_done, 'tuples_total', p.tuples_total,
                     'waiting', a.wait_event_type = 'Lock',
                     'blocker_pid', b.pid,
                     'blocker_role', b.usename,
                     'blocker_state', coalesce(b.state, 'unknown'),
                     'blocker_age_seconds',
                         extract(epoch FROM now() - coalesce(b.xact_start, b.query_start, b.backend_start))::int,
                     'blocker_query', left(regexp_replace(coalesce(b.query, ''), '\s+', ' ', 'g'), 80))
                 ORDER BY a.wait_event_type = 'Lock' DESC, a.pid), '[]')
          FROM pg_stat_activity AS a
          LEFT JOIN pg_stat_progress_create_index AS p ON p.pid = a.pid
          LEFT JOIN pg_stat_activity AS b
            ON a.wait_event_type = 'Lock'
           AND b.pid = coalesce(nullif(p.current_locker_pid, 0), (pg_blocking_pids(a.pid))[1])
          WHERE a.application_name = %%L$$,
        'citus_internal gpid=' || citus_calculate_gpid(
            (SELECT n.nodeid FROM pg_dist_node AS n WHERE n.groupid = 0 AND n.noderole = 'primary'), %(pid)s))) AS r
    WHERE r.success
)
SELECT format('%%s:%%s', n.nodename, n.nodeport) AS node, x.*
FROM node_answers AS a
JOIN pg_dist_node AS n ON n.nodeid = a.nodeid
CROSS JOIN LATERAL json_to_recordset(a.result::json) AS x (
    shard_index text, phase text, blocks_done bigint, blocks_total bigint, tuples_done bigint, tuples_total bigint,
    waiting boolean, blocker_pid int, blocker_role text, blocker_state text, blocker_age_seconds int,
    blocker_query text)
ORDER BY x.waiting DESC, n.nodeid;
