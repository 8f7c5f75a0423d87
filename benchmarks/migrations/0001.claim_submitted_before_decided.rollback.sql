-- Drops the CHECK that a claim is decided on or after its submission.
-- transactional: false
SET statement_timeout = 0;
SET lock_timeout = '2s';
-- squawk-ignore ban-drop-constraint -- dropping it is this rollback's purpose
ALTER TABLE upstream_claimrecord DROP CONSTRAINT IF EXISTS claim_submitted_before_decided;
