-- The customers the query benchmark runs each app query for: on one table,
-- the smallest customer that has rows, the median one and the largest, by
-- row count (customers without rows are left out: nothing to measure).
-- Ties break on customer_id, so the same data gives the same sample.
WITH sizes AS (
    SELECT customer_id, count(*) AS row_count,
           row_number() OVER (ORDER BY count(*), customer_id) AS rank,
           count(*) OVER () AS customers
    FROM {table}
    GROUP BY customer_id
)
SELECT CASE rank WHEN 1 THEN 'small' WHEN customers THEN 'largest' ELSE 'median' END AS size,
       customer_id, row_count
FROM sizes
WHERE rank IN (1, (customers + 1) / 2, customers)
ORDER BY rank;
