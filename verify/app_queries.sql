-- The upstream app's read queries the covering indexes serve, as prepared
-- statements taking the customer id ($1); the catalogue verify and the benchmark use.
--
-- Each PREPARE is preceded by three comment lines, read by the tools:
--   -- name: <the prepared statement's name>
--   -- expect: <the covering index the plan must use, as an Index Only Scan>
--   -- <what the app does with it>
-- In psql: \i verify/app_queries.sql, then EXPLAIN EXECUTE latest_claims(42);
-- Dates are relative to today, as the app's are.
--
-- Not here, on purpose: claim lists filtered by outcome (e.g. denied claims,
-- newest first, optionally in a decided_date range). The existing
-- claim_cust_outcome_idx (customer_id, outcome, decided_date) fits the
-- equality on outcome, and on the demo data the planner picks it, our covering
-- index, or another, depending on the customer's size: there is nothing to
-- assert. See docs/verify.md, "The query catalogue".

-- name: latest_claims
-- expect: claim_cust_date_outcome_cov
-- Claim list: a customer's claims, newest decision first, 10 at a time.
PREPARE latest_claims(bigint) AS
SELECT id, customer_id, decided_date, outcome
FROM upstream_claimrecord
WHERE customer_id = $1
ORDER BY decided_date DESC
LIMIT 10;

-- name: monthly_claim_trend
-- expect: claim_cust_date_outcome_cov
-- Dashboard: claims and denied claims per month over the last six months.
PREPARE monthly_claim_trend(bigint) AS
SELECT date_trunc('month', decided_date) AS month,
       count(id) AS claims,
       count(id) FILTER (WHERE outcome = 'DENIED') AS denied
FROM upstream_claimrecord
WHERE customer_id = $1
  AND decided_date >= date_trunc('month', current_date) - interval '5 months'
GROUP BY 1
ORDER BY 1;

-- name: claims_in_decided_range
-- expect: claim_cust_date_outcome_cov
-- Claim list: a customer's claims decided between 90 and 30 days ago, newest decision first, 10 at a time.
PREPARE claims_in_decided_range(bigint) AS
SELECT id, customer_id, decided_date, outcome
FROM upstream_claimrecord
WHERE customer_id = $1
  AND decided_date >= current_date - 90
  AND decided_date < current_date - 30
ORDER BY decided_date DESC
LIMIT 10;

-- name: latest_drift_events
-- expect: drift_cust_date_sev_cov
-- Drift feed: a customer's drift events newest first, with severity.
PREPARE latest_drift_events(bigint) AS
SELECT id, customer_id, created_at, severity
FROM upstream_driftevent
WHERE customer_id = $1
ORDER BY created_at DESC
LIMIT 10;

-- name: recent_high_severity_drift_count
-- expect: drift_cust_date_sev_cov
-- Dashboard: how many high-severity drift events in the last 30 days.
PREPARE recent_high_severity_drift_count(bigint) AS
SELECT count(id)
FROM upstream_driftevent
WHERE customer_id = $1
  AND created_at >= now() - interval '30 days'
  AND severity >= 0.7;

-- name: latest_uploads
-- expect: upload_cust_date_status_cov
-- Upload list: a customer's uploads, newest first, 10 at a time.
PREPARE latest_uploads(bigint) AS
SELECT id, customer_id, uploaded_at, status
FROM upstream_upload
WHERE customer_id = $1
ORDER BY uploaded_at DESC
LIMIT 10;

-- name: recent_failed_uploads
-- expect: upload_cust_date_status_cov
-- Upload list: a customer's failed uploads of the last 30 days, newest first.
PREPARE recent_failed_uploads(bigint) AS
SELECT id, customer_id, uploaded_at, status
FROM upstream_upload
WHERE customer_id = $1
  AND status = 'failed'
  AND uploaded_at >= now() - interval '30 days'
ORDER BY uploaded_at DESC
LIMIT 10;

-- name: upload_status_counts
-- expect: upload_cust_date_status_cov
-- Upload list: how many of a customer's uploads are in each status.
PREPARE upload_status_counts(bigint) AS
SELECT status, count(id) AS uploads
FROM upstream_upload
WHERE customer_id = $1
GROUP BY status
ORDER BY status;
