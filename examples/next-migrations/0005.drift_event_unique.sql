-- Unique index: one drift event per customer, report run, payer, CPT group and drift type.
-- transactional: false
--
-- The index 0006 promotes to the constraint Django's UniqueConstraint names.
-- A unique build fails after its whole scan if two rows share a key, and
-- leaves an INVALID index: `invoke migrate` first looks for duplicate keys
-- (exit 2, how many and five of them, nothing created; the demo data holds
-- some), and if a duplicate is written during the build it shows the key
-- PostgreSQL names, drops the INVALID index and records nothing (exit 1).
-- Safety: CONCURRENTLY takes SHARE UPDATE EXCLUSIVE, which blocks no reads or
-- writes. No IF NOT EXISTS: it would silently skip an INVALID leftover.
SET statement_timeout = 0;
SET lock_timeout = '10min';
-- squawk-ignore prefer-robust-stmts -- no IF NOT EXISTS on purpose, see above
CREATE UNIQUE INDEX CONCURRENTLY drift_event_unique ON upstream_driftevent (customer_id, report_run_id, payer, cpt_group, drift_type);
