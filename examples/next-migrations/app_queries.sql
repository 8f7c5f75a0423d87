-- The app queries that prove the indexes of this folder (in the format of
-- verify/app_queries.sql, which `invoke verify --migrations <this folder>`
-- reads first): move each entry there with its migration into migrations/.

-- name: uploads_in_progress
-- expect: upload_processing_cov
-- Upload list: a customer's uploads still processing, newest first, 10 at a time.
PREPARE uploads_in_progress(bigint) AS
SELECT id, customer_id, uploaded_at
FROM upstream_upload
WHERE customer_id = $1
  AND status = 'processing'
ORDER BY uploaded_at DESC
LIMIT 10;
