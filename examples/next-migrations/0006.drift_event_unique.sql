-- Promotes the unique index on drift events to the UNIQUE constraint Django's state knows.
-- transactional: false
--
-- USING INDEX: catalog only (no scan, no build), under a brief ACCESS
-- EXCLUSIVE lock; a short lock_timeout so that no query queues long behind
-- it, retried by `invoke migrate` within --max-wait. The constraint is named
-- as its index: PostgreSQL would rename the index to the constraint's name.
SET statement_timeout = 0;
SET lock_timeout = '2s';
-- squawk-ignore prefer-robust-stmts -- ADD CONSTRAINT has no IF NOT EXISTS; the runner records a constraint of ours it finds
ALTER TABLE upstream_driftevent ADD CONSTRAINT drift_event_unique UNIQUE USING INDEX drift_event_unique;
