-- Index checks: each index a migration builds exists once, on its table,
-- valid, ready and live, with the definition its migration builds: unique or
-- not, each key, INCLUDE and a partial index's WHERE compared as PostgreSQL
-- canonicalises them (definitions.sql), so any equivalent spelling passes.
-- Which indexes: every index migration in migrations/, as expected.sql lists them.
--
-- Read-only: one READ ONLY transaction, ended by ROLLBACK. Run it as it is:
--   psql -v ON_ERROR_STOP=1 -f verify/indexes.sql
-- Each check prints one line: `pass: <check>: ...` (NOTICE), or
-- `fail: <check>: expected ..., found ...` (WARNING), or `warn: ...` (WARNING)
-- for an index a CREATE INDEX is still building (pg_stat_progress_create_index:
-- not a failed build; a failure with upstream_indexes.strict = on). When any check failed the
-- script ends with an ERROR counting them (psql exits 3). `invoke verify` runs
-- this same file. Tables resolve through the search path, as in migrations/.
-- On a Citus coordinator, the check of an index on a distributed table also
-- covers its copy on every shard, on every node (Citus names it
-- <index>_<shardid>): each valid, ready and live, with our definition.
-- On a partitioned table (pg_get_indexdef shows its index ON ONLY the table),
-- the check also covers every partition: an index attached to ours, valid,
-- ready and live, with our definition; one missing is named as `invoke migrate`
-- names it: <index>_<partition>, or past 63 bytes its first 54, `_` and 8 hex
-- digits of the md5 of the whole name (src/upstream_indexes/partitions.py; both
-- agree: tests/test_partition_names.py).
BEGIN READ ONLY;
SET LOCAL client_min_messages = notice;
-- pg_get_indexdef takes ACCESS SHARE on the table: never queue long behind DDL
-- (a pending ACCESS EXCLUSIVE would make us wait, and others queue behind us).
SET LOCAL lock_timeout = '5s';
\ir expected.sql
\ir definitions.sql

DO $verify$
DECLARE
    strict_mode CONSTANT boolean := coalesce(current_setting('upstream_indexes.strict', true), '')
                               IN ('on', 'true', 'yes', '1');
    want record;
    found record;
    expected_def text;
    differences jsonb;
    elsewhere text;
    problems text[];
    building text;
    names text[] := '{}';
    on_their_table int := 0;
    found_count bigint;
    found_list text;
    failures text[] := '{}';
    checks int := 0;
    message text;
    on_citus CONSTANT boolean := to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;
    shards record;
    shard_note text;
    parts record;
