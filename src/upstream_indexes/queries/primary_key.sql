-- A table's primary key columns, in order (none: an empty list): how a data
-- pre-check shows a row. And which of the named columns the table has.
SELECT ARRAY(SELECT a.attname::text
             FROM pg_index AS i
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = to_regclass(%(table)s) AND i.indisprimary
             ORDER BY k.n) AS primary_key,
       ARRAY(SELECT a.attname::text FROM pg_attribute AS a
             WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attname = ANY (%(columns)s::text[])) AS present;
