/* ---
name: average_order_value
title: Average order value
description: >
  Mean order amount, re-aggregated exactly from its parts (sum, count, sum of squares) for
  every slice. A rise in one segment with normal volume is often fraud buying high-value
  goods; a fall in the total with flat segments is a mix shift towards cheaper categories.
owner: risk-oncall
team: fraud-ops
runbook: https://wiki.example.com/risk/runbooks/order-value
severity: medium
labels: {domain: payments-risk}
kind: mean
unit: currency
grain: day
dimensions: [country, channel, payment_method, merchant_category]
schedule: "10 6 * * *"
detect:
  direction: both
  sensitivity: medium
  slice_min_volume: 200
  max_slice_depth: 1
--- */
SELECT date_trunc('day', created_at) AS ts,
       country, channel, payment_method, merchant_category,
       sum(amount)          AS value_sum,
       count(*)             AS value_count,
       sum(amount * amount) AS value_sq_sum
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
