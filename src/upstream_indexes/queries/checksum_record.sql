-- Record what a migration contained when it was applied (or recorded as
-- applied); run inside the transaction that writes yoyo's record of it.
INSERT INTO _upstream_indexes_checksum (migration_id, sha256)
VALUES (%(migration_id)s, %(sha256)s)
ON CONFLICT (migration_id) DO UPDATE SET sha256 = excluded.sha256, applied_at = now();
