-- Every apply, mark (recorded without building), rollback and unmark yoyo
-- logged, oldest first, with our note of role, client address and duration
-- where we ran it. Read-only; run only when _yoyo_log exists.
SELECT migration_id, operation, created_at_utc, username, hostname, comment
FROM _yoyo_log
WHERE migration_id IS NOT NULL
ORDER BY created_at_utc, id;
