-- Drops the constraint {constraint} on {table}.
-- transactional: false
--
-- DROP CONSTRAINT takes a brief ACCESS EXCLUSIVE lock (catalog only): a short
-- lock_timeout, so that the table's queries never queue long behind it;
-- `invoke rollback` retries it within --max-wait.
SET statement_timeout = 0;
SET lock_timeout = '2s';
-- squawk-ignore ban-drop-constraint -- dropping it is this rollback's purpose
ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint};
