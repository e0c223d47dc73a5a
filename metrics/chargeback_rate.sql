/* ---
name: chargeback_rate
title: Chargeback rate of orders
description: >
  Share of orders that came back as a chargeback, by order creation day. Chargebacks arrive
  days to weeks after the order, so recent days are recomputed on every run (lookback).
owner: risk-oncall
team: disputes
runbook: https://wiki.example.com/risk/runbooks/chargeback-rate
severity: high
labels: {domain: payments-risk, tier: "1"}
kind: ratio
unit: percent
bounded: true
grain: day
dimensions: [country, device_os, payment_method, merchant_category]
schedule: "0 6 * * *"
lookback: 14
detect:
  direction: up
  min_volume: 500
  sensitivity: medium
  seasonality: weekly
  slice_min_volume: 200
  # chargebacks come from fraud: a fraud_rate incident's segment is tested here directly
  follows: [fraud_rate]
--- */
SELECT date_trunc('day', created_at) AS ts,
       country, device_os, payment_method, merchant_category,
       count(*) FILTER (WHERE is_chargeback) AS numerator,
       count(*)                              AS denominator
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
