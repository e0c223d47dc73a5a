/* ---
name: fake_signups
title: Fake account signups
description: >
  Number of signups flagged as fake (bots, disposable identities). A burst from one country
  and channel is usually a bot farm preparing coupon or promo abuse.
owner: risk-oncall
team: trust-safety
runbook: https://wiki.example.com/risk/runbooks/fake-signups
severity: high
labels: {domain: identity}
kind: sum
unit: count
grain: day
dimensions: [country, channel, device_os]
schedule: "5 6 * * *"
detect:
  direction: up
  min_volume: 20
  sensitivity: medium
  seasonality: weekly
  slice_min_volume: 5
--- */
SELECT date_trunc('day', created_at) AS ts,
       country, channel, device_os,
       count(*) FILTER (WHERE is_fake) AS value
FROM signups
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
