/* ---
name: coupon_redemptions
title: Coupon redemptions
description: >
  Number of coupon redemptions. Spikes concentrated on new accounts or one device type point
  to coupon farming; spikes everywhere at once are usually a sale.
owner: risk-oncall
team: abuse
runbook: https://wiki.example.com/risk/runbooks/coupon-abuse
severity: medium
labels: {domain: abuse}
kind: sum
unit: count
grain: day
dimensions: [account_age, device_os, country, channel]
schedule: "5 6 * * *"
detect:
  direction: up
  min_volume: 200
  sensitivity: medium
  seasonality: weekly
  slice_min_volume: 40
--- */
SELECT date_trunc('day', redeemed_at) AS ts,
       account_age, device_os, country, channel,
       count(*) AS value
FROM coupon_redemptions
WHERE redeemed_at >= $start AND redeemed_at < $end
GROUP BY ALL
