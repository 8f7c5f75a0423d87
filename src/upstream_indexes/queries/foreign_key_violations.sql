-- Before a foreign key is added: rows whose key has no referenced row
-- (MATCH SIMPLE: a key with a NULL in it passes; MATCH FULL: a key with some
-- NULLs and some not fails too). Added NOT VALID over such rows it would
-- already refuse the app's next update of one, and VALIDATE would fail. At
-- most five, each as its primary key and the key columns; stops at the
-- fifth. One anti-join of both tables (as PostgreSQL's own validation), under
-- ACCESS SHARE only; a partitioned table's rows are its partitions'.
-- Filled in by datachecks.py (psycopg.sql): {table}, {references},
-- {matched} (the referenced row for the key), {checked} (the rows with a key
-- to check), {partly_null} (MATCH FULL: a key partly NULL; else false), {shown},
-- {limit} (5, or ALL for violation_count.sql).
SELECT {shown} AS shown
FROM {table} AS referencing
WHERE {checked} AND NOT EXISTS (SELECT FROM {references} AS referenced WHERE {matched})
UNION ALL
SELECT {shown}
FROM {table} AS referencing
WHERE {partly_null}
LIMIT {limit};
