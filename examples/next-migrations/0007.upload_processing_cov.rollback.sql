-- Drops the partial index on uploads still processing, valid or INVALID, without blocking writes.
-- transactional: false
--
-- DROP INDEX CONCURRENTLY waits for transactions using the table instead of
-- taking an ACCESS EXCLUSIVE lock.
SET statement_timeout = 0;
SET lock_timeout = '10min';
DROP INDEX CONCURRENTLY IF EXISTS upload_processing_cov;
