-- CHECK that a claim is decided on or after its submission (the app's own; the bench drops it first).
-- transactional: false
--
-- `invoke bench --constraints` adds it back both ways, with the app's write
-- load on the claims: Django's one ALTER TABLE ... ADD CONSTRAINT ... CHECK,
-- and this file through `invoke migrate` (the data check, ADD ... NOT VALID,
-- VALIDATE). See docs/migration-kinds.md.
SET statement_timeout = 0;
SET lock_timeout = '2s';
-- squawk-ignore prefer-robust-stmts -- ADD CONSTRAINT has no IF NOT EXISTS; the runner finds ours NOT VALID and validates it
ALTER TABLE upstream_claimrecord ADD CONSTRAINT claim_submitted_before_decided CHECK (submitted_date <= decided_date) NOT VALID;
SET lock_timeout = '10min';
-- squawk-ignore prefer-robust-stmts -- VALIDATE of a valid constraint does nothing: it can run again
ALTER TABLE upstream_claimrecord VALIDATE CONSTRAINT claim_submitted_before_decided;
