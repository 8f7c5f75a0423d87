-- FOREIGN KEY {constraint} on {table}: TODO say what it guarantees, in one line.
-- transactional: false
--
-- Guarantees: TODO which rows the app must never write, and why.
-- Two steps instead of one blocking ALTER TABLE ... ADD CONSTRAINT ... FOREIGN
-- KEY (a SHARE ROW EXCLUSIVE lock on both tables, stopping their writes, for
-- a full scan):
-- 1. ADD ... NOT VALID: catalog only, a brief lock on both tables, waited for
--    at most 2s (every later query queues behind a waiting one); `invoke
--    migrate` retries it within --max-wait, naming the session it waited for.
--    From then on new and updated rows are checked.
-- 2. VALIDATE: scans the table under SHARE UPDATE EXCLUSIVE (and the
--    referenced one under ROW SHARE), which blocks no writes.
-- Before step 1 `invoke migrate` counts the rows without a referenced row and
-- stops if there are any (exit 2). Stopped between the steps, the next
-- `invoke migrate` validates it.
SET statement_timeout = 0;
SET lock_timeout = '2s';
-- squawk-ignore prefer-robust-stmts -- ADD CONSTRAINT has no IF NOT EXISTS; the runner finds ours NOT VALID and validates it
ALTER TABLE {table} ADD CONSTRAINT {constraint} FOREIGN KEY ({columns}) REFERENCES {references} NOT VALID;
SET lock_timeout = '10min';
-- squawk-ignore prefer-robust-stmts -- VALIDATE of a valid constraint does nothing: it can run again
ALTER TABLE {table} VALIDATE CONSTRAINT {constraint};
