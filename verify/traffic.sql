-- Traffic checks: the app's real statements, as pg_stat_statements has seen
-- them in this database, against the indexes migrations/ builds (expected.sql).
-- Where plans.sql proves the queries we wrote down, this looks at what the app
-- sends (the ORM's exact SQL) and at heavy statements nobody wrote down.
--
-- Which: the heaviest by total execution time (upstream_indexes.traffic_top of
-- them, default 10) of the SELECT / WITH / UPDATE / DELETE statements that name
-- a table one of our indexes is on. Each is EXPLAINed as a generic plan, as
-- the server plans a statement whose values ($1, $2, ...) it does not know:
-- on PostgreSQL 16+ with EXPLAIN (GENERIC_PLAN); before 16 it is prepared
-- (as upstream_indexes_traffic_<rank>), EXPLAINed with plan_cache_mode =
-- force_generic_plan and deallocated. One line each: calls, mean time, the
-- plan's scans, and whether it uses one of our indexes (index-only or not);
-- its DETAIL holds the same as JSON (`invoke verify --json` carries it).
--   pass  its plan uses one of our indexes; or it filters on none of their
--         leading columns (not ours to serve: the line says what it reads)
--   warn  it reads a table one of our indexes is on and filters on that
--         index's leading column, but its plan uses none of ours there; or it
--         could not be planned (the error is quoted)
-- Without pg_stat_statements (it must be in shared_preload_libraries and
-- created in this database), one warning saying how to enable it. With
-- upstream_indexes.strict = on, every warning is a failure.
-- Seeing other roles' statements takes a superuser or pg_read_all_stats: a
-- warning counts the statements hidden from this role.
--
-- Read-only: one READ ONLY transaction, ended by ROLLBACK; every setting is
-- for this transaction only, and no prepared statement outlives it (behind a
-- pooler the server session goes to another client next). Run it as it is:
--   psql -v ON_ERROR_STOP=1 -f verify/traffic.sql
-- Options, as settings (e.g. PGOPTIONS='-c upstream_indexes.traffic_top=20'):
--   upstream_indexes.traffic_top = N   how many statements
--   upstream_indexes.strict = on       a warning fails its check
-- Each check prints one line as plans.sql's do; when any failed the script
-- ends with an ERROR counting them (psql exits 3). `invoke verify --traffic`
-- runs this same file after indexes.sql and plans.sql.
BEGIN READ ONLY;
SET LOCAL client_min_messages = notice;
-- Locks: PREPARE and EXPLAIN take ACCESS SHARE on the tables; never queue
-- long behind DDL.
SET LOCAL lock_timeout = '5s';
-- Before PostgreSQL 16: EXPLAIN EXECUTE plans the generic plan.
SET LOCAL plan_cache_mode = force_generic_plan;
\ir expected.sql

DO $traffic$
DECLARE
    strict_mode CONSTANT boolean := coalesce(current_setting('upstream_indexes.strict', true), '')
                               IN ('on', 'true', 'yes', '1');
    top CONSTANT int := coalesce(nullif(current_setting('upstream_indexes.traffic_top', true), ''), '10')::int;
    warning_is CONSTANT text := CASE WHEN strict_mode THEN 'fail' ELSE 'warn' END;
    generic_plan CONSTANT boolean := current_setting('server_version_num')::int >= 160000;
    shard_suffix CONSTANT text := CASE WHEN to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL
                                       THEN '_[0-9]+$' ELSE '$^' END;  -- Citus: what to strip from a name
    -- The statements that name one of these tables, and what a statement's text starts with.
    tables text[];
    names_a_table text;
    statement_kind CONSTANT text := '^(\s|/\*[^*]*\*+([^/*][^*]*\*+)*/|--[^\n]*\n)*(select|with|update|delete)\M';
    pgss_schema text;
    loaded boolean;
    matching bigint;
    hidden bigint;
    statement record;
    rank int := 0;
    prepared text;
    params int;
    plan jsonb;
    problem text;
    found record;
    stats text;
    shown text;
    message text;
    status text;
    data jsonb;
    failures text[] := '{}';
    checks int := 0;
BEGIN
    SELECT array_agg(DISTINCT i.table_name ORDER BY i.table_name) INTO tables
    FROM jsonb_to_recordset(current_setting('upstream_indexes.expected_indexes')::jsonb) AS i (table_name text);
    names_a_table := '\m(' || array_to_string(tables, '|') || ')\M';
    SELECT n.nspname INTO pgss_schema
    FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_stat_statements';
    -- Its settings exist in every session once the server preloaded it.
    loaded := current_setting('pg_stat_statements.max', true) IS NOT NULL;

    checks := checks + 1;
    message := CASE
        WHEN pgss_schema IS NULL AND NOT loaded THEN
            format('traffic: pg_stat_statements is not enabled: add it to shared_preload_libraries (a restart), '
                   'then a superuser runs CREATE EXTENSION pg_stat_statements in database %s; verify --traffic '
                   'reads the statements it counts from then on', current_database())
        WHEN pgss_schema IS NULL THEN
            format('traffic: pg_stat_statements is loaded but not created in database %s: a superuser runs '
                   'CREATE EXTENSION pg_stat_statements there (a view and functions; verify never writes)',
                   current_database())
        WHEN NOT loaded THEN
            format('traffic: pg_stat_statements is created in database %s but not loaded: add it to '
                   'shared_preload_libraries and restart the server', current_database())
    END;
    IF message IS NOT NULL THEN
        RAISE WARNING '%: %', warning_is, message;
        IF strict_mode THEN
            RAISE EXCEPTION 'verify/traffic.sql: 1 of 1 checks failed' USING DETAIL = message;
        END IF;
        RETURN;
    END IF;

    EXECUTE format($count$
        SELECT count(DISTINCT s.queryid) FILTER (WHERE s.query ~* $1 AND s.query ~* $2),
               count(*) FILTER (WHERE s.query = '<insufficient privilege>')
        FROM %I.pg_stat_statements AS s
        WHERE s.dbid = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
    $count$, pgss_schema) INTO matching, hidden USING statement_kind, names_a_table;
    message := format('traffic: %s of the %s statements pg_stat_statements holds for database %s that name %s, '
                      'heaviest first (total time), each as a generic plan', least(matching, top), matching,
                      current_database(), array_to_string(tables, ', '));
    IF matching = 0 THEN
        message := format('traffic: pg_stat_statements holds no statement (SELECT, WITH, UPDATE, DELETE) naming %s '
                          'for database %s: nothing to check (since its last reset, or the app has not run)',
                          array_to_string(tables, ', '), current_database());
        failures := failures || CASE WHEN strict_mode THEN message END;
        RAISE WARNING '%: %', warning_is, message;
    ELSE
        RAISE NOTICE 'pass: %', message;
    END IF;
    IF hidden > 0 THEN
        checks := checks + 1;
        message := format('traffic: %s statements of other roles are hidden from role %s: pg_stat_statements shows '
                          'their text only to superusers and members of pg_read_all_stats', hidden, current_user);
        failures := failures || CASE WHEN strict_mode THEN message END;
        RAISE WARNING '%: %', warning_is, message;
    END IF;

    -- Ours only: a run that died left them on its session (prepared statements outlive transactions).
    FOR prepared IN SELECT p.name FROM pg_prepared_statements AS p WHERE p.name LIKE 'upstream\_indexes\_traffic\_%' LOOP
        EXECUTE format('DEALLOCATE %I', prepared);
    END LOOP;

    FOR statement IN EXECUTE format($top$
        SELECT s.queryid, min(s.query) AS query, sum(s.calls)::bigint AS calls,
               sum(coalesce(to_jsonb(s) ->> 'total_exec_time', to_jsonb(s) ->> 'total_time')::float8) AS total_ms
        FROM %I.pg_stat_statements AS s
        WHERE s.dbid = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
          AND s.query ~* $1 AND s.query ~* $2
        GROUP BY s.queryid
        ORDER BY total_ms DESC, s.queryid
        LIMIT $3
    $top$, pgss_schema) USING statement_kind, names_a_table, top
    LOOP
        rank := rank + 1;
        checks := checks + 1;
        prepared := format('upstream_indexes_traffic_%s', rank);
        plan := NULL;
        problem := NULL;
        BEGIN
            IF generic_plan THEN
                EXECUTE format('EXPLAIN (GENERIC_PLAN, FORMAT JSON) %s', statement.query) INTO plan;
            ELSE
                EXECUTE format('PREPARE %I AS %s', prepared, statement.query);
                SELECT cardinality(p.parameter_types) INTO params FROM pg_prepared_statements AS p
                WHERE p.name = prepared;
                EXECUTE format('EXPLAIN (FORMAT JSON) EXECUTE %I%s', prepared,
                               CASE WHEN params > 0 THEN '(' || array_to_string(array_fill('NULL'::text, ARRAY[params]),
                                                                                ', ') || ')' ELSE '' END)
                INTO plan;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            problem := SQLERRM;
        END;
        -- A prepared statement outlives the subtransaction that made it, failed or not.
        IF EXISTS (SELECT FROM pg_prepared_statements AS p WHERE p.name = prepared) THEN
            EXECUTE format('DEALLOCATE %I', prepared);
        END IF;

        -- What the plan reads (a partition counts as its table, a partition's index attached to ours
        -- as ours, a Citus shard as what it is a shard of), what it filters on, which of ours it uses.
        WITH nodes AS (
            SELECT node->>'Node Type' || CASE WHEN node->>'Scan Direction' = 'Backward' THEN ' Backward' ELSE '' END
                       AS node_type,
                   node->>'Relation Name' AS relation,
                   node->>'Index Name' AS index_name,
                   coalesce((SELECT t.relname FROM pg_inherits AS h JOIN pg_class AS pc ON pc.oid = h.inhrelid
                             JOIN pg_class AS t ON t.oid = h.inhparent AND t.relkind = 'p'
                             WHERE pc.relname = node->>'Relation Name' AND pg_table_is_visible(t.oid) LIMIT 1),
                            regexp_replace(node->>'Relation Name', shard_suffix, '')) AS table_name,
                   coalesce((SELECT pi.relname FROM pg_inherits AS h JOIN pg_class AS ci ON ci.oid = h.inhrelid
                             JOIN pg_class AS pi ON pi.oid = h.inhparent
                             WHERE ci.relname = node->>'Index Name' LIMIT 1),
                            regexp_replace(node->>'Index Name', shard_suffix, '')) AS index_of,
                   concat_ws(' ', node->>'Index Cond', node->>'Recheck Cond', node->>'Filter') AS conditions
            FROM jsonb_path_query(coalesce(plan, '[]'), 'strict $.** ? (exists (@."Node Type"))') AS node
        ), ours AS (
            SELECT i.index_name, i.table_name,
                   substring(i.definition FROM 'USING \w+ \(\s*"?(\w+)') AS leading_column
            FROM jsonb_to_recordset(current_setting('upstream_indexes.expected_indexes')::jsonb)
                AS i (index_name text, table_name text, definition text)
        ), used AS (
            SELECT o.index_name, o.table_name, n.node_type FROM ours AS o JOIN nodes AS n ON n.index_of = o.index_name
        ), filtered AS (
            SELECT DISTINCT o.index_name, o.table_name, o.leading_column
            FROM ours AS o JOIN nodes AS n ON n.table_name = o.table_name
                                          AND n.conditions ~ ('\m' || o.leading_column || '\M')
        )
        SELECT coalesce((SELECT string_agg(concat(n.node_type, ' using ' || n.index_name, ' on ' || n.relation), ', ')
                         FROM nodes AS n WHERE n.relation IS NOT NULL OR n.index_name IS NOT NULL), 'no scan') AS scans,
               ARRAY(SELECT DISTINCT u.node_type || ' using ' || u.index_name FROM used AS u) AS uses,
               (SELECT bool_and(u.node_type = 'Index Only Scan') FROM used AS u) AS index_only,
               ARRAY(SELECT f.index_name FROM filtered AS f ORDER BY 1) AS filters_leading_column_of,
               ARRAY(SELECT f.index_name FROM filtered AS f
                     WHERE NOT EXISTS (SELECT FROM used AS u WHERE u.table_name = f.table_name) ORDER BY 1) AS misses,
               (SELECT string_agg(DISTINCT format('%s, the leading column of %s', f.leading_column, f.index_name), '; ')
                FROM filtered AS f WHERE NOT EXISTS (SELECT FROM used AS u WHERE u.table_name = f.table_name))
                   AS missed_columns
        INTO found;

        stats := format('%s calls, mean %s ms', statement.calls,
                        round((statement.total_ms / greatest(statement.calls, 1))::numeric, 3));
        shown := regexp_replace(statement.query, '\s+', ' ', 'g');
        shown := CASE WHEN length(shown) > 160 THEN left(shown, 157) || '...' ELSE shown END;
        data := jsonb_build_object(
            'rank', rank, 'queryid', statement.queryid::text, 'query', statement.query, 'calls', statement.calls,
            'total_ms', round(statement.total_ms::numeric, 3),
            'mean_ms', round((statement.total_ms / greatest(statement.calls, 1))::numeric, 3),
            'plan', CASE WHEN problem IS NULL THEN found.scans END, 'uses', to_jsonb(found.uses),
            'index_only', found.index_only, 'filters_leading_column_of', to_jsonb(found.filters_leading_column_of),
            'misses', to_jsonb(found.misses), 'problem', problem);
        IF problem IS NOT NULL THEN
            status := warning_is;
            message := format('traffic %s: could not plan it (%s); %s: %s', rank, problem, stats, shown);
        ELSIF cardinality(found.uses) > 0 THEN
            status := 'pass';
            message := format('traffic %s: %s (%s): %s', rank, array_to_string(found.uses, ', '), stats, shown);
        ELSIF cardinality(found.misses) > 0 THEN
            status := warning_is;
            message := format('traffic %s: filters on %s, but its plan uses none of ours: %s (%s): %s', rank,
                              found.missed_columns, found.scans, stats, shown);
        ELSE
            status := 'pass';
            message := format('traffic %s: not ours to serve (it filters on none of their leading columns): %s '
                              '(%s): %s', rank, found.scans, stats, shown);
        END IF;
        IF status = 'pass' THEN
            RAISE NOTICE 'pass: %', message USING DETAIL = data::text;
        ELSE
            failures := failures || CASE WHEN status = 'fail' THEN message END;
            RAISE WARNING '%: %', status, message USING DETAIL = data::text;
        END IF;
    END LOOP;

    failures := array_remove(failures, NULL);
    IF cardinality(failures) > 0 THEN
        RAISE EXCEPTION 'verify/traffic.sql: % of % checks failed', cardinality(failures), checks
            USING DETAIL = array_to_string(failures, E'\n');
    END IF;
END
$traffic$;

ROLLBACK;
