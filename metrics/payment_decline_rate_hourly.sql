/* ---
name: payment_decline_rate_hourly
title: Payment decline rate (hourly)
description: >
  The decline rate per hour by payment method and card BIN range, to catch card-testing
  bursts within hours. Non-card methods have card_bin 'none'.
owner: payments-oncall
team: payments-risk
runbook: https://wiki.example.com/risk/runbooks/decline-rate
severity: medium
labels: {domain: payments}
kind: ratio
unit: percent
bounded: true
grain: hour
dimensions: [payment_method, card_bin]
schedule: "5 * * * *"
lookback: 2
detect:
  direction: both
  min_volume: 100
  sensitivity: medium
  seasonality: auto
  slice_min_volume: 30
  accept_after: 168
--- */
SELECT date_trunc('hour', attempted_at) AS ts,
       payment_method,
       coalesce(card_bin, 'none')        AS card_bin,
       count(*) FILTER (WHERE declined)  AS numerator,
       count(*)                          AS denominator
FROM payment_attempts
WHERE attempted_at >= $start AND attempted_at < $end
GROUP BY ALL
