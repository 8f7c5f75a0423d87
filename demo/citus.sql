-- The demo tables distributed with Citus, as a user of upstream must change
-- them: run on a Citus coordinator after schema.sql and seed.sql, e.g.
--   psql -1 -f demo/schema.sql -f demo/seed.sql && psql -f demo/citus.sql
-- Used only for the Citus tests and benchmark (tests/citus_cluster.py).
--
-- What Citus needs: every table the app filters by customer first is
-- distributed by customer_id (its rows of one customer live in one shard);
-- a distributed table's primary key, unique constraints and foreign keys to
-- other distributed tables must include customer_id; upstream_customer, the
-- target of every customer_id foreign key, is a reference table (a copy on
-- every node). The covering indexes lead with customer_id already: migrations/
-- stays as it is.

-- Few shards, so a test cluster builds every shard index in seconds (Citus's default is 32).
SET citus.shard_count = 8;

-- Foreign keys come off while the tables are distributed (one to a table
-- that is not yet distributed or reference would make Citus turn the
-- referencing table into a local one) and go back on afterwards; those
-- between distributed tables must include the distribution column.
ALTER TABLE upstream_upload DROP CONSTRAINT upstream_upload_customer_id_fkey;
ALTER TABLE upstream_claimrecord DROP CONSTRAINT upstream_claimrecord_customer_id_fkey,
    DROP CONSTRAINT upstream_claimrecord_upload_id_fkey;
ALTER TABLE upstream_reportrun DROP CONSTRAINT upstream_reportrun_customer_id_fkey;
ALTER TABLE upstream_driftevent DROP CONSTRAINT upstream_driftevent_customer_id_fkey,
    DROP CONSTRAINT upstream_driftevent_report_run_id_fkey;

-- Primary keys: (customer_id, id) instead of (id).
ALTER TABLE upstream_upload DROP CONSTRAINT upstream_upload_pkey, ADD PRIMARY KEY (customer_id, id);
ALTER TABLE upstream_claimrecord DROP CONSTRAINT upstream_claimrecord_pkey, ADD PRIMARY KEY (customer_id, id);
ALTER TABLE upstream_reportrun DROP CONSTRAINT upstream_reportrun_pkey, ADD PRIMARY KEY (customer_id, id);
ALTER TABLE upstream_driftevent DROP CONSTRAINT upstream_driftevent_pkey, ADD PRIMARY KEY (customer_id, id);

SELECT create_reference_table('upstream_customer');
SELECT create_distributed_table('upstream_upload', 'customer_id');
SELECT create_distributed_table('upstream_claimrecord', 'customer_id', colocate_with => 'upstream_upload');
SELECT create_distributed_table('upstream_reportrun', 'customer_id', colocate_with => 'upstream_upload');
SELECT create_distributed_table('upstream_driftevent', 'customer_id', colocate_with => 'upstream_upload');

-- The rows now live in the shards; the coordinator's local copies go.
SELECT truncate_local_data_after_distributing_table(t)
FROM unnest('{upstream_customer, upstream_upload, upstream_claimrecord, upstream_reportrun, upstream_driftevent}'::regclass[])
    AS t;

ALTER TABLE upstream_upload ADD CONSTRAINT upstream_upload_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES upstream_customer (id) ON DELETE CASCADE;
ALTER TABLE upstream_claimrecord ADD CONSTRAINT upstream_claimrecord_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES upstream_customer (id) ON DELETE CASCADE;
ALTER TABLE upstream_claimrecord ADD CONSTRAINT upstream_claimrecord_upload_fkey
    FOREIGN KEY (customer_id, upload_id) REFERENCES upstream_upload (customer_id, id);
ALTER TABLE upstream_reportrun ADD CONSTRAINT upstream_reportrun_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES upstream_customer (id) ON DELETE CASCADE;
ALTER TABLE upstream_driftevent ADD CONSTRAINT upstream_driftevent_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES upstream_customer (id) ON DELETE CASCADE;
ALTER TABLE upstream_driftevent ADD CONSTRAINT upstream_driftevent_report_run_fkey
    FOREIGN KEY (customer_id, report_run_id) REFERENCES upstream_reportrun (customer_id, id);
