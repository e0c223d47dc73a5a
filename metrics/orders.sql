/* ---
name: orders
title: Orders placed
description: >
  Order volume. Drops point to checkout or payment outages; spikes to sales, holidays or
  traffic shifts (which also move mix-sensitive rates such as fraud_rate).
owner: risk-oncall
team: fraud-ops
runbook: https://wiki.example.com/risk/runbooks/order-volume
severity: low
labels: {domain: volume}
kind: sum
unit: count
grain: day
dimensions: [country, channel, merchant_category]
schedule: "5 6 * * *"
detect:
  direction: both
  min_volume: 1000
  sensitivity: low
  seasonality: weekly
  slice_min_volume: 100
--- */
SELECT date_trunc('day', created_at) AS ts,
       country, channel, merchant_category,
       count(*) AS value
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
