-- The upstream app's foreign keys and existing indexes (the app's migration
-- 0018, from ../shared/upstream-schema.md), added once seed.sql has filled the
-- tables of schema.sql: every index, because the planner weighs every index a
-- table has. Django conventions: one single-column index per FK and per
-- db_index=True field. Used only for the embedded demo database, tests and
-- benchmarks.

ALTER TABLE upstream_upload ADD FOREIGN KEY (customer_id) REFERENCES upstream_customer (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE upstream_claimrecord ADD FOREIGN KEY (customer_id) REFERENCES upstream_customer (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE upstream_claimrecord ADD FOREIGN KEY (upload_id) REFERENCES upstream_upload (id) ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE upstream_reportrun ADD FOREIGN KEY (customer_id) REFERENCES upstream_customer (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE upstream_driftevent ADD FOREIGN KEY (customer_id) REFERENCES upstream_customer (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE upstream_driftevent ADD FOREIGN KEY (report_run_id) REFERENCES upstream_reportrun (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;

CREATE INDEX upstream_upload_customer_id_idx ON upstream_upload (customer_id);
CREATE INDEX upstream_upload_uploaded_at_idx ON upstream_upload (uploaded_at);
CREATE INDEX upstream_upload_date_min_idx ON upstream_upload (date_min);
CREATE INDEX upstream_upload_date_max_idx ON upstream_upload (date_max);
CREATE INDEX upload_cust_date_idx ON upstream_upload (customer_id, uploaded_at);
CREATE INDEX upload_cust_status_idx ON upstream_upload (customer_id, status);
CREATE INDEX upload_file_hash_idx ON upstream_upload (customer_id, file_hash);
CREATE UNIQUE INDEX upload_unique_customer_file_hash ON upstream_upload (customer_id, file_hash)
    WHERE file_hash IS NOT NULL;
CREATE INDEX upstream_claimrecord_customer_id_idx ON upstream_claimrecord (customer_id);
CREATE INDEX upstream_claimrecord_upload_id_idx ON upstream_claimrecord (upload_id);
CREATE INDEX upstream_claimrecord_payer_idx ON upstream_claimrecord (payer);
CREATE INDEX upstream_claimrecord_cpt_idx ON upstream_claimrecord (cpt);
CREATE INDEX upstream_claimrecord_cpt_group_idx ON upstream_claimrecord (cpt_group);
CREATE INDEX upstream_claimrecord_submitted_date_idx ON upstream_claimrecord (submitted_date);
CREATE INDEX upstream_claimrecord_decided_date_idx ON upstream_claimrecord (decided_date);
CREATE INDEX upstream_claimrecord_payment_date_idx ON upstream_claimrecord (payment_date);
CREATE INDEX upstream_claimrecord_authorization_required_idx ON upstream_claimrecord (authorization_required);
CREATE INDEX upstream_claimrecord_validation_passed_idx ON upstream_claimrecord (validation_passed);
CREATE INDEX upstream_claimrecord_processed_at_idx ON upstream_claimrecord (processed_at);
CREATE INDEX claim_cust_subdate_idx ON upstream_claimrecord (customer_id, submitted_date);
CREATE INDEX claim_cust_decdate_idx ON upstream_claimrecord (customer_id, decided_date);
CREATE INDEX claim_cust_payer_date_idx ON upstream_claimrecord (customer_id, payer, submitted_date);
CREATE INDEX claim_cust_outcome_idx ON upstream_claimrecord (customer_id, outcome, decided_date);
CREATE INDEX claim_payer_outcome_idx ON upstream_claimrecord (customer_id, payer, outcome, submitted_date);
CREATE INDEX claim_analytics_agg_idx ON upstream_claimrecord (customer_id, decided_date, payer, cpt_group, outcome);
CREATE INDEX claim_payer_payment_idx ON upstream_claimrecord (customer_id, payer, decided_date DESC);
CREATE INDEX claim_drift_detect_idx ON upstream_claimrecord (customer_id, payer, cpt_group);
CREATE INDEX claim_lag_analysis_idx ON upstream_claimrecord (customer_id, submitted_date, decided_date);
CREATE INDEX upstream_reportrun_customer_id_idx ON upstream_reportrun (customer_id);
CREATE INDEX upstream_driftevent_customer_id_idx ON upstream_driftevent (customer_id);
CREATE INDEX upstream_driftevent_report_run_id_idx ON upstream_driftevent (report_run_id);
CREATE INDEX upstream_driftevent_trend_direction_idx ON upstream_driftevent (trend_direction);
CREATE INDEX upstream_driftevent_suppressed_idx ON upstream_driftevent (suppressed);
CREATE INDEX drift_cust_created_idx ON upstream_driftevent (customer_id, created_at DESC);
CREATE INDEX drift_cust_payer_type_idx ON upstream_driftevent (customer_id, payer, drift_type);
CREATE INDEX drift_cust_type_date_idx ON upstream_driftevent (customer_id, drift_type, created_at DESC);
CREATE INDEX drift_trend_sev_idx ON upstream_driftevent (customer_id, trend_direction, severity DESC);
CREATE INDEX drift_suppressed_idx ON upstream_driftevent (customer_id, suppressed, created_at DESC);
CREATE INDEX drift_report_sev_idx ON upstream_driftevent (customer_id, report_run_id, severity DESC);
