-- Pre-flight for one table the migrations index: does it exist (search path),
-- which of the named columns are missing, and may the current role create
-- indexes on it (it owns the table or is a member of the owning role).
SELECT to_regclass(%(table)s) IS NOT NULL AS table_exists,
       ARRAY(SELECT col FROM unnest(%(columns)s::text[]) AS col
             WHERE NOT EXISTS (SELECT 1 FROM pg_attribute AS a
                               WHERE a.attrelid = to_regclass(%(table)s)
                                 AND a.attname = col AND a.attnum > 0
                                 AND NOT a.attisdropped)) AS missing_columns,
       coalesce((SELECT pg_has_role(current_user, c.relowner, 'MEMBER')
                 FROM pg_class AS c WHERE c.oid = to_regclass(%(table)s)), false) AS can_index,
       (SELECT pg_get_userbyid(c.relowner)
        FROM pg_class AS c WHERE c.oid = to_regclass(%(table)s)) AS owner;
