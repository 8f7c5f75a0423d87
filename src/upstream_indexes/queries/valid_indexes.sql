-- The valid indexes on a migration's table, with their definitions, for `invoke stamp`: it looks among
-- them for one of the migration's definition under any name (built by hand, restored from a snapshot).
-- Read-only.
SELECT n.nspname AS schema_name,
       c.relname AS index_name,
       pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE i.indrelid = to_regclass(%(table)s)
  AND i.indisvalid AND i.indisready AND i.indislive
ORDER BY c.relname <> %(index)s, c.relname;
