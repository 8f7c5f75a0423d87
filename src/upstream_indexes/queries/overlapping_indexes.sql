-- Existing indexes that one new covering index makes redundant: information for the DBA
-- (`invoke status`, docs/indexes.md), never dropped by this tool. Works before the new index
-- exists: its table, key columns, key directions and all columns come as parameters.
-- A candidate is a valid plain btree index on the same table (not unique, not partial, no
-- expressions, default operator classes and collations) whose key columns are the leading key
-- columns of the new one, in any direction, and whose INCLUDE columns the new one has too.
-- key_options are pg_index.indoption's bits per key column (1 DESC, 2 NULLS FIRST): the caller
-- compares them with the new index's to say which orders a scan of it serves.
WITH candidate AS (
    SELECT c.relname AS index_name,
           i.indexrelid,
           i.indnkeyatts AS key_count,
           ARRAY(SELECT a.attname::text
                 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
                 JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 ORDER BY k.position) AS columns,
           ARRAY(SELECT k.attnum
                 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
                 WHERE k.position <= i.indnkeyatts
                 ORDER BY k.position) AS key_attnums,
           ARRAY(SELECT x.option::int & 3
                 FROM unnest(i.indoption::int2[]) WITH ORDINALITY AS x(option, position)
                 ORDER BY x.position) AS key_options
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_am AS am ON am.oid = c.relam
    WHERE i.indrelid = to_regclass(%(table)s)
      AND c.relname <> %(index)s
      AND am.amname = 'btree'
      AND i.indisvalid AND NOT i.indisunique
      AND i.indpred IS NULL AND i.indexprs IS NULL
      AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) AS k(opclass)
                      JOIN pg_opclass AS o ON o.oid = k.opclass
                      WHERE NOT o.opcdefault)
      AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[], i.indcollation::oid[]) AS k(attnum, collation_oid)
                      JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                      WHERE k.collation_oid <> a.attcollation)
)
SELECT index_name,
       pg_get_indexdef(indexrelid) AS definition,
       pg_relation_size(indexrelid) AS size_bytes,
       columns[1:key_count] AS key_columns,
       key_options,
       EXISTS (SELECT 1 FROM pg_constraint AS f
               WHERE f.conrelid = to_regclass(%(table)s) AND f.contype = 'f'
                 AND f.conkey = key_attnums) AS backs_foreign_key
FROM candidate
WHERE key_count <= cardinality(%(keys)s::text[])
  AND columns[1:key_count] = (%(keys)s::text[])[1:key_count]
  AND coalesce(columns[key_count + 1:], '{}') <@ %(columns)s::text[]
ORDER BY index_name;
