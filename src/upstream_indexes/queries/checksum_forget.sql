-- Forget a rolled-back migration's content; run inside the transaction that
-- removes yoyo's record of it.
DELETE FROM _upstream_indexes_checksum WHERE migration_id = %(migration_id)s;
