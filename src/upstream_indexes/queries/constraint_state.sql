-- The catalog's view of one constraint of ours, on its table as the search
-- path resolves it: its type, whether it is validated, its definition, and
-- for a UNIQUE / PRIMARY KEY constraint the index it uses and that index's size.
-- No row: no constraint of that name on the table.
SELECT c.contype::text AS type,
       c.convalidated AS validated,
       pg_get_constraintdef(c.oid) AS definition,
       i.relname AS index_name,
       CASE WHEN i.oid IS NOT NULL THEN pg_relation_size(i.oid) END AS size_bytes
FROM pg_constraint AS c
LEFT JOIN pg_class AS i ON i.oid = c.conindid
WHERE c.conrelid = to_regclass(%(table)s) AND c.conname = %(name)s;
