-- The standbys streaming from this server, and how far behind their replay is:
-- the replayed WAL position (bytes from 0/0, to compare with the positions we
-- noted around our builds), the bytes still to replay, and the server's own
-- measure of replay lag. Without pg_read_all_stats (pg_monitor) the positions,
-- lags and state are NULL.
SELECT coalesce(nullif(application_name, ''), 'pid ' || pid) AS name,
       coalesce(host(client_addr), 'local socket') AS client_addr,
       coalesce(state, 'state unknown') AS state,
       replay_lsn IS NOT NULL AS readable,
       pg_wal_lsn_diff(replay_lsn, '0/0')::bigint AS replay_position,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS behind_bytes,
       extract(epoch FROM replay_lag)::float8 AS replay_lag_seconds
FROM pg_stat_replication
ORDER BY 1, 2;
