-- Plan checks: the planner answers each of the app's queries (app_queries.sql)
-- with an Index Only Scan on the covering index its `-- expect:` line names;
-- and each index migrations/ builds is expected by some query (expected.sql).
--
-- Read-only: one READ ONLY transaction, ended by ROLLBACK. Run it as it is:
--   psql -v ON_ERROR_STOP=1 -f verify/plans.sql
-- Options, as settings (e.g. PGOPTIONS='-c upstream_indexes.strict=on'):
--   upstream_indexes.strict = on   a warning fails its check
--   upstream_indexes.analyze = on  also EXPLAIN (ANALYZE, BUFFERS): heap fetches
-- Each check prints one line: `pass: ...` (NOTICE), `warn: ...` or `fail: ...`
-- (WARNING). When any check failed the script ends with an ERROR counting them
-- (psql exits 3). `invoke verify` runs this same file.
--
-- For each query: the customer is the table's busiest (the first of
-- pg_stats.most_common_vals for customer_id), else the customer of any row.
-- No Index Only Scan on the expected index: planned again in the same
-- transaction with sequential and bitmap scans off (SET LOCAL). Taken then:
-- the index serves the query but on this data the planner prefers another
-- path (e.g. a nearly empty table): a warning naming the table's row count
-- and how much of it is all-visible. Not taken even then: the index cannot
-- serve the query: a failure. An index no query expects: a warning.
--
-- On a Citus coordinator a query for one customer is a router query: its plan
-- is the shard's plan on a worker, under a `Custom Scan (Citus Adaptive)` node,
-- and names the shard table and shard index (<name>_<shardid>); those count as
-- the table and index they are shards of.
--
-- On a partitioned table the plan scans partitions: a partition counts as its
-- table and a partition's index attached to ours as ours; every partition the
-- plan scans must be an Index Only Scan on it (one of at most one page may be
-- read another way), and a query whose index
-- condition bounds the partition key must scan fewer partitions than there are
-- (pruning at planning or at executor start, "Subplans Removed").
BEGIN READ ONLY;
SET LOCAL client_min_messages = notice;
-- The app (Django) sends its values as literals: plan every EXECUTE for its
-- own customer id (a custom plan), as the app's queries are planned.
SET LOCAL plan_cache_mode = force_custom_plan;
-- Locks: PREPARE and EXPLAIN take ACCESS SHARE on the tables; never queue
-- long behind DDL (a pending ACCESS EXCLUSIVE would make us wait, and others
-- queue behind us).
SET LOCAL lock_timeout = '5s';
\ir expected.sql
-- The catalogue prepared below, alone (this file may run twice in one
-- session): statements prepared with SQL PREPARE go, the protocol-level ones
-- of drivers and poolers stay. Prepared statements outlive ROLLBACK: the
-- checks below deallocate the catalogue again, so that behind a pooler none
-- stays on the server connection.
DO $deallocate$
DECLARE
    prepared text;
BEGIN
    FOR prepared IN SELECT name FROM pg_prepared_statements WHERE from_sql LOOP
        EXECUTE format('DEALLOCATE %I', prepared);
    END LOOP;
END
$deallocate$;
\ir app_queries.sql

DO $verify$
DECLARE
    strict_mode CONSTANT boolean := coalesce(current_setting('upstream_indexes.strict', true), '')
                               IN ('on', 'true', 'yes', '1');
    analyze_mode CONSTANT boolean := coalesce(current_setting('upstream_indexes.analyze', true), '')
                                IN ('on', 'true', 'yes', '1');
    warning_is CONSTANT text := CASE WHEN strict_mode THEN 'fail' ELSE 'warn' END;
    seqscan CONSTANT text := current_setting('enable_seqscan');
    bitmapscan CONSTANT text := current_setting('enable_bitmapscan');
    shard_suffix CONSTANT text := CASE WHEN to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL
                                       THEN '_[0-9]+$' ELSE '$^' END;  -- Citus: what to strip from a name
    statement_name text;
    unexercised text;
    query record;
    customer bigint;
    plan jsonb;
    fallback boolean;
    uses_index boolean;
    scans text;
    chosen_scans text;
    table_facts text;
    heap_fetches numeric;
    index_rows numeric;
    buffers numeric;
    failures text[] := '{}';
    checks int := 0;
    message text;
    partitioned boolean;
    part_key text;
    parts record;
    part_note text;
    unpruned boolean;
