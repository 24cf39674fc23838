-- Over a synced table: the view agnes_sync() made over its parquet file.
SELECT status, count(*) AS orders, sum(amount) AS amount
FROM {{ source('agnes', 'orders') }}
GROUP BY status
