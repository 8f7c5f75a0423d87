-- The demo's claims range-partitioned by month of decided_date (`invoke
-- db.reset --partitioned`), as a grown customer base partitions them.
-- Runs after schema.sql and before seed.sql, on the empty table: the same
-- columns, defaults, identity and check (LIKE ... INCLUDING ALL), the primary
-- key (id, decided_date) because a partitioned table's unique keys must hold
-- the partition key, and one partition per month from the oldest decided_date
-- seed.sql writes (761 days back) to the month after this one (the writers of
-- the benchmark add today's claims). indexes.sql then builds the app's
-- indexes on the parent, which builds them on every partition.
-- Used only for the embedded demo database, tests and benchmarks.

ALTER SEQUENCE upstream_claimrecord_id_seq RENAME TO upstream_claimrecord_plain_id_seq;
ALTER TABLE upstream_claimrecord RENAME CONSTRAINT upstream_claimrecord_pkey TO upstream_claimrecord_plain_pkey;
ALTER TABLE upstream_claimrecord RENAME TO upstream_claimrecord_plain;
CREATE TABLE upstream_claimrecord (
    LIKE upstream_claimrecord_plain INCLUDING ALL EXCLUDING INDEXES,
    CONSTRAINT upstream_claimrecord_pkey PRIMARY KEY (id, decided_date)
) PARTITION BY RANGE (decided_date);
DROP TABLE upstream_claimrecord_plain;

DO $$
DECLARE
    month date;
BEGIN
    FOR month IN
        SELECT generate_series(date_trunc('month', current_date - 761), date_trunc('month', current_date) + interval '1 month',
                               interval '1 month')::date
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF upstream_claimrecord FOR VALUES FROM (%L) TO (%L)',
                       'upstream_claimrecord_' || to_char(month, 'YYYY_MM'), month, month + interval '1 month');
    END LOOP;
END
$$;
