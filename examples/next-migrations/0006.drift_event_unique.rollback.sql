-- Takes the constraint back and leaves the unique index 0005 built, as before the promotion.
-- transactional: false
--
-- DROP CONSTRAINT drops the constraint's index with it, so a twin is built
-- first (concurrently: no write blocked; the constraint still enforces the
-- key meanwhile, so it cannot meet a duplicate), then the constraint is
-- dropped (brief ACCESS EXCLUSIVE lock, short lock_timeout, retried) and the
-- twin takes the index's name (SHARE UPDATE EXCLUSIVE). Stopped part-way,
-- `invoke rollback` goes on from where it stopped.
SET statement_timeout = 0;
SET lock_timeout = '10min';
-- squawk-ignore prefer-robust-stmts -- no IF NOT EXISTS: it would silently skip an INVALID leftover
CREATE UNIQUE INDEX CONCURRENTLY drift_event_unique_twin ON upstream_driftevent (customer_id, report_run_id, payer, cpt_group, drift_type);
SET lock_timeout = '2s';
-- squawk-ignore ban-drop-constraint -- dropping it is this rollback's purpose; the twin keeps the key unique
ALTER TABLE upstream_driftevent DROP CONSTRAINT IF EXISTS drift_event_unique;
-- squawk-ignore renaming-object -- the twin takes the name the app and 0005 know
ALTER INDEX drift_event_unique_twin RENAME TO drift_event_unique;
