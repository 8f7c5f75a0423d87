-- Demo data for the upstream tables, generated in the server; its size is the
-- setting demo.scale (1.0 = 3M claims, 1M drift events, 300k uploads).
-- Shape as in production: 2,000 customers with skewed sizes (the largest
-- holds ~8 % of the rows), two years of dates up to today, outcomes
-- PAID/DENIED/OTHER ~60/25/15 %, severity uniform in 0..1.
-- Run it inside one transaction on the empty tables of schema.sql, then
-- indexes.sql, e.g.
--   PGOPTIONS='-c demo.scale=0.05' psql -1 -f demo/schema.sql -f demo/seed.sql -f demo/indexes.sql
-- Each step raises a NOTICE naming itself: the loader shows them as progress.
-- Used only for the embedded demo database, tests and benchmarks.

-- Fixed seed: the same scale gives the same data (DO keeps psql output quiet).
DO $$ BEGIN PERFORM setseed(0.42); END $$;

DO $$ BEGIN RAISE NOTICE 'demo data: customers'; END $$;
INSERT INTO upstream_customer (name)
SELECT 'Customer ' || lpad(n::text, 4, '0') FROM generate_series(1, 2000) AS n;

DO $$ BEGIN RAISE NOTICE 'demo data: uploads'; END $$;
-- Skew: customer 1 + floor(2000 * r^3) for uniform r, so low ids are large tenants.
INSERT INTO upstream_upload (customer_id, uploaded_at, filename, status, error_message,
                             row_count, accepted_row_count, file_size_bytes, file_hash,
                             validation_errors, data_quality_issues)
SELECT 1 + floor(2000 * power(random(), 3))::int,
       now() - random() * interval '730 days',
       'claims_' || n || '.csv',
       s.status,
       CASE WHEN s.status = 'failed' THEN 'parse error on line 1' END,
       rc, rc, rc * 200, md5(n::text), '[]', '{}'
FROM generate_series(1, greatest(1, round(300000 * current_setting('demo.scale')::numeric))::int) AS n
CROSS JOIN LATERAL (SELECT random() AS r, 1 + floor(random() * 19)::int AS rc, n AS upload_no OFFSET 0) AS x
CROSS JOIN LATERAL (SELECT CASE WHEN x.r < 0.80 THEN 'success' WHEN x.r < 0.90 THEN 'partial'
                                WHEN x.r < 0.97 THEN 'failed' ELSE 'processing' END AS status) AS s;

DO $$ BEGIN RAISE NOTICE 'demo data: claims'; END $$;
-- Claims come from uploads (row_count each, ~10 on average), so they share the
-- upload's customer and were decided up to 30 days before the upload.
INSERT INTO upstream_claimrecord (customer_id, upload_id, payer, cpt, cpt_group,
                                  submitted_date, decided_date, outcome,
                                  allowed_amount, billed_amount, paid_amount,
                                  denial_reason_code, payment_date, modifier_codes,
                                  diagnosis_codes, processed_at, updated_at)
SELECT u.customer_id, u.id,
       'Payer ' || (1 + floor(power(random(), 2) * 40))::int,
       (99200 + floor(random() * 100))::int::text,
       (ARRAY['EVAL', 'SURGERY', 'IMAGING', 'LAB', 'OTHER'])[1 + floor(random() * 5)::int],
       c.decided - floor(random() * 60)::int,
       c.decided,
       o.outcome,
       c.billed * 0.8, c.billed,
       CASE WHEN o.outcome = 'PAID' THEN c.billed * 0.7 END,
       CASE WHEN o.outcome = 'DENIED' THEN 'CO-' || (1 + floor(random() * 200))::int END,
       CASE WHEN o.outcome = 'PAID' THEN c.decided + 14 END,
       '[]', '[]', u.uploaded_at, u.uploaded_at
FROM upstream_upload AS u
CROSS JOIN LATERAL generate_series(1, u.row_count) AS line (n)
CROSS JOIN LATERAL (SELECT random() AS r,
                           u.uploaded_at::date - floor(random() * 30)::int AS decided,
                           round((50 + random() * 950)::numeric, 2) AS billed,
                           line.n
                    OFFSET 0) AS c
CROSS JOIN LATERAL (SELECT CASE WHEN c.r < 0.60 THEN 'PAID' WHEN c.r < 0.85 THEN 'DENIED'
                                ELSE 'OTHER' END AS outcome) AS o;

DO $$ BEGIN RAISE NOTICE 'demo data: report runs'; END $$;
-- Report runs: one per 20 drift events; each run found 1..39 events.
INSERT INTO upstream_reportrun (customer_id, status, started_at, finished_at)
SELECT 1 + floor(2000 * power(random(), 3))::int, 'completed', t, t + interval '5 minutes'
FROM generate_series(1, greatest(1, round(50000 * current_setting('demo.scale')::numeric))::int) AS n
CROSS JOIN LATERAL (SELECT now() - random() * interval '730 days' AS t, n AS run_no OFFSET 0) AS x;

DO $$ BEGIN RAISE NOTICE 'demo data: drift events'; END $$;
INSERT INTO upstream_driftevent (customer_id, report_run_id, payer, cpt_group, drift_type,
                                 baseline_value, current_value, delta_value, severity,
                                 confidence, baseline_start, baseline_end, current_start,
                                 current_end, created_at, trend_direction, suppressed)
SELECT r.customer_id, r.id,
       'Payer ' || (1 + floor(random() * 40))::int,
       (ARRAY['EVAL', 'SURGERY', 'IMAGING', 'LAB', 'OTHER'])[1 + floor(random() * 5)::int],
       (ARRAY['DENIAL_RATE', 'DECISION_TIME', 'PAYMENT_AMOUNT', 'APPROVAL_RATE',
              'PROCESSING_DELAY', 'AUTH_FAILURE_RATE'])[1 + floor(random() * 6)::int],
       v.base, v.base + v.delta, v.delta,
       random(), random(),
       r.started_at::date - 180, r.started_at::date - 91,
       r.started_at::date - 90, r.started_at::date - 1,
       r.started_at + e * interval '1 second',
       (ARRAY['stable', 'worsening', 'improving'])[1 + floor(random() * 3)::int],
       random() < 0.05
FROM upstream_reportrun AS r
CROSS JOIN LATERAL generate_series(1, (1 + floor(random() * 39) + 0 * r.id)::int) AS e
CROSS JOIN LATERAL (SELECT random() AS base, random() - 0.5 AS delta, e AS event_no OFFSET 0) AS v;
