"""The demo world: a synthetic e-commerce risk dataset with known, injected incidents.

``build_world(db_path)`` writes five event tables (and the change log of ``monitor.demo.changes``)
into a DuckDB file and the list of what was injected (the ground truth) to ``ground_truth.json``
beside it::

    orders              one row per order (fraud and chargeback flags, amount, coupon, model risk score)
    payment_attempts    one row per authorisation attempt (declined, reason, card BIN range)
    refunds             one row per refunded order (at most one per order)
    coupon_redemptions  one row per coupon redemption
    signups             one row per account signup (is_fake)

The traffic has skewed country volumes, per-segment base risk, weekly and intraday patterns,
gentle growth and a holiday sale. Incidents are placed at fixed fractions of the time range
(after the first third, which stays clean as history), so a shorter world keeps all of them.
The same seed gives byte-identical tables; everything is drawn with numpy in bulk.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Callable

import duckdb
import numpy as np
import pyarrow as pa

from monitor.demo import profiles as P

TABLES = ("orders", "payment_attempts", "refunds", "coupon_redemptions", "signups")
MIN_DAYS = 30
DEFAULT_START = dt.date(2026, 6, 1)

SCHEMAS: dict[str, list[tuple[str, str]]] = {
    "orders": [
        ("order_id", "BIGINT"), ("created_at", "TIMESTAMP"), ("country", "VARCHAR"),
        ("channel", "VARCHAR"), ("device_os", "VARCHAR"), ("payment_method", "VARCHAR"),
        ("merchant_category", "VARCHAR"), ("account_age", "VARCHAR"), ("amount", "DOUBLE"),
        ("is_fraud", "BOOLEAN"), ("is_chargeback", "BOOLEAN"), ("coupon_code", "VARCHAR"),
        ("risk_score", "DOUBLE"),
    ],
    "payment_attempts": [
        ("attempt_id", "BIGINT"), ("attempted_at", "TIMESTAMP"), ("country", "VARCHAR"),
        ("channel", "VARCHAR"), ("device_os", "VARCHAR"), ("payment_method", "VARCHAR"),
        ("card_bin", "VARCHAR"), ("declined", "BOOLEAN"), ("decline_reason", "VARCHAR"),
    ],
    "refunds": [
        ("refund_id", "BIGINT"), ("order_id", "BIGINT"), ("refunded_at", "TIMESTAMP"),
        ("country", "VARCHAR"), ("channel", "VARCHAR"), ("merchant_category", "VARCHAR"),
        ("amount", "DOUBLE"),
    ],
    "coupon_redemptions": [
        ("redemption_id", "BIGINT"), ("redeemed_at", "TIMESTAMP"), ("country", "VARCHAR"),
        ("channel", "VARCHAR"), ("device_os", "VARCHAR"), ("account_age", "VARCHAR"),
        ("coupon_code", "VARCHAR"), ("discount", "DOUBLE"),
    ],
    "signups": [
        ("signup_id", "BIGINT"), ("created_at", "TIMESTAMP"), ("country", "VARCHAR"),
        ("channel", "VARCHAR"), ("device_os", "VARCHAR"), ("is_fake", "BOOLEAN"),
    ],
}

# --- the injected incidents ----------------------------------------------------------------------
# id -> (fraction of the range where it starts, length in days or None = persists to the end).
# Incidents on the same metric never overlap, for any number of days >= MIN_DAYS.
PLAN: dict[str, tuple[float, int | None]] = {
    "card_testing": (0.36, 3),
    "coupon_abuse": (0.41, 5),
    "refund_ring": (0.47, 5),
    "traffic_mix_shift": (0.53, 7),
    "holiday_sale": (0.66, 3),
    "decline_rule_change": (0.72, None),
    "score_shift": (0.76, 5),  # the ATO wave's logins: the model sees them days before the wave's fraud
    "ato_wave": (0.80, 4),
    "fake_signup_burst": (0.97, None),  # still going when the demo ends: the demo shows its alert
}
CARD_TESTING = {"country": "BR", "card_bin": "4147xx"}
CARD_TESTING_EXTRA = 1.5  # extra attempts, as a multiple of the segment's normal volume
CARD_TESTING_DECLINE = 0.80
COUPON_ABUSE = {"account_age": "0-1d", "device_os": "android"}
COUPON_ABUSE_EXTRA = 3.0  # extra redemptions, multiple of the segment's normal volume
REFUND_RING = {"merchant_category": "gift_cards"}
REFUND_RING_FACTOR = 4.0  # refund probability of the segment's orders
MIX_SHIFT = {"country": "NG"}
MIX_SHIFT_FACTOR = 2.0  # the country's share of orders
RULE_CHANGE = {"payment_method": "paypal"}  # declines by reason 'risk_rule' stop (half of them)
ATO_WAVE = {"country": "GB", "device_os": "android", "payment_method": "card"}
ATO_FACTOR = 6.0  # fraud probability of the segment's orders
# The fraud model's risk score: legitimate orders score Beta(2, 10) (mean 0.17), fraud Beta(7, 3).
SCORE_LEGIT, SCORE_FRAUD = (2.0, 10.0), (7.0, 3.0)
# Before the ATO wave's fraud shows, the takeover logins do: this share of the segment's
# orders comes from taken-over accounts (new device, new address) the model scores Beta(5, 4).
SCORE_SHIFT = ATO_WAVE
SCORE_SHIFT_SHARE = 0.3
SCORE_SHIFT_BETA = (5.0, 4.0)
FAKE_BURST = {"country": "IN", "channel": "web"}
FAKE_BURST_EXTRA = 4.0  # extra fake signups, multiple of the segment's normal fake count

_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR


def plan_incidents(days: int) -> dict[str, tuple[int, int | None]]:
    """Day indices [start, end) of every incident for a world of ``days`` days (end None = persists)."""
    if days < MIN_DAYS:
        raise ValueError(f"the demo world needs at least {MIN_DAYS} days to place its incidents, got {days}")
    plan = {}
    for key, (fraction, length) in PLAN.items():
        first = int(np.floor(fraction * days + 0.5))
        plan[key] = (first, None if length is None else first + length)
    return plan


def ground_truth(seed: int = 7, days: int = 120, start: dt.date = DEFAULT_START) -> dict:
    """What build_world injects, as written to ground_truth.json (no data needed)."""
    plan = plan_incidents(days)

    def day(i: int | None) -> str | None:
        return None if i is None else (start + dt.timedelta(days=i)).isoformat()

    def entry(key: str, title: str, metrics: list[str], type_: str, direction: str,
              segment: dict, note: str, visible_on: list[str] | None = None) -> dict:
        first, last = plan[key]
        # visible_on: metrics where the event legitimately shows (e.g. as volume) without being
        # what it is scored on; incidents there are not false alarms.
        return {"id": key, "title": title, "metrics": metrics, "type": type_, "direction": direction,
                "start": day(first), "end": day(last), "segment": dict(segment), "note": note,
                "visible_on": visible_on or []}

    incidents = [
        entry("card_testing", "Card-testing burst on one BIN range",
              ["payment_decline_rate", "payment_decline_rate_hourly"], "rate", "up", CARD_TESTING,
              f"Bots test stolen card numbers: {CARD_TESTING_EXTRA:g}x the segment's normal attempts are "
              f"added, {CARD_TESTING_DECLINE:.0%} of them declined (mostly invalid_cvv / "
              "invalid_card_number), spread evenly over the hours. The segment's decline rate goes "
              "from ~10 % to ~50 %; the hourly metric has no country dimension and sees card_bin=4147xx."),
        entry("coupon_abuse", "Coupon abuse by brand-new Android accounts",
              ["coupon_redemptions"], "rate", "up", COUPON_ABUSE,
              f"Freshly created accounts farm WELCOME10: {COUPON_ABUSE_EXTRA:g}x the segment's normal "
              "redemptions are added (segment ~5 % of redemptions, so its count goes ~4x)."),
        entry("refund_ring", "Refund ring in gift cards",
              ["refund_rate"], "rate", "up", REFUND_RING,
              f"Orders in the segment placed during the window are refunded {REFUND_RING_FACTOR:g}x as "
              "often (1.5 % -> 6 %), within hours of the order. refund_rate is by order date."),
        entry("traffic_mix_shift", "Traffic-mix shift towards a risky country",
              ["fraud_rate", "chargeback_rate"], "mix", "up", MIX_SHIFT,
              f"The country's share of orders is multiplied by {MIX_SHIFT_FACTOR:g} (total orders "
              "unchanged, other countries scaled down); every leaf's fraud and chargeback "
              "probability stays exactly the same, so the total rate rises by mix only and no "
              "segment's rate moves. The orders metric sees the country's volume double.",
              visible_on=["orders"]),
        entry("holiday_sale", "Holiday sale: volume spike",
              ["orders", "coupon_redemptions", "fake_signups"], "volume", "up", {},
              "Volume of every event table is "
              + "/".join(f"{m:g}" for m in P.HOLIDAY_VOLUME)
              + "x on these days; every rate (fraud, chargeback, decline, refund, fake share) stays the "
              "same in expectation, so rate metrics must not fire. Count metrics rise everywhere."),
        entry("decline_rule_change", "Risk-rule change halves PayPal declines",
              ["payment_decline_rate", "payment_decline_rate_hourly"], "rate", "down", RULE_CHANGE,
              "Our own change: the rule behind decline_reason='risk_rule' is switched off for the "
              "segment (half of its declines), from this day to the end. A level shift that should "
              "be accepted as the new normal."),
        entry("ato_wave", "Account-takeover fraud wave",
              ["fraud_rate", "chargeback_rate"], "rate", "up", ATO_WAVE,
              f"Fraud probability of the segment's orders is multiplied by {ATO_FACTOR:g} (~0.5 % -> "
              "~3 %); segment ~2.4 % of orders. Chargebacks follow fraud, so chargeback_rate "
              "rises in the segment too. Fraud orders are larger, so the segment's average order "
              "value rises a little.", visible_on=["average_order_value", "model_score"]),
        entry("score_shift", "Model risk scores rise in one segment, days before its fraud",
              ["model_score"], "distribution", "up", SCORE_SHIFT,
              f"The account-takeover logins behind the ATO wave start here: {SCORE_SHIFT_SHARE:.0%} of the "
              f"segment's orders come from taken-over accounts, which the fraud model scores "
              f"Beta{SCORE_SHIFT_BETA} instead of Beta{SCORE_LEGIT}. Confirmed fraud (fraud_rate, by order "
              "date; labels arrive weeks late in real life) only moves when the wave's fraud starts, "
              "days later: the score distribution is the leading signal.",
              visible_on=["average_order_value"]),
        entry("fake_signup_burst", "Fake-signup burst from one channel and country",
              ["fake_signups"], "rate", "up", FAKE_BURST,
              f"A bot farm adds {FAKE_BURST_EXTRA:g}x the segment's normal number of fake signups "
              "(its fake count goes ~5x, ~20 % of the total)."),
    ]
    incidents.sort(key=lambda i: i["start"])
    from monitor.demo.changes import truth_events

    return {"seed": seed, "start": start.isoformat(), "end": day(days), "days": days,
            "incidents": incidents, "events": truth_events(incidents)}


def build_world(db_path: str | Path, *, seed: int = 7, days: int = 120, start: dt.date = DEFAULT_START,
                scale: float = 1.0, progress: Callable[[str], None] | None = None) -> dict:
    """Build the demo dataset into the DuckDB file ``db_path`` and write ground_truth.json beside it.

    Tables of the same names are replaced; other tables in the file are left alone. Returns
    ``{"db_path", "ground_truth_path", "seed", "days", "scale", "start", "end" (exclusive, ISO
    dates), "rows": {table: count}, "ground_truth": {...}, "seconds"}``.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if isinstance(start, dt.datetime):
        start = start.date()
    began = time.perf_counter()
    say = progress or (lambda message: None)
    truth = ground_truth(seed, days, start)  # validates days before anything is written
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)

    world = _World(seed, days, start, scale)
    tables: dict[str, pa.Table] = {}
    say("generating orders")
    orders = world.orders()
    tables["orders"] = orders.pop("_table")
    tables["orders"] = tables["orders"].append_column("risk_score", pa.array(world.risk_scores(orders)))
    say("generating refunds")
    tables["refunds"] = world.refunds(orders)
    say("generating payment attempts")
    tables["payment_attempts"] = world.payment_attempts()
    say("generating coupon redemptions")
    tables["coupon_redemptions"] = world.coupon_redemptions()
    say("generating signups")
    tables["signups"] = world.signups()

    rows = {}
    con = duckdb.connect(str(db_path))
    try:
        con.execute("SET enable_progress_bar = false")
        for name in TABLES:
            say(f"writing {name} ({tables[name].num_rows:,} rows)")
            select = ", ".join(f"CAST({col} AS {typ}) AS {col}" for col, typ in SCHEMAS[name])
            con.register("_demo_source", tables[name])
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {select} FROM _demo_source")
            con.unregister("_demo_source")
            rows[name] = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        from monitor.demo.changes import SCHEMAS as CHANGE_SCHEMAS, change_log

        for name, table in change_log(truth).items():  # our own changes, for the event files
            select = ", ".join(f"CAST({col} AS {typ}) AS {col}" for col, typ in CHANGE_SCHEMAS[name])
            con.register("_demo_source", table)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {select} FROM _demo_source")
            con.unregister("_demo_source")
        con.execute("CHECKPOINT")
    finally:
        con.close()

    truth_path = db_path.parent / "ground_truth.json"
    truth_path.write_text(json.dumps(truth, indent=2) + "\n")
    return {"db_path": str(db_path), "ground_truth_path": str(truth_path), "seed": seed, "days": days,
            "scale": scale, "start": truth["start"], "end": truth["end"], "rows": rows,
            "ground_truth": truth, "seconds": round(time.perf_counter() - began, 3)}


