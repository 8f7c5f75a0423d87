-- What verify checks: generated from migrations/ and verify/app_queries.sql
-- by `invoke expected` (`invoke new` too); do not edit, a test fails when it is stale.
-- indexes.sql and plans.sql include it; it sets, for their transaction only (SET LOCAL):
--   upstream_indexes.expected_indexes  each forward migration's index, table and definition
--   upstream_indexes.expected_plans    each app query and the index its plan must use
SET LOCAL upstream_indexes.expected_indexes = $expected$[
  {"index_name": "claim_cust_date_outcome_cov", "table_name": "upstream_claimrecord", "definition": "USING btree (customer_id, decided_date DESC, outcome) INCLUDE (id)"},
  {"index_name": "drift_cust_date_sev_cov", "table_name": "upstream_driftevent", "definition": "USING btree (customer_id, created_at DESC, severity) INCLUDE (id)"},
  {"index_name": "upload_cust_date_status_cov", "table_name": "upstream_upload", "definition": "USING btree (customer_id, uploaded_at DESC, status) INCLUDE (id)"}
]$expected$;
SET LOCAL upstream_indexes.expected_plans = $expected$[
  {"query_name": "latest_claims", "index_name": "claim_cust_date_outcome_cov"},
  {"query_name": "monthly_claim_trend", "index_name": "claim_cust_date_outcome_cov"},
  {"query_name": "claims_in_decided_range", "index_name": "claim_cust_date_outcome_cov"},
  {"query_name": "latest_drift_events", "index_name": "drift_cust_date_sev_cov"},
  {"query_name": "recent_high_severity_drift_count", "index_name": "drift_cust_date_sev_cov"},
  {"query_name": "latest_uploads", "index_name": "upload_cust_date_status_cov"},
  {"query_name": "recent_failed_uploads", "index_name": "upload_cust_date_status_cov"},
  {"query_name": "upload_status_counts", "index_name": "upload_cust_date_status_cov"}
]$expected$;