BEGIN
    FOR statement_name IN
        SELECT s.name FROM pg_prepared_statements AS s WHERE s.from_sql ORDER BY s.prepare_time, s.name
    LOOP
        checks := checks + 1;
        -- The table it reads: the one its plan scans (for any customer id; 0 here).
        EXECUTE format('EXPLAIN (FORMAT JSON) EXECUTE %I(0)', statement_name) INTO plan;
        SELECT string_agg(DISTINCT coalesce(
                   (SELECT t.relname FROM pg_inherits AS h JOIN pg_class AS pc ON pc.oid = h.inhrelid
                    JOIN pg_class AS t ON t.oid = h.inhparent AND t.relkind = 'p'
                    WHERE pc.relname = node->>'Relation Name' AND pg_table_is_visible(t.oid) LIMIT 1),
                   regexp_replace(node->>'Relation Name', shard_suffix, '')), ', ') INTO scans
        FROM jsonb_path_query(plan, 'strict $.** ? (exists (@."Relation Name"))') AS node;
        -- The index its `-- expect:` line names, and that index's table, as its migration has it.
        query := NULL;
        SELECT statement_name AS name, p.index_name, i.table_name, to_regclass(i.table_name) AS table_oid
        INTO query
        FROM jsonb_to_recordset(current_setting('upstream_indexes.expected_plans')::jsonb)
            AS p (query_name text, index_name text)
        LEFT JOIN jsonb_to_recordset(current_setting('upstream_indexes.expected_indexes')::jsonb)
            AS i (index_name text, table_name text) USING (index_name)
        WHERE p.query_name = statement_name;
        message := CASE
            WHEN query.index_name IS NULL THEN
                format('plan %s: expected an index for it in expected.sql, found none (regenerate it: '
                       '`invoke expected`)', statement_name)
            WHEN query.table_name IS NULL THEN
                format('plan %s: expected %s to be built by a migration, found no migration that builds it',
                       statement_name, query.index_name)
            WHEN scans IS DISTINCT FROM query.table_name THEN
                format('plan %s: expected a query on %s (the table of %s), found one on %s',
                       statement_name, query.table_name, query.index_name, coalesce(scans, 'no table'))
        END;
        IF message IS NOT NULL THEN
            failures := failures || message;
            RAISE WARNING 'fail: %', message;
            CONTINUE;
        END IF;

        SELECT (s.most_common_vals::text::bigint[])[1] INTO customer
        FROM pg_stats AS s JOIN pg_class AS t ON t.relname = s.tablename
        JOIN pg_namespace AS n ON n.oid = t.relnamespace AND n.nspname = s.schemaname
        WHERE t.oid = query.table_oid AND s.attname = 'customer_id'
        ORDER BY s.inherited
        LIMIT 1;
        IF customer IS NULL THEN
            EXECUTE format('SELECT customer_id FROM %s LIMIT 1', query.table_oid::regclass) INTO customer;
        END IF;
        customer := coalesce(customer, 0);  -- an empty table: any id plans the same
        SELECT c.relkind = 'p', substring(pg_get_partkeydef(c.oid) FROM '\((\w+)\)') INTO partitioned, part_key
        FROM pg_class AS c WHERE c.oid = query.table_oid;

        fallback := false;
        LOOP
            EXECUTE format('EXPLAIN (FORMAT JSON) EXECUTE %I(%s)', query.name, customer) INTO plan;
            SELECT coalesce(bool_or(node->>'Node Type' = 'Index Only Scan'
                                    AND (regexp_replace(node->>'Index Name', shard_suffix, '') = query.index_name
                                         OR node->>'Index Name' IN (SELECT pc.relname FROM pg_inherits AS h
                                                                    JOIN pg_class AS pc ON pc.oid = h.inhrelid
                                                                    WHERE h.inhparent = to_regclass(query.index_name))))
                            -- A partition of at most one page (a month to come, or just begun) may be read another
                            -- way: a sequential scan reads it as cheaply as any index.
                            AND NOT (partitioned AND bool_or(node ? 'Relation Name' AND NOT (
                                         EXISTS (SELECT FROM pg_class AS e WHERE e.relname = node->>'Relation Name'
                                                 AND e.relpages <= 1 AND pg_table_is_visible(e.oid))
                                         OR node->>'Node Type' = 'Index Only Scan'
                                         AND node->>'Index Name' IN (SELECT pc.relname FROM pg_inherits AS h
                                                                     JOIN pg_class AS pc ON pc.oid = h.inhrelid
                                                                     WHERE h.inhparent = to_regclass(query.index_name))))),
                            false),
                   coalesce(string_agg(concat(node->>'Node Type', ' using ' || (node->>'Index Name'),
                                              ' on ' || (node->>'Relation Name')), ', '), 'no scan')
            INTO uses_index, scans
            FROM jsonb_path_query(plan, 'strict $.** ? (exists (@."Relation Name") || exists (@."Index Name"))')
                AS node;
            IF NOT fallback THEN
                chosen_scans := scans;
            END IF;
            EXIT WHEN uses_index OR fallback;
            -- Not chosen: can the index serve the query at all?
            fallback := true;
            PERFORM set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
        END LOOP;
        PERFORM set_config('enable_seqscan', seqscan, true), set_config('enable_bitmapscan', bitmapscan, true);

        -- What the planner knew of the table: its size and how much of it the
        -- visibility map covers (an index-only scan must visit the rest).
        SELECT format('%s: %s, %s of %s pages all-visible', c.oid::regclass,
                      CASE WHEN c.reltuples < 0 THEN 'never analyzed'
                           ELSE format('%s rows as last analyzed', c.reltuples::bigint) END,
                      c.relallvisible, c.relpages)
               || CASE WHEN c.relallvisible < c.relpages
                       THEN format('; VACUUM (ANALYZE) %s may change the plan', c.oid::regclass) ELSE '' END
        INTO table_facts
        FROM pg_class AS c WHERE c.oid = query.table_oid;

        -- Partitions: how many the plan scans of how many, and whether a bound on the key pruned any.
        part_note := '';
        unpruned := false;
        IF partitioned THEN
            SELECT count(DISTINCT node->>'Relation Name') FILTER (WHERE node ? 'Relation Name') AS scanned,
                   (SELECT count(*) FROM pg_inherits AS h WHERE h.inhparent = query.table_oid) AS total,
                   coalesce(sum((node->>'Subplans Removed')::int), 0) AS removed,
                   coalesce(bool_or(node->>'Index Cond' ~ ('\m' || part_key || ' [<>=]')), false) AS bounded
            INTO parts
            FROM jsonb_path_query(plan, 'strict $.** ? (exists (@."Relation Name") || exists (@."Subplans Removed"))')
                AS node;
            part_note := format('; %s of %s partitions scanned', parts.scanned, parts.total);
            unpruned := parts.bounded AND parts.scanned >= parts.total AND parts.total > 1;
        END IF;

        IF unpruned THEN
            message := format('plan %s: expected partition pruning (its index condition bounds %s), found all %s '
                              'partitions scanned (customer %s): %s', query.name, part_key, parts.total, customer,
                              chosen_scans);
            failures := failures || message;
            RAISE WARNING 'fail: %', message;
        ELSIF uses_index AND NOT fallback THEN
            RAISE NOTICE 'pass: plan %: Index Only Scan on % (customer %)%', query.name, query.index_name,
                customer, part_note;
        ELSIF uses_index THEN
            message := format('plan %s: on this data the planner prefers %s (customer %s; %s); '
                              'with sequential and bitmap scans off it takes the Index Only Scan on %s%s',
                              query.name, chosen_scans, customer, table_facts, query.index_name, part_note);
            IF strict_mode THEN
                failures := failures || message;
            END IF;
            RAISE WARNING '%: %', warning_is, message;
        ELSE
            message := format('plan %s: expected an Index Only Scan on %s, found %s, '
                              'and with sequential and bitmap scans off %s (customer %s; %s)',
                              query.name, query.index_name, chosen_scans, scans, customer, table_facts);
            failures := failures || message;
            RAISE WARNING 'fail: %', message;
        END IF;

        -- Heap fetches: index-only scans skip the table only where the
        -- visibility map says all-visible; VACUUM brings it up to date.
        IF analyze_mode AND uses_index AND NOT fallback THEN
            checks := checks + 1;
            EXECUTE format('EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE %I(%s)', query.name, customer)
            INTO plan;
            SELECT sum((node->>'Heap Fetches')::numeric),
                   round(sum((node->>'Actual Rows')::numeric * (node->>'Actual Loops')::numeric))
            INTO heap_fetches, index_rows
            FROM jsonb_path_query(plan, 'strict $.** ? (@."Node Type" == "Index Only Scan")') AS node
            WHERE node->>'Index Name' = query.index_name;
            buffers := (plan->0->'Plan'->>'Shared Hit Blocks')::numeric
                       + (plan->0->'Plan'->>'Shared Read Blocks')::numeric;
            IF heap_fetches = 0 THEN
                RAISE NOTICE 'pass: heap fetches %: 0 for % index rows, % buffers (visibility map current)',
                    query.name, index_rows, buffers;
            ELSE
                message := format('heap fetches %s: %s for %s index rows, %s buffers: the visibility map of %s '
                                  'is behind; VACUUM (ANALYZE) %s is due',
                                  query.name, heap_fetches, index_rows, buffers, query.table_oid::regclass,
                                  query.table_oid::regclass);
                IF strict_mode THEN
                    failures := failures || message;
                END IF;
                RAISE WARNING '%: %', warning_is, message;
            END IF;
        END IF;
    END LOOP;

    IF checks = 0 THEN
        failures := failures || 'plans: expected the prepared statements of app_queries.sql, found none'::text;
        RAISE WARNING 'fail: %', failures[1];
    END IF;

    -- Every index a migration builds is one some app query must use: else nothing proves it serves. But a
    -- unique index: it is there to enforce its key (indexes.sql proves it unique), not to serve a query.
    FOR unexercised IN
        SELECT i.index_name
        FROM jsonb_to_recordset(current_setting('upstream_indexes.expected_indexes')::jsonb)
            AS i (index_name text, "unique" boolean)
        WHERE NOT coalesce(i.unique, false) AND NOT EXISTS (SELECT FROM jsonb_to_recordset(current_setting('upstream_indexes.expected_plans')::jsonb)
                              AS p (index_name text)
                          WHERE p.index_name = i.index_name)
    LOOP
        checks := checks + 1;
        message := format('coverage %s: no app query exercises it (add one to verify/app_queries.sql with '
                          '`-- expect: %s`)', unexercised, unexercised);
        IF strict_mode THEN
            failures := failures || message;
        END IF;
        RAISE WARNING '%: %', warning_is, message;
    END LOOP;
    FOR statement_name IN SELECT s.name FROM pg_prepared_statements AS s WHERE s.from_sql LOOP
        EXECUTE format('DEALLOCATE %I', statement_name);
    END LOOP;
    IF cardinality(failures) > 0 THEN
        RAISE EXCEPTION 'verify/plans.sql: % of % checks failed', cardinality(failures), checks
            USING DETAIL = array_to_string(failures, E'\n');
    END IF;
END
$verify$;

ROLLBACK;
