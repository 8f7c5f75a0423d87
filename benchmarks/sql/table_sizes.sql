-- The size of each table the migrations index: rows (reltuples, exact right
-- after the VACUUM ANALYZE of the demo load) and bytes of heap and indexes.
SELECT t AS table_name,
       c.reltuples::bigint AS row_count,
       pg_table_size(c.oid) AS table_bytes,
       pg_indexes_size(c.oid) AS indexes_bytes
FROM unnest(%(tables)s::text[]) WITH ORDINALITY AS u (t, n)
JOIN pg_class AS c ON c.oid = to_regclass(u.t)
ORDER BY u.n;
