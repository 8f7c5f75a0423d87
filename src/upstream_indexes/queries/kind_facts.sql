-- Pre-flight facts for one migration that is more than a plain index: is its
-- table partitioned; for a foreign key, does the referenced table exist, which
-- referenced columns are missing, may the role reference it; for a PRIMARY
-- KEY promotion, which of its columns may hold NULL (PostgreSQL would then set
-- NOT NULL, scanning the table under ACCESS EXCLUSIVE). And does each of the
-- file's expressions fit the table: EXPLAIN (plans, runs nothing) of them all.
SELECT coalesce((SELECT c.relkind = 'p' FROM pg_class AS c WHERE c.oid = to_regclass(%(table)s)), false)
           AS partitioned,
       to_regclass(%(references)s) IS NOT NULL AS references_exists,
       ARRAY(SELECT col FROM unnest(%(referenced_columns)s::text[]) AS col
             WHERE NOT EXISTS (SELECT FROM pg_attribute AS a
                               WHERE a.attrelid = to_regclass(%(references)s) AND a.attname = col
                                 AND a.attnum > 0 AND NOT a.attisdropped)) AS missing_referenced_columns,
       CASE WHEN to_regclass(%(references)s) IS NOT NULL
            THEN has_table_privilege(to_regclass(%(references)s), 'REFERENCES') END AS may_reference,
       ARRAY(SELECT a.attname::text FROM pg_attribute AS a
             WHERE a.attrelid = to_regclass(%(table)s) AND a.attname = ANY (%(not_null_columns)s::text[])
               AND NOT a.attnotnull) AS nullable_columns;
