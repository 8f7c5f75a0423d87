-- {what} on {table} ({columns}){include_clause}{where_clause}: TODO say what it serves, in one line.
-- transactional: false
--
-- Serves: TODO which of the app's queries, and how; each one goes into
-- verify/app_queries.sql with `-- expect: {index}` so that verify proves it.
-- Columns: TODO why this order: equality filters first (customer_id: every
-- query is tenant-scoped), then the range and order column, then the columns
-- the filters read. INCLUDE makes it covering for queries that select those.
-- Cost: TODO its size on real data (`invoke status` after a build); INCLUDE
-- disables btree deduplication. Every insert pays one more index.
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
CREATE {unique}INDEX CONCURRENTLY {index} ON {table} USING btree ({columns}){include_clause}{where_clause};
