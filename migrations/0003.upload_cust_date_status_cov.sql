-- Covering index for a customer's uploads, newest first, with status.
-- transactional: false
--
-- Serves: the upload list (customer_id = ? ORDER BY uploaded_at DESC LIMIT 10),
-- counts of uploads by status, and recent failed uploads as Index Only Scans.
-- Columns: customer_id first (tenant equality), uploaded_at DESC second (range
-- and newest-first order), status last (the filter is answered from the
-- index). INCLUDE (id) makes it covering for Django's id.
-- Cost: INCLUDE disables btree deduplication; about 12 MB per 300k uploads.
-- upload_cust_date_idx (customer_id, uploaded_at) serves the same prefix in
-- the other direction: `invoke status` reports it; the DBA decides.
-- Safety: CONCURRENTLY takes SHARE UPDATE EXCLUSIVE, which blocks no reads or
-- writes, even while it waits. statement_timeout 0: a role default must not
-- cancel a long build half-way. lock_timeout bounds each wait for older
-- transactions; `invoke migrate --max-wait` cancels sooner and cleans up.
-- A failed build leaves an INVALID index: drop it (the rollback file) before
-- running this again. No IF NOT EXISTS, on purpose: it would silently skip
-- such an INVALID leftover.
SET statement_timeout = 0;
SET lock_timeout = '10min';
-- squawk-ignore prefer-robust-stmts -- no IF NOT EXISTS on purpose, see above
CREATE INDEX CONCURRENTLY upload_cust_date_status_cov ON upstream_upload USING btree (customer_id, uploaded_at DESC, status) INCLUDE (id);
