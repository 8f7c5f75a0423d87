-- The customer a catalogue query is planned for (verify/plans.sql picks the
-- same): the table's busiest, the first of pg_stats.most_common_vals for
-- customer_id (non-inherited statistics first). Null without statistics:
-- then any row's customer is taken.
SELECT (s.most_common_vals::text::bigint[])[1] AS customer
FROM pg_stats AS s
JOIN pg_class AS t ON t.relname = s.tablename
JOIN pg_namespace AS n ON n.oid = t.relnamespace AND n.nspname = s.schemaname
WHERE t.oid = to_regclass(%(table)s) AND s.attname = 'customer_id'
ORDER BY s.inherited
LIMIT 1;
