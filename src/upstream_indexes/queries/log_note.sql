-- Who ran the operation yoyo has just logged, and how long it took: yoyo's
-- _yoyo_log row names the client's OS user and host only, and leaves its
-- comment column empty; we fill it with the database role, the address the
-- server saw the client connect from, and the duration (invoke status shows
-- them as history).
UPDATE _yoyo_log
SET comment = concat('role ', current_user, ' from ', coalesce(host(inet_client_addr()), 'local socket'),
                     ', ', round(%(duration_s)s::numeric, 2), 's')
WHERE id = (SELECT id FROM _yoyo_log
            WHERE migration_id = %(migration_id)s AND comment IS NULL
            ORDER BY created_at_utc DESC LIMIT 1);