# --- sampling helpers ----------------------------------------------------------------------------

def _pick(u: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Category index for each uniform draw u in [0, 1), with probabilities p (zeros never drawn)."""
    cum = np.cumsum(p, dtype=float)
    cum /= cum[-1]
    cum[-1] = 1.0
    return np.searchsorted(cum, u, side="right").astype(np.int16)


def _pick_given(u: np.ndarray, given: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Like _pick, with row ``given[i]`` of ``matrix`` as the probabilities of draw i."""
    out = np.zeros(u.size, dtype=np.int16)
    for row in range(matrix.shape[0]):
        mask = given == row
        if mask.any():
            out[mask] = _pick(u[mask], matrix[row])
    return out


def _labels(codes: np.ndarray, names: list[str], valid: np.ndarray | None = None) -> pa.Array:
    indices = pa.array(codes.astype(np.int32), mask=None if valid is None else ~valid)
    return pa.DictionaryArray.from_arrays(indices, pa.array(names))


def _idx(names: list[str], value: str) -> int:
    return names.index(value)


class _World:
    """Draws the tables; one independent random stream per table, so they don't disturb each other."""

    def __init__(self, seed: int, days: int, start: dt.date, scale: float):
        self.days, self.scale = days, scale
        self.plan = plan_incidents(days)
        self.start_us = int(np.datetime64(start, "us").astype(np.int64))
        self.end_us = self.start_us + days * _US_PER_DAY
        self.dow = (start.weekday() + np.arange(days)) % 7
        # spawn(n)'s first children do not depend on n: the scores' stream leaves the others' draws alone
        streams = np.random.SeedSequence(seed).spawn(7)
        self.rng = {name: np.random.default_rng(s) for name, s in zip(
            ["calendar", "orders", "refunds", "attempts", "coupons", "signups", "scores"], streams)}
        cal = self.rng["calendar"]
        self.volume_noise = {t: np.exp(cal.normal(0, P.VOLUME_NOISE, days))
                             for t in ["orders", "attempts", "coupons", "signups"]}
        self.rate_noise = {r: np.exp(cal.normal(0, P.RATE_NOISE, days))
                           for r in ["fraud", "decline", "fake", "refund"]}
        self.holiday = np.ones(days)
        first, last = self.plan["holiday_sale"]
        self.holiday[first:last] = P.HOLIDAY_VOLUME[: last - first]
        self.night = P.NIGHT_RISK / float(P.INTRADAY @ P.NIGHT_RISK / P.INTRADAY.sum())

    # calendar ----------------------------------------------------------------------------------
    def window(self, key: str) -> tuple[int, int]:
        first, last = self.plan[key]
        return first, self.days if last is None else last

    def during(self, key: str, day: np.ndarray) -> np.ndarray:
        first, last = self.window(key)
        return (day >= first) & (day < last)

    def daily_volume(self, base: float, weekly: np.ndarray, table: str) -> np.ndarray:
        growth = np.exp(P.GROWTH_PER_DAY * np.arange(self.days))
        return (base * self.scale * growth * weekly[self.dow] / weekly.mean()
                * self.holiday * self.volume_noise[table])

    def days_of(self, rng: np.random.Generator, volume: np.ndarray) -> np.ndarray:
        return np.repeat(np.arange(self.days, dtype=np.int32), rng.poisson(volume))

    def timestamps(self, rng: np.random.Generator, day: np.ndarray, hour_utc: np.ndarray) -> np.ndarray:
        seconds = rng.integers(0, 3600, day.size)
        return (self.start_us + day.astype(np.int64) * _US_PER_DAY
                + hour_utc.astype(np.int64) * _US_PER_HOUR + seconds * 1_000_000)

    def local_hours(self, rng: np.random.Generator, country: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        local = _pick(rng.random(country.size), P.INTRADAY)
        return local, (local - P.COUNTRY_UTC[country]) % 24

    def weekly_rate(self, weekly: np.ndarray, day: np.ndarray) -> np.ndarray:
        return weekly[self.dow[day]] / weekly.mean()

    # tables ------------------------------------------------------------------------------------
    def orders(self) -> dict:
        rng = self.rng["orders"]
        day = self.days_of(rng, self.daily_volume(P.ORDERS_PER_DAY, P.WEEKLY_ORDERS, "orders"))
        n = day.size
        mixed = P.COUNTRY_W.copy()
        risky = _idx(P.COUNTRIES, MIX_SHIFT["country"])
        others = np.arange(len(mixed)) != risky
        mixed[others] *= (1 - MIX_SHIFT_FACTOR * mixed[risky]) / (1 - mixed[risky])
        mixed[risky] *= MIX_SHIFT_FACTOR
        u = rng.random(n)
        country = np.where(self.during("traffic_mix_shift", day), _pick(u, mixed), _pick(u, P.COUNTRY_W))
        channel = _pick(rng.random(n), P.CHANNEL_W)
        device = _pick_given(rng.random(n), channel, P.DEVICE_GIVEN_CHANNEL)
        pm = _pick_given(rng.random(n), device, P.PM_GIVEN_DEVICE)
        category = _pick(rng.random(n), P.CATEGORY_W)
        age = _pick(rng.random(n), P.ORDER_AGE_W)
        local, hour = self.local_hours(rng, country)
        ts = self.timestamps(rng, day, hour)

        p = (P.FRAUD_RATE
             * P.normalised(P.COUNTRY_FRAUD, P.COUNTRY_W)[country]
             * P.normalised(P.CHANNEL_FRAUD, P.CHANNEL_W)[channel]
             * P.normalised(P.DEVICE_FRAUD, P.device_marginal())[device]
             * P.normalised(P.PM_FRAUD, P.pm_marginal())[pm]
             * P.normalised(P.CATEGORY_FRAUD, P.CATEGORY_W)[category]
             * P.normalised(P.AGE_FRAUD, P.ORDER_AGE_W)[age]
             * self.weekly_rate(P.WEEKLY_FRAUD, day) * self.night[local] * self.rate_noise["fraud"][day])
        ato = (self.during("ato_wave", day)
               & (country == _idx(P.COUNTRIES, ATO_WAVE["country"]))
               & (device == _idx(P.DEVICES, ATO_WAVE["device_os"]))
               & (pm == _idx(P.PAYMENT_METHODS, ATO_WAVE["payment_method"])))
        p = np.minimum(np.where(ato, p * ATO_FACTOR, p), 0.9)
        is_fraud = rng.random(n) < p
        u = rng.random(n)
        friendly = P.FRIENDLY_CHARGEBACK_RATE * P.normalised(P.CATEGORY_FRIENDLY_CB, P.CATEGORY_W)[category]
        is_chargeback = np.where(is_fraud, u < P.FRAUD_CHARGEBACK_SHARE, u < friendly)
        amount = np.round(P.CATEGORY_MEDIAN_AMOUNT[category] * np.exp(rng.normal(0, P.AMOUNT_SIGMA, n))
                          * np.where(is_fraud, P.FRAUD_AMOUNT_FACTOR, 1.0), 2)
        has_coupon = rng.random(n) < P.ORDER_COUPON_SHARE[age]
        code = _pick_given(rng.random(n), age, P.CODE_GIVEN_AGE)

        order = np.argsort(ts, kind="stable")
        cols = {"day": day, "ts": ts, "country": country, "channel": channel, "device": device,
                "pm": pm, "category": category, "age": age, "amount": amount, "is_fraud": is_fraud,
                "is_chargeback": is_chargeback, "has_coupon": has_coupon, "code": code}
        cols = {k: v[order] for k, v in cols.items()}
        cols["order_id"] = np.arange(1, n + 1, dtype=np.int64)
        cols["_table"] = pa.table({
            "order_id": cols["order_id"],
            "created_at": pa.array(cols["ts"].view("datetime64[us]")),
            "country": _labels(cols["country"], P.COUNTRIES),
            "channel": _labels(cols["channel"], P.CHANNELS),
            "device_os": _labels(cols["device"], P.DEVICES),
            "payment_method": _labels(cols["pm"], P.PAYMENT_METHODS),
            "merchant_category": _labels(cols["category"], P.CATEGORIES),
            "account_age": _labels(cols["age"], P.ACCOUNT_AGES),
            "amount": cols["amount"],
            "is_fraud": cols["is_fraud"],
            "is_chargeback": cols["is_chargeback"],
            "coupon_code": _labels(cols["code"], P.COUPON_CODES, valid=cols["has_coupon"]),
        })
        return cols

    def risk_scores(self, orders: dict) -> np.ndarray:
        """The fraud model's score of every order (same order as the orders table)."""
        rng = self.rng["scores"]
        fraud = orders["is_fraud"]
        score = np.where(fraud, rng.beta(*SCORE_FRAUD, fraud.size), rng.beta(*SCORE_LEGIT, fraud.size))
        taken = (self.during("score_shift", orders["day"])
                 & (orders["country"] == _idx(P.COUNTRIES, SCORE_SHIFT["country"]))
                 & (orders["device"] == _idx(P.DEVICES, SCORE_SHIFT["device_os"]))
                 & (orders["pm"] == _idx(P.PAYMENT_METHODS, SCORE_SHIFT["payment_method"]))
                 & (rng.random(fraud.size) < SCORE_SHIFT_SHARE))
        score = np.where(taken & ~fraud, rng.beta(*SCORE_SHIFT_BETA, fraud.size), score)
        return np.round(score, 4)

    def refunds(self, orders: dict) -> pa.Table:
        """At most one refund per genuine order; refunds after the world's end are not there yet."""
        rng = self.rng["refunds"]
        n = orders["ts"].size
        ring = (self.during("refund_ring", orders["day"])
                & (orders["category"] == _idx(P.CATEGORIES, REFUND_RING["merchant_category"])))
        p = (P.CATEGORY_REFUND[orders["category"]]
             * P.normalised(P.CHANNEL_REFUND, P.CHANNEL_W)[orders["channel"]]
             * self.rate_noise["refund"][orders["day"]])
        p = np.where(ring, p * REFUND_RING_FACTOR, p)
        refunded = ~orders["is_fraud"] & (rng.random(n) < p)
        normal_delay = np.minimum(7200 + rng.exponential(P.REFUND_DELAY_DAYS * 86400, n),
                                  P.REFUND_MAX_DELAY_DAYS * 86400)
        ring_delay = rng.uniform(3600, 20 * 3600, n)
        delay_us = np.where(ring, ring_delay, normal_delay).astype(np.int64) * 1_000_000  # whole seconds
        partial = (rng.random(n) < P.PARTIAL_REFUND_SHARE) & ~ring
        amount = np.where(partial, np.round(orders["amount"] * rng.uniform(0.2, 0.8, n), 2), orders["amount"])
        at = orders["ts"] + delay_us
        keep = np.flatnonzero(refunded & (at < self.end_us))
        keep = keep[np.argsort(at[keep], kind="stable")]
        return pa.table({
            "refund_id": np.arange(1, keep.size + 1, dtype=np.int64),
            "order_id": orders["order_id"][keep],
            "refunded_at": pa.array(at[keep].view("datetime64[us]")),
            "country": _labels(orders["country"][keep], P.COUNTRIES),
            "channel": _labels(orders["channel"][keep], P.CHANNELS),
            "merchant_category": _labels(orders["category"][keep], P.CATEGORIES),
            "amount": np.maximum(amount[keep], 0.01),
        })

    def payment_attempts(self) -> pa.Table:
        rng = self.rng["attempts"]
        volume = self.daily_volume(P.ATTEMPTS_PER_DAY, P.WEEKLY_ORDERS, "attempts")
        day = self.days_of(rng, volume)
        n = day.size
        country = _pick(rng.random(n), P.COUNTRY_W)
        channel = _pick(rng.random(n), P.CHANNEL_W)
        device = _pick_given(rng.random(n), channel, P.DEVICE_GIVEN_CHANNEL)
        pm = _pick_given(rng.random(n), device, P.PM_GIVEN_DEVICE)
        card_bin = _pick_given(rng.random(n), country, P.BIN_GIVEN_COUNTRY)
        is_card = pm == _idx(P.PAYMENT_METHODS, "card")
        local, hour = self.local_hours(rng, country)
        ts = self.timestamps(rng, day, hour)
        bin_marginal = P.COUNTRY_W @ P.BIN_GIVEN_COUNTRY
        p = (P.DECLINE_RATE
             * P.normalised(P.COUNTRY_DECLINE, P.COUNTRY_W)[country]
             * P.normalised(P.PM_DECLINE, P.pm_marginal())[pm]
             * np.where(is_card, P.normalised(P.BIN_DECLINE, bin_marginal)[card_bin], 1.0)
             * self.weekly_rate(P.WEEKLY_DECLINE, day) * self.night[local] * self.rate_noise["decline"][day])
        declined = rng.random(n) < np.minimum(p, 0.95)
        reason = _pick_given(rng.random(n), pm, P.REASON_GIVEN_PM)
        # Our own rule change: the segment's 'risk_rule' declines stop from that day on.
        rule = (self.during("decline_rule_change", day)
                & (pm == _idx(P.PAYMENT_METHODS, RULE_CHANGE["payment_method"]))
                & (reason == _idx(P.DECLINE_REASONS, "risk_rule")))
        declined &= ~rule

        # Card testing: extra attempts on one BIN range in one country, at any hour.
        first, last = self.window("card_testing")
        br, bin_ = _idx(P.COUNTRIES, CARD_TESTING["country"]), _idx(P.CARD_BINS, CARD_TESTING["card_bin"])
        card = _idx(P.PAYMENT_METHODS, "card")
        share = P.COUNTRY_W[br] * P.pm_marginal()[card] * P.BIN_GIVEN_COUNTRY[br, bin_]
        k = int(rng.poisson(CARD_TESTING_EXTRA * volume[first:last].sum() * share))
        x_day = rng.integers(first, last, k).astype(np.int32)
        x_channel = _pick(rng.random(k), P.CHANNEL_W)
        x_device = _pick_given(rng.random(k), x_channel, P.DEVICE_GIVEN_CHANNEL)
        x_ts = self.timestamps(rng, x_day, rng.integers(0, 24, k))
        x_declined = rng.random(k) < CARD_TESTING_DECLINE
        x_reason = _pick(rng.random(k), P.REASON_CARD_TESTING)

        def cat(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
            return np.concatenate([a, np.broadcast_to(np.asarray(b, dtype=a.dtype), (k,))])

        ts, declined = cat(ts, x_ts), cat(declined, x_declined)
        country, channel, device = cat(country, br), cat(channel, x_channel), cat(device, x_device)
        pm, card_bin, is_card, reason = cat(pm, card), cat(card_bin, bin_), cat(is_card, True), cat(reason, x_reason)
        order = np.argsort(ts, kind="stable")
        return pa.table({
            "attempt_id": np.arange(1, ts.size + 1, dtype=np.int64),
            "attempted_at": pa.array(ts[order].view("datetime64[us]")),
            "country": _labels(country[order], P.COUNTRIES),
            "channel": _labels(channel[order], P.CHANNELS),
            "device_os": _labels(device[order], P.DEVICES),
            "payment_method": _labels(pm[order], P.PAYMENT_METHODS),
            "card_bin": _labels(card_bin[order], P.CARD_BINS, valid=is_card[order]),
            "declined": declined[order],
            "decline_reason": _labels(reason[order], P.DECLINE_REASONS, valid=declined[order]),
        })

    def coupon_redemptions(self) -> pa.Table:
        rng = self.rng["coupons"]
        volume = self.daily_volume(P.COUPONS_PER_DAY, P.WEEKLY_ORDERS, "coupons")
        day = self.days_of(rng, volume)
        n = day.size
        country = _pick(rng.random(n), P.COUNTRY_W)
        channel = _pick(rng.random(n), P.CHANNEL_W)
        device = _pick_given(rng.random(n), channel, P.DEVICE_GIVEN_CHANNEL)
        age = _pick(rng.random(n), P.COUPON_AGE_W)
        code = _pick_given(rng.random(n), age, P.CODE_GIVEN_AGE)
        _, hour = self.local_hours(rng, country)
        ts = self.timestamps(rng, day, hour)

        # Coupon abuse: scripted redemptions by brand-new accounts on one device type.
        first, last = self.window("coupon_abuse")
        new, android = _idx(P.ACCOUNT_AGES, COUPON_ABUSE["account_age"]), _idx(P.DEVICES, COUPON_ABUSE["device_os"])
        share = P.COUPON_AGE_W[new] * P.device_marginal()[android]
        k = int(rng.poisson(COUPON_ABUSE_EXTRA * volume[first:last].sum() * share))
        x_day = rng.integers(first, last, k).astype(np.int32)
        x_country = _pick(rng.random(k), P.COUNTRY_W)
        x_channel = _pick(rng.random(k), P.channel_given_device()[android])
        x_code = np.where(rng.random(k) < 0.9, _idx(P.COUPON_CODES, "WELCOME10"),
                          _idx(P.COUPON_CODES, "APP5")).astype(np.int16)
        x_ts = self.timestamps(rng, x_day, rng.integers(0, 24, k))

        def cat(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
            return np.concatenate([a, np.broadcast_to(np.asarray(b, dtype=a.dtype), (k,))])

        ts, country, channel = cat(ts, x_ts), cat(country, x_country), cat(channel, x_channel)
        device, age, code = cat(device, android), cat(age, new), cat(code, x_code)
        spread = np.where(P.CODE_IS_PERCENT[code], np.exp(rng.normal(0, 0.35, ts.size)), 1.0)
        discount = np.round(P.CODE_DISCOUNT[code] * spread, 2)
        order = np.argsort(ts, kind="stable")
        return pa.table({
            "redemption_id": np.arange(1, ts.size + 1, dtype=np.int64),
            "redeemed_at": pa.array(ts[order].view("datetime64[us]")),
            "country": _labels(country[order], P.COUNTRIES),
            "channel": _labels(channel[order], P.CHANNELS),
            "device_os": _labels(device[order], P.DEVICES),
            "account_age": _labels(age[order], P.ACCOUNT_AGES),
            "coupon_code": _labels(code[order], P.COUPON_CODES),
            "discount": discount[order],
        })

    def signups(self) -> pa.Table:
        rng = self.rng["signups"]
        volume = self.daily_volume(P.SIGNUPS_PER_DAY, P.WEEKLY_SIGNUPS, "signups")
        day = self.days_of(rng, volume)
        n = day.size
        country = _pick(rng.random(n), P.COUNTRY_W)
        channel = _pick(rng.random(n), P.CHANNEL_W)
        device = _pick_given(rng.random(n), channel, P.DEVICE_GIVEN_CHANNEL)
        _, hour = self.local_hours(rng, country)
        ts = self.timestamps(rng, day, hour)
        fake_country = P.normalised(P.COUNTRY_FAKE, P.COUNTRY_W)
        fake_channel = P.normalised(P.CHANNEL_FAKE, P.CHANNEL_W)
        fake_device = P.normalised(P.DEVICE_FAKE, P.device_marginal())
        p = (P.FAKE_SIGNUP_RATE * fake_country[country] * fake_channel[channel] * fake_device[device]
             * self.rate_noise["fake"][day])
        is_fake = rng.random(n) < np.minimum(p, 0.9)

        # Fake-signup burst: a bot farm on one channel in one country.
        first, last = self.window("fake_signup_burst")
        c, ch = _idx(P.COUNTRIES, FAKE_BURST["country"]), _idx(P.CHANNELS, FAKE_BURST["channel"])
        fakes_per_signup = (P.COUNTRY_W[c] * P.CHANNEL_W[ch] * P.FAKE_SIGNUP_RATE * fake_country[c]
                            * fake_channel[ch] * float(P.DEVICE_GIVEN_CHANNEL[ch] @ fake_device))
        k = int(rng.poisson(FAKE_BURST_EXTRA * volume[first:last].sum() * fakes_per_signup))
        x_day = rng.integers(first, last, k).astype(np.int32)
        x_device = _pick(rng.random(k), P.DEVICE_GIVEN_CHANNEL[ch])
        x_ts = self.timestamps(rng, x_day, rng.integers(0, 24, k))

        def cat(a: np.ndarray, b: np.ndarray | int | bool) -> np.ndarray:
            return np.concatenate([a, np.broadcast_to(np.asarray(b, dtype=a.dtype), (k,))])

        ts, country, channel, device, is_fake = (cat(ts, x_ts), cat(country, c), cat(channel, ch),
                                                 cat(device, x_device), cat(is_fake, True))
        order = np.argsort(ts, kind="stable")
        return pa.table({
            "signup_id": np.arange(1, ts.size + 1, dtype=np.int64),
            "created_at": pa.array(ts[order].view("datetime64[us]")),
            "country": _labels(country[order], P.COUNTRIES),
            "channel": _labels(channel[order], P.CHANNELS),
            "device_os": _labels(device[order], P.DEVICES),
            "is_fake": is_fake[order],
        })


def main(argv: list[str] | None = None) -> None:
    """``python -m monitor.demo.world PATH [--seed N] [--days N] [--scale X]``: build and summarise."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m monitor.demo.world", description=main.__doc__)
    parser.add_argument("db_path")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=DEFAULT_START)
    args = parser.parse_args(argv)
    result = build_world(args.db_path, seed=args.seed, days=args.days, start=args.start, scale=args.scale,
                         progress=lambda message: print(f"  {message}", flush=True))
    for name, count in result["rows"].items():
        print(f"{name:20s} {count:>10,}")
    print(f"{'total':20s} {sum(result['rows'].values()):>10,}")
    print(f"{result['start']} .. {result['end']} (exclusive), built in {result['seconds']:.1f} s")
    print(f"ground truth: {result['ground_truth_path']}")


if __name__ == "__main__":
    main()
