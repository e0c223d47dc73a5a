/* ---
name: model_score
title: Fraud model risk score distribution
description: >
  Distribution of the fraud model's risk score over orders, in 20 buckets of 0.05. It moves
  the day an attack starts (or a feature pipeline breaks, or a model is rolled out), while
  confirmed fraud labels arrive weeks later: the leading signal for fraud_rate.
owner: risk-oncall
team: fraud-ml
runbook: https://wiki.example.com/risk/runbooks/model-score
severity: high
labels: {domain: ml-risk}
kind: distribution
bucket: bucket
grain: day
dimensions: [country, channel, device_os, payment_method]
schedule: "0 6 * * *"
detect:
  direction: both
  sensitivity: medium
--- */
SELECT date_trunc('day', created_at) AS ts,
       country, channel, device_os, payment_method,
       least(floor(risk_score * 20) / 20, 0.95) AS bucket,
       count(*)                                 AS count
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
