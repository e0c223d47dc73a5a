/* ---
name: refund_rate
title: Refund rate of orders
description: >
  Share of orders refunded so far, by order creation day. Refunds come in over the days after
  the order, so the latest days read low until they are complete (lookback recomputes them);
  only rises are alerted.
owner: risk-oncall
team: abuse
runbook: https://wiki.example.com/risk/runbooks/refund-rate
severity: medium
labels: {domain: abuse}
kind: ratio
unit: percent
bounded: true
grain: day
dimensions: [merchant_category, country, channel]
schedule: "0 6 * * *"
lookback: 7
detect:
  direction: up
  min_volume: 500
  sensitivity: medium
  seasonality: weekly
  slice_min_volume: 150
--- */
SELECT date_trunc('day', o.created_at) AS ts,
       o.merchant_category, o.country, o.channel,
       count(r.order_id) AS numerator,
       count(*)          AS denominator
FROM orders AS o
LEFT JOIN (
    SELECT DISTINCT order_id
    FROM refunds
    WHERE refunded_at >= $start          -- a refund never precedes its order
) AS r ON r.order_id = o.order_id
WHERE o.created_at >= $start AND o.created_at < $end
GROUP BY ALL
