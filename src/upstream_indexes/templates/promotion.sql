-- Promotes the unique index {constraint} to the {kind} constraint of that name on {table}.
-- transactional: false
--
-- USING INDEX: catalog only (no scan, no build), under a brief ACCESS
-- EXCLUSIVE lock waited for at most 2s, retried by `invoke migrate` within
-- --max-wait. The constraint is named as its index: PostgreSQL would rename
-- the index to the constraint's name. TODO say which Django constraint it is.
SET statement_timeout = 0;
SET lock_timeout = '2s';
-- squawk-ignore prefer-robust-stmts -- ADD CONSTRAINT has no IF NOT EXISTS; the runner records a constraint of ours it finds
ALTER TABLE {table} ADD CONSTRAINT {constraint} {kind} USING INDEX {constraint};
