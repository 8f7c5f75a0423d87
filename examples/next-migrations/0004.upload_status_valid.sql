-- CHECK that an upload's status is one of the four the app knows.
-- transactional: false
--
-- Django's AddConstraint(CheckConstraint(...)) runs this as one ALTER TABLE
-- ... ADD CONSTRAINT ... CHECK: an ACCESS EXCLUSIVE lock held for a full scan
-- of upstream_upload, stopping its reads and writes. Here it is two steps:
-- 1. ADD ... NOT VALID: catalog only, a brief ACCESS EXCLUSIVE lock. While it
--    waits for that lock every later query on the table queues behind it, so
--    lock_timeout is short; `invoke migrate` retries it with backoff within
--    --max-wait and names the session it waited for. From then on every new
--    or updated row is checked.
-- 2. VALIDATE: scans the table for the rows written before, under SHARE
--    UPDATE EXCLUSIVE, which blocks no reads or writes.
-- Before step 1 `invoke migrate` counts the rows that violate it and stops
-- (exit 2, five of them shown) if there are any: added NOT VALID, it would
-- already refuse the app's next write of such a row.
-- A run stopped between the two steps leaves the constraint NOT VALID (still
-- checking new rows); the next `invoke migrate` validates it.
SET statement_timeout = 0;
SET lock_timeout = '2s';
-- squawk-ignore prefer-robust-stmts -- ADD CONSTRAINT has no IF NOT EXISTS; the runner finds ours NOT VALID and validates it
ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_valid CHECK (status IN ('processing', 'success', 'failed', 'partial')) NOT VALID;
SET lock_timeout = '10min';
-- squawk-ignore prefer-robust-stmts -- VALIDATE of a valid constraint does nothing: it can run again
ALTER TABLE upstream_upload VALIDATE CONSTRAINT upload_status_valid;
