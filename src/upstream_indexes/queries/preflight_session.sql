-- Pre-flight for the session: a standby or a read-only session cannot build
-- indexes; without CREATE on the schema neither yoyo nor we can make the
-- bookkeeping tables (yoyo's, and _upstream_indexes_checksum).
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('transaction_read_only') = 'on' AS read_only,
       current_user AS role,
       current_schema() AS schema,
       coalesce(has_schema_privilege(current_schema(), 'CREATE'), false) AS can_create_in_schema,
       to_regclass('_yoyo_migration') IS NOT NULL
           AND to_regclass('_upstream_indexes_checksum') IS NOT NULL AS bookkeeping_tables_exist;
