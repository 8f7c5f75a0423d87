-- The writes the benchmark's writer makes while an index is built, as
-- prepared statements: per indexed table an insert and an update, named
-- <table>_insert / <table>_update, each taking the id of an existing row ($1).
--
-- Inserts copy row $1 (same customer, so the data's skew carries over) with
-- today's date, as the app adds a claim, a drift event or an upload. Updates
-- change a column some index holds, so none of them is a HOT update: each
-- write touches every index of its table, as the app's do.

PREPARE upstream_claimrecord_insert(bigint) AS
INSERT INTO upstream_claimrecord (customer_id, upload_id, payer, cpt, cpt_group, submitted_date,
                                  decided_date, outcome, allowed_amount, billed_amount,
                                  modifier_codes, diagnosis_codes, processed_at, updated_at)
SELECT customer_id, upload_id, payer, cpt, cpt_group, current_date - 14,
       current_date, 'OTHER', allowed_amount, billed_amount, '[]', '[]', now(), now()
FROM upstream_claimrecord
WHERE id = $1;

-- A claim is paid: outcome, amount and payment date change.
PREPARE upstream_claimrecord_update(bigint) AS
UPDATE upstream_claimrecord
SET outcome = 'PAID', paid_amount = billed_amount * 0.7, payment_date = current_date, updated_at = now()
WHERE id = $1;

PREPARE upstream_driftevent_insert(bigint) AS
INSERT INTO upstream_driftevent (customer_id, report_run_id, payer, cpt_group, drift_type,
                                 baseline_value, current_value, delta_value, severity, confidence,
                                 baseline_start, baseline_end, current_start, current_end,
                                 created_at, trend_direction, suppressed)
SELECT customer_id, report_run_id, payer, cpt_group, drift_type,
       baseline_value, current_value, delta_value, severity, confidence,
       baseline_start, baseline_end, current_start, current_end,
       now(), trend_direction, false
FROM upstream_driftevent
WHERE id = $1;

-- A user suppresses a drift event, which also marks its trend.
PREPARE upstream_driftevent_update(bigint) AS
UPDATE upstream_driftevent
SET suppressed = true, trend_direction = 'improving'
WHERE id = $1;

-- file_hash stays NULL: (customer_id, file_hash) is unique where not null.
PREPARE upstream_upload_insert(bigint) AS
INSERT INTO upstream_upload (customer_id, uploaded_at, filename, status, row_count,
                             validation_errors, data_quality_issues)
SELECT customer_id, now(), filename, 'processing', row_count, '[]', '{}'
FROM upstream_upload
WHERE id = $1;

-- An upload finishes processing.
PREPARE upstream_upload_update(bigint) AS
UPDATE upstream_upload
SET status = 'success', accepted_row_count = coalesce(row_count, 0)
WHERE id = $1;
