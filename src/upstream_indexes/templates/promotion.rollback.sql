-- Takes the constraint {constraint} back and leaves its unique index, as before the promotion.
-- transactional: false
--
-- DROP CONSTRAINT drops the constraint's index with it, so a twin is built
-- first (concurrently: no write blocked; the constraint still enforces the
-- key meanwhile), then the constraint is dropped (brief ACCESS EXCLUSIVE
-- lock, short lock_timeout, retried) and the twin takes the index's name.
-- Stopped part-way, `invoke rollback` goes on from where it stopped.
SET statement_timeout = 0;
SET lock_timeout = '10min';
-- squawk-ignore prefer-robust-stmts -- no IF NOT EXISTS: it would silently skip an INVALID leftover
{twin};
SET lock_timeout = '2s';
-- squawk-ignore ban-drop-constraint -- dropping it is this rollback's purpose; the twin keeps the key unique
ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint};
-- squawk-ignore renaming-object -- the twin takes the name the app and the index's migration know
ALTER INDEX {twin_name} RENAME TO {constraint};
