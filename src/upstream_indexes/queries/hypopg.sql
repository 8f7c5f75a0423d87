-- The what-if's HypoPG: its version and schema in this database (null: not
-- created here), and the version the server could create (null: not installed
-- on the server). Read-only; nothing is created.
SELECT e.extversion AS version,
       n.nspname AS schema,
       (SELECT a.default_version FROM pg_available_extensions AS a WHERE a.name = 'hypopg') AS available
FROM (SELECT) AS one
LEFT JOIN pg_extension AS e ON e.extname = 'hypopg'
LEFT JOIN pg_namespace AS n ON n.oid = e.extnamespace;
