-- Drops the foreign key from a claim to its upload.
-- transactional: false
SET statement_timeout = 0;
SET lock_timeout = '2s';
-- squawk-ignore ban-drop-constraint -- dropping it is this rollback's purpose
ALTER TABLE upstream_claimrecord DROP CONSTRAINT IF EXISTS claim_upload_fk;
