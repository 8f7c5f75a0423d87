-- The content recorded for each applied migration (sha256 of its forward and
-- rollback file). Run only when _upstream_indexes_checksum exists.
SELECT migration_id, sha256 FROM _upstream_indexes_checksum;
