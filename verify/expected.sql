-- What verify checks: generated from migrations/ and verify/app_queries.sql
-- by `invoke expected` (`invoke new` too); do not edit, a test fails when it is stale.
-- indexes.sql, constraints.sql, plans.sql and deep.sql include it; it sets, for their transaction only (SET LOCAL):
--   upstream_indexes.expected_indexes      each index a migration builds: table, definition, parts
--   upstream_indexes.expected_constraints  each constraint a migration adds, likewise
--   upstream_indexes.expected_plans        each app query and the index its plan must use
SET LOCAL upstream_indexes.expected_indexes = $expected$[
  {"index_name": "claim_cust_date_outcome_cov", "table_name": "upstream_claimrecord", "definition": "USING btree (customer_id, decided_date DESC, outcome) INCLUDE (id)", "unique": false, "method": "btree", "keys": [{"column": "customer_id", "expression": null, "collation": null, "opclass": null, "option": 0}, {"column": "decided_date", "expression": null, "collation": null, "opclass": null, "option": 3}, {"column": "outcome", "expression": null, "collation": null, "opclass": null, "option": 0}], "include": ["id"], "nulls_not_distinct": false, "predicate": null},
  {"index_name": "drift_cust_date_sev_cov", "table_name": "upstream_driftevent", "definition": "USING btree (customer_id, created_at DESC, severity) INCLUDE (id)", "unique": false, "method": "btree", "keys": [{"column": "customer_id", "expression": null, "collation": null, "opclass": null, "option": 0}, {"column": "created_at", "expression": null, "collation": null, "opclass": null, "option": 3}, {"column": "severity", "expression": null, "collation": null, "opclass": null, "option": 0}], "include": ["id"], "nulls_not_distinct": false, "predicate": null},
  {"index_name": "upload_cust_date_status_cov", "table_name": "upstream_upload", "definition": "USING btree (customer_id, uploaded_at DESC, status) INCLUDE (id)", "unique": false, "method": "btree", "keys": [{"column": "customer_id", "expression": null, "collation": null, "opclass": null, "option": 0}, {"column": "uploaded_at", "expression": null, "collation": null, "opclass": null, "option": 3}, {"column": "status", "expression": null, "collation": null, "opclass": null, "option": 0}], "include": ["id"], "nulls_not_distinct": false, "predicate": null}
]$expected$;
SET LOCAL upstream_indexes.expected_constraints = $expected$[

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