BEGIN
    -- The indexes migrations/ builds (expected.sql; the tests run this file after `invoke migrate`).
    FOR want IN
        SELECT v.index_name, v.table_name, to_regclass(v.table_name) AS table_oid, v.definition, v.unique
        FROM jsonb_to_recordset(current_setting('upstream_indexes.expected_indexes')::jsonb)
            AS v (index_name text, table_name text, definition text, "unique" boolean)
    LOOP
        checks := checks + 1;
        names := names || want.index_name;
        problems := '{}';
        building := NULL;
        -- pg_get_indexdef qualifies the table with its schema; so does the expected text.
        SELECT format('CREATE %sINDEX %I ON %s%I.%I %s', CASE WHEN want.unique THEN 'UNIQUE ' ELSE '' END,
                      want.index_name,
                      CASE WHEN t.relkind = 'p' THEN 'ONLY ' ELSE '' END, n.nspname, t.relname, want.definition)
        INTO expected_def
        FROM pg_class AS t JOIN pg_namespace AS n ON n.oid = t.relnamespace
        WHERE t.oid = want.table_oid;
        SELECT i.indexrelid, i.indisvalid, i.indisready, i.indislive, pg_get_indexdef(i.indexrelid) AS definition
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
            -- Not valid yet while a CREATE INDEX still builds it (say, one a killed migrate left): its
            -- backend is in pg_stat_progress_create_index. A role without pg_read_all_stats sees other
            -- roles' builds there without their index, and so reads such a build as INVALID.
            SELECT format('pid %s, %s', p.pid, p.phase) INTO building
            FROM pg_stat_progress_create_index AS p
            WHERE p.index_relid = found.indexrelid AND NOT found.indisvalid
            LIMIT 1;
            IF building IS NULL AND NOT (found.indisvalid AND found.indisready AND found.indislive) THEN
                problems := problems || format(
                    'expected valid, ready and live, found INVALID (indisvalid = %s, indisready = %s, '
                    'indislive = %s: a failed or cancelled build; `invoke migrate` rebuilds it)',
                    found.indisvalid::text, found.indisready::text, found.indislive::text);
            END IF;
            differences := current_setting('upstream_indexes.index_differences')::jsonb -> want.index_name;
            IF jsonb_array_length(coalesce(differences, '[]')) > 0 THEN
                problems := problems || format('expected definition `%s`, found `%s` (%s)', expected_def,
                    found.definition, (SELECT string_agg(d, '; ') FROM jsonb_array_elements_text(differences) AS d));
            END IF;
        END IF;

        shard_note := '';
        IF on_citus AND want.table_oid IS NOT NULL THEN
            -- Each node lists its shard indexes of this name (run_command_on_all_nodes).
            WITH node_answers AS (
                SELECT r.nodeid, r.success, r.result
                FROM run_command_on_all_nodes(format(
                    $$SELECT coalesce(json_agg(json_build_object(
                                 'index_name', c.relname,
                                 'valid', i.indisvalid AND i.indisready AND i.indislive,
                                 'definition', pg_get_indexdef(c.oid))), '[]')
                      FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
                      WHERE c.relname LIKE %L$$, replace(want.index_name, '_', '\_') || '\_%')) AS r
            ),
            shard_state AS (
                SELECT format('%s_%s on %s:%s', want.index_name, s.shardid, n.nodename, n.nodeport) AS shard,
                       CASE WHEN NOT a.success THEN format('node did not answer (%s)', a.result)
                            WHEN f.definition IS NULL THEN 'missing'
                            WHEN NOT f.valid THEN 'INVALID'
                            WHEN f.definition IS DISTINCT FROM format('CREATE INDEX %I ON %I.%I %s',
                                     want.index_name || '_' || s.shardid, t.schema_name,
                                     t.table_name || '_' || s.shardid, want.definition)
                                THEN format('definition `%s`', f.definition)
                       END AS problem,
                       n.nodeid
                FROM pg_dist_shard AS s
                JOIN pg_dist_placement AS p ON p.shardid = s.shardid
                JOIN pg_dist_node AS n ON n.groupid = p.groupid AND n.noderole = 'primary'
                CROSS JOIN (SELECT tn.nspname AS schema_name, tc.relname AS table_name
                            FROM pg_class AS tc JOIN pg_namespace AS tn ON tn.oid = tc.relnamespace
                            WHERE tc.oid = want.table_oid) AS t
                LEFT JOIN node_answers AS a ON a.nodeid = n.nodeid
                LEFT JOIN LATERAL (
                    SELECT x.valid, x.definition
                    FROM json_to_recordset(a.result::json) AS x (index_name text, valid boolean, definition text)
                    WHERE a.success AND x.index_name = want.index_name || '_' || s.shardid
                ) AS f ON true
                WHERE s.logicalrelid = want.table_oid
            )
            SELECT count(*) AS total, count(DISTINCT nodeid) AS nodes,
                   count(*) FILTER (WHERE problem IS NOT NULL) AS bad,
                   string_agg(shard || ': ' || problem, ', ' ORDER BY shard) AS problems
            INTO shards
            FROM shard_state;
            IF shards.bad > 0 THEN
                problems := problems || format('expected on all %s shards, valid with our definition, found %s not: '
                                               '%s (`invoke migrate` drops and rebuilds it)',
                                               shards.total, shards.bad, shards.problems);
            ELSIF shards.total > 0 THEN
                shard_note := format(', and on all %s shards (%s nodes)', shards.total, shards.nodes);
            END IF;
        END IF;

        -- A partitioned table: each partition's index attached to ours, valid, with our definition.
        IF found.definition IS NOT NULL THEN
            WITH part_state AS (
                SELECT p.relname AS partition,
                       CASE WHEN octet_length(x.full_name) <= 63 THEN x.full_name
                            ELSE (SELECT left(x.full_name, max(k)) FROM generate_series(1, length(x.full_name)) AS k
                                  WHERE octet_length(left(x.full_name, k)) <= 54) || '_' || left(md5(x.full_name), 8)
                       END AS our_name,
                       c.relname AS index_name,
                       CASE WHEN c.oid IS NULL THEN 'missing'
                            WHEN NOT (i.indisvalid AND i.indisready AND i.indislive) THEN 'INVALID'
                            WHEN pg_get_indexdef(c.oid) IS DISTINCT FROM
                                 format('CREATE INDEX %I ON %I.%I %s', c.relname, pn.nspname, p.relname,
                                        want.definition)
                                THEN format('definition `%s`', pg_get_indexdef(c.oid))
                       END AS problem
                FROM pg_inherits AS h
                JOIN pg_class AS p ON p.oid = h.inhrelid
                JOIN pg_namespace AS pn ON pn.oid = p.relnamespace
                CROSS JOIN LATERAL (SELECT want.index_name || '_' || p.relname AS full_name) AS x
                LEFT JOIN LATERAL (
                    SELECT ai.* FROM pg_inherits AS ih JOIN pg_index AS ai ON ai.indexrelid = ih.inhrelid
                    WHERE ih.inhparent = found.indexrelid AND ai.indrelid = p.oid
                ) AS i ON true
                LEFT JOIN pg_class AS c ON c.oid = i.indexrelid
                WHERE h.inhparent = want.table_oid
            )
            SELECT count(*) AS total, count(*) FILTER (WHERE problem IS NOT NULL) AS bad,
                   string_agg(format('%s: %s', partition,
                                     CASE WHEN problem = 'missing'
                                          THEN format('no index attached (`invoke migrate` builds %s)', our_name)
                                          ELSE format('%s %s', index_name, problem) END), ', '
                              ORDER BY partition) FILTER (WHERE problem IS NOT NULL) AS problems
            INTO parts
            FROM part_state;
            IF parts.bad > 0 THEN
                problems := problems || format('expected an index attached on each of its %s partitions, valid with '
                                               'our definition, found %s not: %s', parts.total, parts.bad,
                                               parts.problems);
            ELSIF parts.total > 0 THEN
                shard_note := shard_note || format(', and on all %s partitions', parts.total);
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

        IF building IS NOT NULL AND cardinality(problems) > 0 THEN
            problems := format('found building (%s)', building) || problems;
        END IF;
        IF building IS NOT NULL AND cardinality(problems) = 0 THEN
            message := format('index %s: expected valid, found building (%s): a CREATE INDEX is still running; '
                              'verify again once it ends (`invoke status` shows it)', want.index_name, building);
            IF strict_mode THEN
                failures := failures || message;
                RAISE WARNING 'fail: %', message;
            ELSE
                RAISE WARNING 'warn: %', message;
            END IF;
        ELSIF cardinality(problems) = 0 THEN
            RAISE NOTICE 'pass: index %: on %, valid, ready and live, %definition %',
                want.index_name, want.table_oid::regclass, CASE WHEN want.unique THEN 'unique, ' ELSE '' END,
                want.definition || shard_note;
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
