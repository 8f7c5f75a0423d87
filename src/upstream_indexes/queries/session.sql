-- One backend as the operator needs to see it when it blocks us: pid, role,
-- state, how long its transaction (or else its query) has been open, and
-- the start of its query.
SELECT pid,
       usename AS role,
       coalesce(state, 'unknown') AS state,
       extract(epoch FROM now() - coalesce(xact_start, query_start, backend_start))::int AS age_seconds,
       left(regexp_replace(coalesce(query, ''), '\s+', ' ', 'g'), 80) AS query
FROM pg_stat_activity
WHERE pid = %(pid)s;
