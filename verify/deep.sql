-- Deep checks: each covering index holds every row of its table, in a
-- consistent btree (amcheck's bt_index_check with heapallindexed). Which
-- indexes: every forward file in migrations/, as expected.sql lists them.
--
-- Why: CREATE INDEX CONCURRENTLY builds while the app writes, and has shipped
-- bugs that left rows out of the index (PostgreSQL 14.0 to 14.3). A valid
-- index (indexes.sql) and a good plan (plans.sql) do not prove that every
-- row is in it; a query through it would silently miss the absent ones.
--
-- Read-only: one READ ONLY transaction, ended by ROLLBACK. Run it as it is:
--   psql -v ON_ERROR_STOP=1 -f verify/deep.sql
-- `invoke verify --deep` runs this same file after indexes.sql and plans.sql.
-- Cost: bt_index_check reads the whole index and the whole table (a bloom
-- filter of the index, then every heap tuple probed against it), holding
-- ACCESS SHARE on both: reads and writes go on, DDL on the table waits.
-- Needs the amcheck extension (contrib) in this database and EXECUTE on
-- bt_index_check; a superuser has it. Without either, each index is a
-- warning saying how (a failure with upstream_indexes.strict = on).
-- An index that is missing or not valid is not checked (indexes.sql fails it).
BEGIN READ ONLY;
SET LOCAL client_min_messages = notice;
-- bt_index_check takes ACCESS SHARE on the table and the index: never queue
-- long behind DDL (others would queue behind us).
SET LOCAL lock_timeout = '5s';
\ir expected.sql

DO $verify$
DECLARE
    strict_mode CONSTANT boolean := coalesce(current_setting('upstream_indexes.strict', true), '')
                               IN ('on', 'true', 'yes', '1');
    warning_is CONSTANT text := CASE WHEN strict_mode THEN 'fail' ELSE 'warn' END;
    amcheck_schema text;
    want record;
    started timestamptz;
    failures text[] := '{}';
    checks int := 0;
    message text;
    status text;
BEGIN
    SELECT n.nspname INTO amcheck_schema
    FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'amcheck';

    FOR want IN
        SELECT v.index_name, to_regclass(v.table_name) AS table_oid, i.indexrelid AS index_oid,
               coalesce(i.indisvalid AND i.indisready AND i.indislive, false) AS usable
        FROM jsonb_to_recordset(current_setting('upstream_indexes.expected_indexes')::jsonb)
            AS v (index_name text, table_name text)
        LEFT JOIN pg_index AS i
            ON i.indexrelid = to_regclass(v.index_name) AND i.indrelid = to_regclass(v.table_name)
    LOOP
        checks := checks + 1;
        status := NULL;
        IF want.index_oid IS NULL OR NOT want.usable THEN
            status := warning_is;
            message := format('deep %s: not checked: the index is %s (indexes.sql says why)', want.index_name,
                              CASE WHEN want.index_oid IS NULL THEN 'missing' ELSE 'not valid' END);
        ELSIF amcheck_schema IS NULL THEN
            status := warning_is;
            message := format('deep %s: not checked: the amcheck extension is not installed in database %s; '
                              'a superuser runs CREATE EXTENSION amcheck (PostgreSQL contrib; verify never '
                              'writes), or checks from the shell with `pg_amcheck --install-missing '
                              '--heapallindexed --index=%s`', want.index_name, current_database(),
                              want.index_name);
        ELSE
            started := clock_timestamp();
            BEGIN
                EXECUTE format('SELECT %I.bt_index_check($1, heapallindexed => true)', amcheck_schema)
                    USING want.index_oid;
                message := format('deep %s: amcheck bt_index_check(heapallindexed => true): btree consistent, '
                                  'every row of %s in it (%ss)', want.index_name, want.table_oid::regclass,
                                  round(extract(epoch FROM clock_timestamp() - started)::numeric, 2));
                status := 'pass';
            EXCEPTION
                WHEN insufficient_privilege THEN
                    status := warning_is;
                    message := format('deep %s: not checked: role %s may not run amcheck (%s); a superuser '
                                      'runs GRANT EXECUTE ON FUNCTION %I.bt_index_check(regclass, boolean) '
                                      'TO %I, or checks from the shell with `pg_amcheck --heapallindexed '
                                      '--index=%s`', want.index_name, current_user, SQLERRM, amcheck_schema,
                                      current_user, want.index_name);
                WHEN lock_not_available THEN
                    RAISE;  -- behind pending DDL: could not run, as in the other files
                WHEN OTHERS THEN
                    status := 'fail';
                    message := format('deep %s: amcheck: %s (SQLSTATE %s); REINDEX INDEX CONCURRENTLY %s '
                                      'rebuilds it', want.index_name, SQLERRM, SQLSTATE, want.index_name);
            END;
        END IF;
        IF status = 'pass' THEN
            RAISE NOTICE 'pass: %', message;
        ELSE
            IF status = 'fail' THEN
                failures := failures || message;
            END IF;
            RAISE WARNING '%: %', status, message;
        END IF;
    END LOOP;

    IF cardinality(failures) > 0 THEN
        RAISE EXCEPTION 'verify/deep.sql: % of % checks failed', cardinality(failures), checks
            USING DETAIL = array_to_string(failures, E'\n');
    END IF;
END
$verify$;

ROLLBACK;
