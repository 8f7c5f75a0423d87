-- Index checks: each covering index exists once, on its table, valid, ready
-- and live, with exactly the definition its migration builds. Which indexes:
-- every forward file in migrations/, as expected.sql lists them.
--
-- Read-only: one READ ONLY transaction, ended by ROLLBACK. Run it as it is:
--   psql -v ON_ERROR_STOP=1 -f verify/indexes.sql
-- Each check prints one line: `pass: <check>: ...` (NOTICE) or
-- `fail: <check>: expected ..., found ...` (WARNING). When any check failed the
-- script ends with an ERROR counting them (psql exits 3). `invoke verify` runs
-- this same file. Tables resolve through the search path, as in migrations/.
BEGIN READ ONLY;
SET LOCAL client_min_messages = notice;
-- pg_get_indexdef takes ACCESS SHARE on the table: never queue long behind DDL
-- (a pending ACCESS EXCLUSIVE would make us wait, and others queue behind us).
SET LOCAL lock_timeout = '5s';
\ir expected.sql

DO $verify$
DECLARE
    want record;
    found record;
    expected_def text;
    elsewhere text;
    problems text[];
    names text[] := '{}';
    on_their_table int := 0;
    found_count bigint;
    found_list text;
    failures text[] := '{}';
    checks int := 0;
    message text;
BEGIN
    -- The indexes migrations/ builds (expected.sql; the tests run this file after `invoke migrate`).
    FOR want IN
        SELECT v.index_name, v.table_name, to_regclass(v.table_name) AS table_oid, v.definition
        FROM jsonb_to_recordset(current_setting('upstream_indexes.expected_indexes')::jsonb)
            AS v (index_name text, table_name text, definition text)
    LOOP
        checks := checks + 1;
        names := names || want.index_name;
        problems := '{}';
        -- pg_get_indexdef qualifies the table with its schema; so does the expected text.
        SELECT format('CREATE INDEX %I ON %I.%I %s', want.index_name, n.nspname, t.relname, want.definition)
        INTO expected_def
        FROM pg_class AS t JOIN pg_namespace AS n ON n.oid = t.relnamespace
        WHERE t.oid = want.table_oid;
        SELECT i.indisvalid, i.indisready, i.indislive, pg_get_indexdef(i.indexrelid) AS definition
        INTO found
        FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
        WHERE c.relname = want.index_name AND i.indrelid = want.table_oid;

        IF want.table_oid IS NULL THEN
            problems := problems || format('expected on table %s, found no such table', want.table_name);
        ELSIF found.definition IS NULL THEN
            problems := problems || format('expected on %s, found no index of this name there '
                                           '(`invoke migrate` builds it)', want.table_oid::regclass);
        ELSE
            on_their_table := on_their_table + 1;
            IF NOT (found.indisvalid AND found.indisready AND found.indislive) THEN
                problems := problems || format(
                    'expected valid, ready and live, found INVALID (indisvalid = %s, indisready = %s, '
                    'indislive = %s: a failed or cancelled build; `invoke migrate` rebuilds it)',
                    found.indisvalid::text, found.indisready::text, found.indislive::text);
            END IF;
            IF found.definition IS DISTINCT FROM expected_def THEN
                problems := problems || format('expected definition `%s`, found `%s`',
                                               expected_def, found.definition);
            END IF;
        END IF;

        -- pg_indexes across all schemas: the name must appear on no other table.
        SELECT string_agg(format('%I.%I', x.schemaname, x.tablename), ', ') INTO elsewhere
        FROM pg_indexes AS x
        WHERE x.indexname = want.index_name
          AND NOT EXISTS (SELECT FROM pg_class AS t JOIN pg_namespace AS n ON n.oid = t.relnamespace
                          WHERE t.oid = want.table_oid AND n.nspname = x.schemaname AND t.relname = x.tablename);
        IF elsewhere IS NOT NULL THEN
            problems := problems || format('expected only on %s, found another index of this name on %s',
                                           coalesce(want.table_oid::regclass::text, want.table_name), elsewhere);
        END IF;

        IF cardinality(problems) = 0 THEN
            RAISE NOTICE 'pass: index %: on %, valid, ready and live, definition %',
                want.index_name, want.table_oid::regclass, want.definition;
        ELSE
            message := format('index %s: %s', want.index_name, array_to_string(problems, '; '));
            failures := failures || message;
            RAISE WARNING 'fail: %', message;
        END IF;
    END LOOP;

    -- Exactly our names in pg_indexes (one per migration), each on its expected table.
    checks := checks + 1;
    SELECT count(*), coalesce(string_agg(format('%I on %I.%I', x.indexname, x.schemaname, x.tablename), ', '
                                         ORDER BY x.indexname, x.schemaname), 'none')
    INTO found_count, found_list
    FROM pg_indexes AS x
    WHERE x.indexname = ANY (names);
    IF found_count = cardinality(names) AND on_their_table = cardinality(names) THEN
        RAISE NOTICE 'pass: index count: % indexes of our names, each on its table: %', found_count, found_list;
    ELSE
        message := format('index count: expected %s indexes of our names, each on its table, found %s '
                          '(%s on their table): %s', cardinality(names), found_count, on_their_table, found_list);
        failures := failures || message;
        RAISE WARNING 'fail: %', message;
    END IF;

    IF cardinality(failures) > 0 THEN
        RAISE EXCEPTION 'verify/indexes.sql: % of % checks failed', cardinality(failures), checks
            USING DETAIL = array_to_string(failures, E'\n');
    END IF;
END
$verify$;

ROLLBACK;
