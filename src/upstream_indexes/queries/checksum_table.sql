-- Our bookkeeping table next to yoyo's: what each applied migration
-- contained (sha256 of its forward and rollback file) when it was applied.
-- yoyo records only a hash of the migration's id, so an applied file edited
-- afterwards would go unnoticed. A row is written in the same transaction as
-- yoyo's record of the migration and deleted with it on rollback.
CREATE TABLE _upstream_indexes_checksum (
    migration_id text PRIMARY KEY,
    sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
