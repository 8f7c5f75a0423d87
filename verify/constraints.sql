-- Constraint checks: each constraint a migration adds (a CHECK, a foreign
-- key, a UNIQUE or PRIMARY KEY promoted from an index) exists once on its
-- table, is validated (not left NOT VALID), has the definition its migration
-- gives it, compared as PostgreSQL canonicalises both (definitions.sql), and
-- a promoted one uses our index, valid. Which constraints: every constraint
-- migration in migrations/, as expected.sql lists them.
--
-- Read-only: one READ ONLY transaction, ended by ROLLBACK. Run it as it is:
--   psql -v ON_ERROR_STOP=1 -f verify/constraints.sql
-- Each check prints one line: `pass: constraint <name>: ...` (NOTICE), or
-- `fail: constraint <name>: expected ..., found ...` (WARNING). When any check
-- failed the script ends with an ERROR counting them (psql exits 3).
-- `invoke verify` runs this same file, after indexes.sql.
-- "Once": no other constraint of the table checks the same thing (another
-- CHECK of the same expression, compared as the server plans both; another
-- foreign key of the same definition), e.g. one a Django AddConstraint added
-- too under another name, which would make every write pay twice.
BEGIN READ ONLY;
SET LOCAL client_min_messages = notice;
-- pg_get_constraintdef and EXPLAIN take ACCESS SHARE on the table: never queue
-- long behind DDL (a pending ACCESS EXCLUSIVE would make us wait, and others
-- queue behind us).
SET LOCAL lock_timeout = '5s';
\ir expected.sql
\ir definitions.sql

DO $verify$
DECLARE
    want record;
    found record;
    twin text;
    other record;
    plan jsonb;
    same boolean;
    differences jsonb;
    problems text[];
    failures text[] := '{}';
    checks int := 0;
    message text;
BEGIN
    FOR want IN
        SELECT v.constraint_name, v.table_name, to_regclass(v.table_name) AS table_oid, v.definition, v.type,
               v.index_name
        FROM jsonb_to_recordset(current_setting('upstream_indexes.expected_constraints')::jsonb)
            AS v (constraint_name text, table_name text, definition text, type text, index_name text)
    LOOP
        checks := checks + 1;
        problems := '{}';
        SELECT c.oid, c.contype, c.convalidated, pg_get_constraintdef(c.oid) AS definition, c.conindid,
               pg_get_expr(c.conbin, c.conrelid) AS expression,
               (SELECT coalesce(i.indisvalid AND i.indisready AND i.indislive, false)
                FROM pg_index AS i WHERE i.indexrelid = c.conindid) AS index_usable
        INTO found
        FROM pg_constraint AS c
        WHERE c.conrelid = want.table_oid AND c.conname = want.constraint_name;

        IF want.table_oid IS NULL THEN
            problems := problems || format('expected on table %s, found no such table', want.table_name);
        ELSIF found.oid IS NULL THEN
            problems := problems || format('expected on %s, found no constraint of this name there (`invoke '
                                           'migrate` adds it)', want.table_oid::regclass);
        ELSE
            differences := current_setting('upstream_indexes.constraint_differences')::jsonb -> want.constraint_name;
            IF jsonb_array_length(coalesce(differences, '[]')) > 0 THEN
                problems := problems || format('expected %s, found %s (%s)', want.definition, found.definition,
                    (SELECT string_agg(d, '; ') FROM jsonb_array_elements_text(differences) AS d));
            ELSIF NOT found.convalidated THEN
                problems := problems || format('expected validated, found NOT VALID: the rows written before it '
                                               'was added are not checked (`invoke migrate` validates it)');
            END IF;
            IF found.conindid <> 0 AND NOT found.index_usable THEN
                problems := problems || format('expected its index %s valid, found it INVALID', want.index_name);
            END IF;
            -- Another CHECK of the same expression (compared as the server plans both), or another foreign
            -- key of the same definition (pg_get_constraintdef: the catalog's own spelling of both).
            twin := NULL;
            FOR other IN
                SELECT c.conname, pg_get_expr(c.conbin, c.conrelid) AS expression, pg_get_constraintdef(c.oid) AS definition
                FROM pg_constraint AS c
                WHERE c.conrelid = want.table_oid AND c.oid <> found.oid AND c.contype = found.contype
                  AND found.contype IN ('c', 'f')
                ORDER BY c.conname
            LOOP
                IF found.contype = 'c' THEN
                    EXECUTE format('EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) SELECT (%s), (%s) FROM ONLY %s',
                                   found.expression, other.expression, want.table_oid::regclass) INTO plan;
                    same := plan->0->'Plan'->'Output'->>0 = plan->0->'Plan'->'Output'->>1;
                ELSE
                    same := regexp_replace(other.definition, ' NOT VALID$', '')
                            = regexp_replace(found.definition, ' NOT VALID$', '');
                END IF;
                IF same THEN
                    twin := concat_ws(', ', twin, other.conname);
                END IF;
            END LOOP;
            IF twin IS NOT NULL THEN
                problems := problems || format('expected once, found the same %s constraint also as %s',
                                               want.type, twin);
            END IF;
        END IF;

        IF cardinality(problems) = 0 THEN
            RAISE NOTICE 'pass: constraint %: on %, validated, once, definition %', want.constraint_name,
                want.table_oid::regclass, want.definition
                || CASE WHEN want.index_name IS NOT NULL THEN format(' (index %s, valid)', want.index_name) ELSE '' END;
        ELSE
            message := format('constraint %s: %s', want.constraint_name, array_to_string(problems, '; '));
            failures := failures || message;
            RAISE WARNING 'fail: %', message;
        END IF;
    END LOOP;

    IF cardinality(failures) > 0 THEN
        RAISE EXCEPTION 'verify/constraints.sql: % of % checks failed', cardinality(failures), checks
            USING DETAIL = array_to_string(failures, E'\n');
    END IF;
END
$verify$;

ROLLBACK;
