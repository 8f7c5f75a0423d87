-- The catalog's view of one index name, as the search path resolves it:
-- which table, valid / ready / live, its definition, size, and the backend
-- still building it (a CREATE INDEX in progress, e.g. one a killed run left).
-- No row: no relation of that name. relkind <> 'i': the name is taken by a non-index.
SELECT c.relkind::text AS relkind,
       n.nspname AS schema,
       t.relname AS table_name,
       coalesce(i.indisvalid, false) AS valid,
       coalesce(i.indisready, false) AS ready,
       coalesce(i.indislive, false) AS live,
       CASE WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid) END AS definition,
       pg_relation_size(c.oid) AS size_bytes,
       (SELECT p.pid FROM pg_stat_progress_create_index AS p
         WHERE p.index_relid = c.oid LIMIT 1) AS building_pid
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_index AS i ON i.indexrelid = c.oid
LEFT JOIN pg_class AS t ON t.oid = i.indrelid
WHERE c.oid = to_regclass(%(name)s);
