/* ---
name: fraud_rate
title: Confirmed fraud rate of orders
description: >
  Share of orders confirmed as fraud, by order creation day. A rise in one segment is usually
  an attack (account takeover, stolen cards); a rise in the total while every segment stays
  flat is a traffic-mix shift towards riskier traffic.
owner: risk-oncall
team: fraud-ops
runbook: https://wiki.example.com/risk/runbooks/fraud-rate
severity: critical
labels: {domain: payments-risk, tier: "1"}
kind: ratio
unit: percent
bounded: true
grain: day
dimensions: [country, channel, device_os, payment_method]
schedule: "0 6 * * *"
lookback: 2
detect:
  direction: up
  min_volume: 500
  sensitivity: medium
  seasonality: weekly
  slice_min_volume: 200
  max_slice_depth: 2
--- */
SELECT date_trunc('day', created_at) AS ts,
       country, channel, device_os, payment_method,
       count(*) FILTER (WHERE is_fraud) AS numerator,
       count(*)                         AS denominator
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
