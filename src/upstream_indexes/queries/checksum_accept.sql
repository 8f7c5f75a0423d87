-- invoke accept: a DBA reviewed an edit to an applied migration's files; from
-- now on the edited content is what counts as applied. Keeps when (and by
-- whom) the index was applied; writes a row for a migration applied before
-- this table existed.
INSERT INTO _upstream_indexes_checksum (migration_id, sha256)
VALUES (%(migration_id)s, %(sha256)s)
ON CONFLICT (migration_id) DO UPDATE SET sha256 = excluded.sha256;
