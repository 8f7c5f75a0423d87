-- The size of each table the migrations index: rows (reltuples, exact right
-- after the VACUUM ANALYZE of the demo load) and bytes of heap and indexes.
-- A partitioned table counts its leaf partitions (pg_partition_tree; none for a
-- plain table); not itself: ANALYZE gives the parent the total row count too.
SELECT u.t AS table_name,
       sum(greatest(c.reltuples, 0))::bigint AS row_count,
       sum(pg_table_size(c.oid))::bigint AS table_bytes,
       sum(pg_indexes_size(c.oid))::bigint AS indexes_bytes
FROM unnest(%(tables)s::text[]) WITH ORDINALITY AS u (t, n)
LEFT JOIN LATERAL pg_partition_tree(to_regclass(u.t)) AS tree ON true
JOIN pg_class AS c ON c.oid = coalesce(tree.relid, to_regclass(u.t))
WHERE tree.isleaf IS NOT FALSE
GROUP BY u.t, u.n
ORDER BY u.n;
