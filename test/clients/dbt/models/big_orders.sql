-- Queried on the server: only the rows the filter keeps come over the network.
SELECT order_id, amount
FROM agnes_scan('orders', "where" := 'amount > 400')
