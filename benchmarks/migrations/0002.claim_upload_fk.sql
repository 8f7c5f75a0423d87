-- FOREIGN KEY from a claim to its upload (the app's own, under another name; the bench drops it first).
-- transactional: false
--
-- `invoke bench --constraints` measures its data check (an anti-join of the
-- claims and the uploads) against its VALIDATE, with the app's write load.
SET statement_timeout = 0;
SET lock_timeout = '2s';
-- squawk-ignore prefer-robust-stmts -- ADD CONSTRAINT has no IF NOT EXISTS; the runner finds ours NOT VALID and validates it
ALTER TABLE upstream_claimrecord ADD CONSTRAINT claim_upload_fk FOREIGN KEY (upload_id) REFERENCES upstream_upload (id) NOT VALID;
SET lock_timeout = '10min';
-- squawk-ignore prefer-robust-stmts -- VALIDATE of a valid constraint does nothing: it can run again
ALTER TABLE upstream_claimrecord VALIDATE CONSTRAINT claim_upload_fk;
