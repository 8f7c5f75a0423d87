-- Partial covering index: a customer's uploads still processing, newest first.
-- transactional: false
--
-- Serves: the upload list's "in progress" panel (customer_id = ? AND status =
-- 'processing' ORDER BY uploaded_at DESC) as an Index Only Scan over the few
-- uploads in that status (3 % of the demo's), not the whole table's index.
-- Partial: only a query whose WHERE implies status = 'processing' can use it;
-- it makes no full index redundant.
-- Safety: CONCURRENTLY takes SHARE UPDATE EXCLUSIVE, which blocks no reads or
-- writes. No IF NOT EXISTS: it would silently skip an INVALID leftover.
SET statement_timeout = 0;
SET lock_timeout = '10min';
-- squawk-ignore prefer-robust-stmts -- no IF NOT EXISTS on purpose, see above
CREATE INDEX CONCURRENTLY upload_processing_cov ON upstream_upload (customer_id, uploaded_at DESC) INCLUDE (id) WHERE status = 'processing';
