-- Before a unique index is built: the keys more than one row shares, as the
-- index would see them: only the rows its WHERE keeps (a partial index), and
-- a key with a NULL in it is no duplicate (unless NULLS NOT DISTINCT), each
-- key compared with its collation. A unique CREATE INDEX CONCURRENTLY over
-- such a key fails after its whole scan and leaves an INVALID index.
-- Returns at most five keys, most rows first, each with how many rows share
-- it, and how many keys and rows are duplicated in all. Reads the table once
-- (a sequential scan, a hash or sort aggregate), under ACCESS SHARE only.
-- Filled in by datachecks.py (psycopg.sql): {table}, {keys} (the index's
-- keys), {where} (its predicate, and each key IS NOT NULL), {limit} (5).
SELECT count(*) OVER () AS duplicate_keys,
       sum(count(*)) OVER () AS rows_involved,
       ROW({keys})::text AS duplicate_key,
       count(*) AS row_count
FROM ONLY {table}
WHERE {where}
GROUP BY {keys}
HAVING count(*) > 1
ORDER BY row_count DESC, duplicate_key
LIMIT {limit};
