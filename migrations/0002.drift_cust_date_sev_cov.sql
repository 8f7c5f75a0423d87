-- Covering index for a customer's drift events, newest first, with severity.
-- transactional: false
--
-- Serves: the drift feed (customer_id = ? ORDER BY created_at DESC) and the
-- count of recent high-severity events (created_at in the last N days,
-- severity >= 0.7) as Index Only Scans.
-- Columns: customer_id first (tenant equality), created_at DESC second (range
-- and newest-first order), severity last (the >= filter is answered from the
-- index). INCLUDE (id) makes it covering for Django's id.
-- Cost: INCLUDE disables btree deduplication; about 40 MB per 1M events. It
-- makes drift_cust_created_idx (customer_id, created_at DESC) a prefix of it:
-- `invoke status` reports that; dropping the old one is the DBA's call.
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
CREATE INDEX CONCURRENTLY drift_cust_date_sev_cov ON upstream_driftevent USING btree (customer_id, created_at DESC, severity) INCLUDE (id);
