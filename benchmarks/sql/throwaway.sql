-- May the benchmark write into this database? It writes only into its own
-- schema (%(schema)s), and only where nothing else lives: the relations
-- outside the system schemas and its own, and whether its schema exists and
-- carries the comment the bench gave it when it created it.
SELECT current_database() AS database,
       (SELECT count(*)
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', %(schema)s)
          AND n.nspname NOT LIKE 'pg\_toast%%'
          AND n.nspname NOT LIKE 'pg\_temp\_%%') AS other_relations,
       (SELECT oid IS NOT NULL FROM pg_namespace WHERE nspname = %(schema)s) AS schema_exists,
       (SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %(schema)s)
           AS schema_comment;
