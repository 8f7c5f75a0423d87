-- Migration ids yoyo recorded as applied, read without yoyo (whose backend
-- creates tables on connect). Run only when _yoyo_migration exists.
SELECT migration_id FROM _yoyo_migration;
