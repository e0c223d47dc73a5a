/* ---
name: payment_decline_rate
title: Payment authorisation decline rate
description: >
  Share of payment attempts declined (issuer or our own risk rules). Up: card testing or an
  issuer outage; down: a risk rule was relaxed or switched off. Non-card methods have
  card_bin 'none'.
owner: payments-oncall
team: payments-risk
runbook: https://wiki.example.com/risk/runbooks/decline-rate
severity: high
labels: {domain: payments}
kind: ratio
unit: percent
bounded: true
grain: day
dimensions: [country, payment_method, card_bin, device_os]
schedule: "0 6 * * *"
lookback: 1
detect:
  direction: both
  min_volume: 1000
  sensitivity: medium
  seasonality: weekly
  slice_min_volume: 300
  accept_after: 7
--- */
SELECT date_trunc('day', attempted_at) AS ts,
       country, payment_method,
       coalesce(card_bin, 'none')        AS card_bin,
       device_os,
       count(*) FILTER (WHERE declined)  AS numerator,
       count(*)                          AS denominator
FROM payment_attempts
WHERE attempted_at >= $start AND attempted_at < $end
GROUP BY ALL
