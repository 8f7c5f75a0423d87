-- Definitions compared as PostgreSQL canonicalises them, never as text: for each
-- index and constraint of ours that exists, every way it differs from the
-- migration file's definition (none: it is ours, in whatever spelling).
-- indexes.sql and constraints.sql include it after expected.sql; `invoke
-- migrate` and `status` run this same file, so all of them agree.
--
-- Reads (for its transaction): upstream_indexes.expected_indexes and
-- upstream_indexes.expected_constraints (expected.sql). Sets, for its
-- transaction only: upstream_indexes.index_differences and
-- upstream_indexes.constraint_differences, JSON objects from each name that
-- exists to its differences, e.g. ["key 2: found lower((payer)::text), ours
-- upper(payer)"]; a name that does not exist (or is not an index) is absent.
--
-- How, piece by piece, from the catalog's own columns (pg_index, pg_constraint):
-- unique, method, each key's column, collation, operator class and order,
-- INCLUDE, NULLS NOT DISTINCT; a foreign key's columns, referenced table and
-- columns, actions, MATCH and deferrability. Expressions (index keys, a WHERE,
-- a CHECK) are the part PostgreSQL rewrites (`status = 'failed'` is stored as
-- `((status)::text = 'failed'::text)`): the file's text and the catalog's
-- (pg_get_indexdef, pg_get_expr) are both planned by the server, in one
-- EXPLAIN (VERBOSE) SELECT <ours>, <found> FROM ONLY <table>, and the two
-- outputs compared. EXPLAIN creates nothing, executes nothing and needs no
-- write: it takes only ACCESS SHARE on the table for the transaction, as
-- any SELECT (a temporary twin of the object would need a write and a lock;
-- a text comparison would call every other spelling foreign).
-- Where the plan does not show them (a Citus distributed table, planned on
-- its shards), the texts are compared as written: never a false "ours".
DO $definitions$
DECLARE
    want jsonb;
    key jsonb;
    ix record;
    con record;
    tbl regclass;
    keyno int;
    found_attnum int;
    found_text text;
    ours_text text;
    differences text[];
    pairs text[];  -- ours, found, label, ours, found, label, ...
    plan jsonb;
    outputs jsonb;
    pair int;
    natural_collation text;
    found_collation text;
    wanted_collation oid;
    opclass record;
    found_columns text[];
    index_result jsonb := '{}';
    constraint_result jsonb := '{}';
BEGIN
    FOR want IN SELECT e FROM jsonb_array_elements(
                    coalesce(nullif(current_setting('upstream_indexes.expected_indexes', true), ''), '[]')::jsonb) AS e
    LOOP
        SELECT i.*, c.relname, am.amname, coalesce((to_jsonb(i)->>'indnullsnotdistinct')::boolean, false) AS nnd,
               pg_get_expr(i.indpred, i.indrelid) AS predicate
        INTO ix
        FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid JOIN pg_am AS am ON am.oid = c.relam
        WHERE i.indexrelid = to_regclass(want->>'index_name');
        CONTINUE WHEN NOT FOUND;
        differences := '{}';
        pairs := '{}';
        tbl := to_regclass(want->>'table_name');
        IF tbl IS DISTINCT FROM ix.indrelid THEN
            index_result := index_result || jsonb_build_object(want->>'index_name', jsonb_build_array(
                format('on table %s, ours is on %s', ix.indrelid::regclass, want->>'table_name')));
            CONTINUE;
        END IF;
        IF ix.indisunique <> (want->>'unique')::boolean THEN
            differences := differences || format('%s, ours is %s',
                CASE WHEN ix.indisunique THEN 'unique' ELSE 'not unique' END,
                CASE WHEN ix.indisunique THEN 'not unique' ELSE 'unique' END);
        END IF;
        IF ix.amname <> want->>'method' THEN
            differences := differences || format('method %s, ours %s', ix.amname, want->>'method');
        END IF;
        IF ix.indnkeyatts <> jsonb_array_length(want->'keys') THEN
            differences := differences || format('%s key columns, ours %s', ix.indnkeyatts,
                                                 jsonb_array_length(want->'keys'));
        ELSE
            FOR keyno IN 0 .. ix.indnkeyatts - 1 LOOP
                key := want->'keys'->keyno;
                found_attnum := ix.indkey[keyno];
                found_text := pg_get_indexdef(ix.indexrelid, keyno + 1, false);
                ours_text := coalesce(key->>'column', key->>'expression');
                IF key->>'column' IS NOT NULL THEN
                    IF found_attnum = 0 OR found_text IS DISTINCT FROM key->>'column' THEN
                        differences := differences || format('key %s: found %s, ours %s', keyno + 1, found_text,
                                                             ours_text);
                    END IF;
                ELSIF found_attnum <> 0 THEN
                    differences := differences || format('key %s: found %s, ours %s', keyno + 1, found_text,
                                                         ours_text);
                ELSE
                    pairs := pairs || ARRAY[key->>'expression', found_text, format('key %s', keyno + 1)];
                END IF;
                -- Collation: the file's, or else the key's own (the column's, the expression's).
                SELECT CASE WHEN pg_collation_is_visible(c.oid) THEN quote_ident(c.collname)
                            ELSE quote_ident(n.nspname) || '.' || quote_ident(c.collname) END
                INTO found_collation
                FROM pg_collation AS c JOIN pg_namespace AS n ON n.oid = c.collnamespace
                WHERE c.oid = ix.indcollation[keyno];
                IF key->>'collation' IS NOT NULL THEN
                    SELECT c.oid INTO wanted_collation
                    FROM pg_collation AS c JOIN pg_namespace AS n ON n.oid = c.collnamespace
                    WHERE format('%I.%I', n.nspname, c.collname) = key->>'collation'
                       OR (format('%I', c.collname) = key->>'collation' AND pg_collation_is_visible(c.oid))
                       OR (c.collname = lower(key->>'collation') AND pg_collation_is_visible(c.oid));
                    IF wanted_collation IS DISTINCT FROM ix.indcollation[keyno] THEN
                        differences := differences || format('key %s: collation %s, ours %s', keyno + 1,
                                                             coalesce(found_collation, 'none'), key->>'collation');
                    END IF;
                ELSIF found_collation IS NOT NULL THEN
                    IF key->>'column' IS NOT NULL THEN
                        SELECT CASE WHEN a.attcollation = ix.indcollation[keyno] THEN found_collation END
                        INTO natural_collation
                        FROM pg_attribute AS a WHERE a.attrelid = tbl AND a.attname = key->>'column';
                    ELSE
                        BEGIN
                            EXECUTE format('SELECT pg_collation_for(%s) FROM (SELECT) AS one LEFT JOIN ONLY %s ON false',
                                           key->>'expression', tbl) INTO natural_collation;
                        EXCEPTION WHEN OTHERS THEN
                            natural_collation := NULL;
                        END;
                    END IF;
                    IF natural_collation IS DISTINCT FROM found_collation THEN
                        differences := differences || format('key %s: collation %s, ours the key''s own%s',
                            keyno + 1, found_collation, coalesce(' (' || natural_collation || ')', ''));
                    END IF;
                END IF;
                SELECT o.opcname, o.opcdefault INTO opclass FROM pg_opclass AS o WHERE o.oid = ix.indclass[keyno];
                IF (key->>'opclass' IS NULL AND NOT opclass.opcdefault)
                   OR (key->>'opclass' IS NOT NULL AND opclass.opcname <> key->>'opclass') THEN
                    differences := differences || format('key %s: operator class %s, ours %s', keyno + 1,
                        opclass.opcname, coalesce(key->>'opclass', 'the default'));
                END IF;
                IF (ix.indoption[keyno] & 3) <> (key->>'option')::int THEN
                    differences := differences || format('key %s: %s, ours %s', keyno + 1,
                        CASE WHEN ix.indoption[keyno] & 1 = 1 THEN 'DESC' ELSE 'ASC' END
                            || CASE WHEN ix.indoption[keyno] & 2 = 2 THEN ' NULLS FIRST' ELSE ' NULLS LAST' END,
                        CASE WHEN (key->>'option')::int & 1 = 1 THEN 'DESC' ELSE 'ASC' END
                            || CASE WHEN (key->>'option')::int & 2 = 2 THEN ' NULLS FIRST' ELSE ' NULLS LAST' END);
                END IF;
            END LOOP;
        END IF;
        found_columns := ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, false)
                               FROM generate_series(ix.indnkeyatts + 1, ix.indnatts) AS k ORDER BY k);
        IF found_columns <> ARRAY(SELECT jsonb_array_elements_text(want->'include')) THEN
            differences := differences || format('INCLUDE (%s), ours (%s)', array_to_string(found_columns, ', '),
                array_to_string(ARRAY(SELECT jsonb_array_elements_text(want->'include')), ', '));
        END IF;
        IF ix.nnd <> (want->>'nulls_not_distinct')::boolean THEN
            differences := differences || format('NULLS %sDISTINCT, ours NULLS %sDISTINCT',
                CASE WHEN ix.nnd THEN 'NOT ' ELSE '' END, CASE WHEN ix.nnd THEN '' ELSE 'NOT ' END);
        END IF;
        IF (ix.predicate IS NULL) <> (want->>'predicate' IS NULL) THEN
            differences := differences || format('WHERE %s, ours %s', coalesce(ix.predicate, 'none (a full index)'),
                                                 coalesce(want->>'predicate', 'none (a full index)'));
        ELSIF ix.predicate IS NOT NULL THEN
            pairs := pairs || ARRAY[want->>'predicate', ix.predicate, 'WHERE'];
        END IF;
        -- The expressions, ours and the catalog's, as the server plans them.
        IF cardinality(pairs) > 0 THEN
            BEGIN
                EXECUTE format('EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) SELECT %s FROM ONLY %s',
                               (SELECT string_agg(format('(%s)', pairs[k]), ', ')
                                FROM generate_series(1, cardinality(pairs)) AS k WHERE k % 3 <> 0), tbl)
                INTO plan;
                outputs := plan->0->'Plan'->'Output';
                IF plan->0->'Plan'->>'Node Type' = 'Custom Scan' OR jsonb_array_length(outputs) <> cardinality(pairs) / 3 * 2 THEN
                    outputs := NULL;
                END IF;
            EXCEPTION WHEN OTHERS THEN
                outputs := NULL;
                differences := differences || format('ours does not plan on %s: %s', tbl, SQLERRM);
            END;
            FOR pair IN 0 .. cardinality(pairs) / 3 - 1 LOOP
                IF (outputs IS NOT NULL AND outputs->>(2 * pair) IS DISTINCT FROM outputs->>(2 * pair + 1))
                   OR (outputs IS NULL AND regexp_replace(pairs[3 * pair + 1], '\s+', ' ', 'g')
                                           IS DISTINCT FROM regexp_replace(pairs[3 * pair + 2], '\s+', ' ', 'g')) THEN
                    differences := differences || format('%s: found %s, ours %s', pairs[3 * pair + 3], pairs[3 * pair + 2],
                                                         pairs[3 * pair + 1]);
                END IF;
            END LOOP;
        END IF;
        index_result := index_result || jsonb_build_object(want->>'index_name', to_jsonb(differences));
    END LOOP;

    FOR want IN SELECT e FROM jsonb_array_elements(
                    coalesce(nullif(current_setting('upstream_indexes.expected_constraints', true), ''), '[]')::jsonb)
                    AS e
    LOOP
        tbl := to_regclass(want->>'table_name');
        SELECT c.*, pg_get_expr(c.conbin, c.conrelid) AS expression,
               (SELECT relname FROM pg_class WHERE oid = c.conindid) AS index_name
        INTO con
        FROM pg_constraint AS c
        WHERE c.conrelid = tbl AND c.conname = want->>'constraint_name';
        CONTINUE WHEN NOT FOUND;
        differences := '{}';
        IF con.contype::text <> (CASE want->>'type' WHEN 'check' THEN 'c' WHEN 'foreign key' THEN 'f'
                                                    WHEN 'unique' THEN 'u' WHEN 'primary key' THEN 'p' END) THEN
            differences := differences || format('a %s constraint, ours %s', CASE con.contype WHEN 'c' THEN 'check'
                WHEN 'f' THEN 'foreign key' WHEN 'u' THEN 'unique' WHEN 'p' THEN 'primary key' WHEN 'x' THEN 'exclusion'
                ELSE con.contype::text END, want->>'type');
        ELSIF con.contype = 'c' THEN
            IF con.connoinherit THEN
                differences := differences || 'NO INHERIT, ours inherited'::text;
            END IF;
            BEGIN
                EXECUTE format('EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) SELECT (%s), (%s) FROM ONLY %s',
                               want->>'expression', con.expression, tbl) INTO plan;
                outputs := plan->0->'Plan'->'Output';
                IF plan->0->'Plan'->>'Node Type' = 'Custom Scan' OR jsonb_array_length(outputs) <> 2 THEN
                    outputs := to_jsonb(ARRAY[regexp_replace(want->>'expression', '\s+', ' ', 'g'),
                                              regexp_replace(con.expression, '\s+', ' ', 'g')]);
                END IF;
                IF outputs->>0 IS DISTINCT FROM outputs->>1 THEN
                    differences := differences || format('CHECK (%s), ours CHECK (%s)', con.expression,
                                                         want->>'expression');
                END IF;
            EXCEPTION WHEN OTHERS THEN
                differences := differences || format('ours does not plan on %s: %s', tbl, SQLERRM);
            END;
        ELSIF con.contype = 'f' THEN
            found_columns := ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
                                   JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                                   ORDER BY k.n);
            IF found_columns <> ARRAY(SELECT jsonb_array_elements_text(want->'columns')) THEN
                differences := differences || format('columns (%s), ours (%s)', array_to_string(found_columns, ', '),
                    array_to_string(ARRAY(SELECT jsonb_array_elements_text(want->'columns')), ', '));
            END IF;
            IF con.confrelid IS DISTINCT FROM to_regclass(want->>'references') THEN
                differences := differences || format('references %s, ours %s', con.confrelid::regclass,
                                                     want->>'references');
            ELSE
                found_columns := ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, n)
                                       JOIN pg_attribute AS a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                                       ORDER BY k.n);
                -- No referenced columns in the file: the referenced table's primary key.
                IF found_columns <> coalesce(nullif(ARRAY(SELECT jsonb_array_elements_text(want->'referenced_columns')),
                                                    '{}'),
                                             ARRAY(SELECT a.attname::text
                                                   FROM pg_index AS p
                                                   CROSS JOIN LATERAL unnest(p.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                                                   JOIN pg_attribute AS a ON a.attrelid = p.indrelid AND a.attnum = k.attnum
                                                   WHERE p.indrelid = con.confrelid AND p.indisprimary ORDER BY k.n)) THEN
                    differences := differences || format('referenced columns (%s), ours (%s)',
                        array_to_string(found_columns, ', '),
                        coalesce(nullif(array_to_string(ARRAY(SELECT jsonb_array_elements_text(
                            want->'referenced_columns')), ', '), ''), 'its primary key'));
                END IF;
            END IF;
            IF (con.confmatchtype = 'f') <> (want->>'match_full')::boolean THEN
                differences := differences || format('MATCH %s, ours MATCH %s',
                    CASE con.confmatchtype WHEN 'f' THEN 'FULL' WHEN 'p' THEN 'PARTIAL' ELSE 'SIMPLE' END,
                    CASE WHEN (want->>'match_full')::boolean THEN 'FULL' ELSE 'SIMPLE' END);
            END IF;
            IF con.confdeltype::text <> want->>'on_delete_code' OR con.confupdtype::text <> want->>'on_update_code' THEN
                differences := differences || format('ON DELETE / ON UPDATE actions %s / %s, ours %s / %s',
                    con.confdeltype, con.confupdtype, want->>'on_delete', want->>'on_update');
            END IF;
        ELSIF con.index_name IS DISTINCT FROM want->>'index_name' THEN
            differences := differences || format('uses index %s, ours %s', con.index_name, want->>'index_name');
        END IF;
        IF con.condeferrable <> (want->>'deferrable')::boolean OR con.condeferred <> (want->>'initially_deferred')::boolean THEN
            differences := differences || format('%s, ours %s',
                CASE WHEN NOT con.condeferrable THEN 'NOT DEFERRABLE' WHEN con.condeferred THEN 'DEFERRABLE INITIALLY DEFERRED'
                     ELSE 'DEFERRABLE' END,
                CASE WHEN NOT (want->>'deferrable')::boolean THEN 'NOT DEFERRABLE'
                     WHEN (want->>'initially_deferred')::boolean THEN 'DEFERRABLE INITIALLY DEFERRED' ELSE 'DEFERRABLE' END);
        END IF;
        constraint_result := constraint_result || jsonb_build_object(want->>'constraint_name', to_jsonb(differences));
    END LOOP;

    PERFORM set_config('upstream_indexes.index_differences', index_result::text, true),
            set_config('upstream_indexes.constraint_differences', constraint_result::text, true);
END
$definitions$;
