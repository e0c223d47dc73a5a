"""The fixed shape of the demo world: who buys, how, and how risky each kind of traffic is.

Everything here is data, independent of the seed: the seed only draws the events.
Risk multipliers are relative (normalised to a traffic-weighted mean of 1 where they are
used), so the base rates below are the overall rates of a normal day.
"""
from __future__ import annotations

import numpy as np

# --- volumes at scale=1 (events per day before growth, weekday and holiday factors) -------------
ORDERS_PER_DAY = 12_000
ATTEMPTS_PER_DAY = 13_400  # payment attempts (retries included): ~1.1 per order
COUPONS_PER_DAY = 1_500
SIGNUPS_PER_DAY = 3_000

GROWTH_PER_DAY = np.log(1.15) / 120  # +15 % over four months
VOLUME_NOISE = 0.04  # day-to-day lognormal wobble of volumes (real series are overdispersed)
RATE_NOISE = 0.04  # day-to-day lognormal wobble shared by all segments of a rate

# Monday .. Sunday
WEEKLY_ORDERS = np.array([0.96, 0.94, 0.95, 0.98, 1.04, 1.10, 1.03])
WEEKLY_SIGNUPS = np.array([0.95, 0.95, 0.96, 0.98, 1.02, 1.10, 1.04])
WEEKLY_FRAUD = np.array([0.96, 0.95, 0.96, 0.98, 1.02, 1.08, 1.05])  # fraudsters like weekends
WEEKLY_DECLINE = np.array([0.98, 0.98, 0.98, 0.99, 1.01, 1.04, 1.02])

# Share of a country's daily traffic per *local* hour (0..23).
INTRADAY = np.array([0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.25, 0.45, 0.65, 0.80, 0.90, 1.00,
                     1.05, 1.00, 0.95, 0.95, 1.00, 1.05, 1.15, 1.30, 1.40, 1.35, 1.05, 0.60])
NIGHT_RISK = np.where(np.arange(24) < 6, 1.35, 1.0)  # fraud and declines by local hour

# --- countries -----------------------------------------------------------------------------------
#            code  share  utc   fraud  decline  fake-signup   (risk columns are relative)
_COUNTRIES = [
    ("US", 0.300, -5, 1.0, 0.85, 1.0),
    ("GB", 0.120, 1, 0.8, 0.80, 0.8),
    ("DE", 0.095, 2, 0.6, 0.75, 0.7),
    ("FR", 0.075, 2, 0.8, 0.85, 0.8),
    ("BR", 0.070, -3, 2.0, 1.60, 1.5),
    ("IN", 0.060, 5, 1.6, 1.50, 2.0),
    ("MX", 0.048, -6, 1.8, 1.40, 1.5),
    ("CA", 0.040, -4, 0.8, 0.80, 0.9),
    ("NG", 0.035, 1, 8.0, 2.40, 3.5),
    ("ES", 0.030, 2, 0.9, 0.90, 0.9),
    ("IT", 0.028, 2, 1.0, 0.95, 1.0),
    ("AU", 0.022, 10, 0.8, 0.80, 0.8),
    ("NL", 0.016, 2, 0.5, 0.70, 0.7),
    ("PL", 0.012, 2, 0.9, 0.90, 1.0),
    ("TR", 0.010, 3, 1.6, 1.40, 1.5),
    ("ID", 0.010, 7, 2.0, 1.60, 2.5),
    ("PH", 0.008, 8, 2.2, 1.70, 2.5),
    ("ZA", 0.007, 2, 2.5, 1.70, 2.0),
    ("AR", 0.006, -3, 2.0, 1.60, 1.5),
    ("JP", 0.005, 9, 0.4, 0.60, 0.6),
    ("SE", 0.005, 2, 0.5, 0.70, 0.7),
    ("VN", 0.004, 7, 2.2, 1.80, 3.0),
]
COUNTRIES = [c[0] for c in _COUNTRIES]
COUNTRY_W = np.array([c[1] for c in _COUNTRIES]) / sum(c[1] for c in _COUNTRIES)
COUNTRY_UTC = np.array([c[2] for c in _COUNTRIES])
COUNTRY_FRAUD = np.array([c[3] for c in _COUNTRIES])
COUNTRY_DECLINE = np.array([c[4] for c in _COUNTRIES])
COUNTRY_FAKE = np.array([c[5] for c in _COUNTRIES])

# --- channel -> device -> payment method ---------------------------------------------------------
CHANNELS = ["web", "app", "marketplace"]
CHANNEL_W = np.array([0.46, 0.40, 0.14])
CHANNEL_FRAUD = np.array([1.3, 0.8, 0.9])
CHANNEL_FAKE = np.array([1.4, 0.6, 1.0])
CHANNEL_REFUND = np.array([1.0, 0.9, 1.25])

DEVICES = ["ios", "android", "windows", "macos", "other"]
DEVICE_GIVEN_CHANNEL = np.array([
    # ios   android windows macos other
    [0.18, 0.22, 0.38, 0.17, 0.05],  # web
    [0.45, 0.55, 0.00, 0.00, 0.00],  # app
    [0.28, 0.32, 0.25, 0.10, 0.05],  # marketplace
])
DEVICE_FRAUD = np.array([0.8, 1.1, 1.0, 0.8, 2.0])
DEVICE_FAKE = np.array([0.7, 1.2, 1.0, 0.7, 2.5])

PAYMENT_METHODS = ["card", "paypal", "apple_pay", "google_pay", "bank_transfer", "bnpl"]
PM_GIVEN_DEVICE = np.array([
    # card  paypal apple  google bank  bnpl
    [0.45, 0.15, 0.30, 0.00, 0.04, 0.06],  # ios
    [0.55, 0.18, 0.00, 0.17, 0.04, 0.06],  # android
    [0.62, 0.22, 0.00, 0.00, 0.08, 0.08],  # windows
    [0.50, 0.20, 0.18, 0.00, 0.05, 0.07],  # macos
    [0.60, 0.25, 0.00, 0.00, 0.08, 0.07],  # other
])
PM_FRAUD = np.array([1.4, 0.6, 0.35, 0.5, 0.3, 1.3])
PM_DECLINE = np.array([1.1, 1.3, 0.45, 0.55, 0.9, 1.6])

# --- card BIN ranges (payment_method='card' only) ------------------------------------------------
CARD_BINS = ["4147xx", "4266xx", "4532xx", "4716xx", "4929xx", "5105xx", "5234xx", "5425xx",
             "5555xx", "2221xx", "3782xx", "6011xx", "3528xx", "6521xx"]
_BIN_W = np.array([0.12, 0.10, 0.11, 0.08, 0.07, 0.09, 0.08, 0.09, 0.06, 0.04, 0.06, 0.04, 0.03, 0.03])
BIN_DECLINE = np.array([1.0, 0.9, 1.0, 1.1, 1.2, 0.9, 1.0, 0.9, 1.3, 1.0, 0.7, 1.1, 1.0, 1.4])
# Local issuers: some BIN ranges are far more common in one country.
_BIN_AFFINITY = {("BR", "4147xx"): 2.0, ("BR", "5234xx"): 1.8, ("JP", "3528xx"): 10.0,
                 ("IN", "6521xx"): 10.0, ("US", "3782xx"): 1.6, ("US", "6011xx"): 2.0}


def _bin_given_country() -> np.ndarray:
    m = np.tile(_BIN_W, (len(COUNTRIES), 1))
    for (country, card_bin), factor in _BIN_AFFINITY.items():
        m[COUNTRIES.index(country), CARD_BINS.index(card_bin)] *= factor
    return m / m.sum(axis=1, keepdims=True)


BIN_GIVEN_COUNTRY = _bin_given_country()

DECLINE_REASONS = ["insufficient_funds", "do_not_honor", "risk_rule", "suspected_fraud",
                   "expired_card", "invalid_cvv", "invalid_card_number"]
REASON_GIVEN_PM = np.array([
    [0.34, 0.24, 0.14, 0.10, 0.08, 0.07, 0.03],  # card
    [0.25, 0.15, 0.50, 0.10, 0.00, 0.00, 0.00],  # paypal: half of its declines are our risk rules
    [0.40, 0.25, 0.20, 0.15, 0.00, 0.00, 0.00],  # apple_pay
    [0.40, 0.25, 0.20, 0.15, 0.00, 0.00, 0.00],  # google_pay
    [0.50, 0.20, 0.20, 0.10, 0.00, 0.00, 0.00],  # bank_transfer
    [0.30, 0.15, 0.45, 0.10, 0.00, 0.00, 0.00],  # bnpl
])
REASON_CARD_TESTING = np.array([0.08, 0.25, 0.00, 0.10, 0.02, 0.35, 0.20])

# --- what is bought ------------------------------------------------------------------------------
#            category     share fraud refund friendly-cb  median amount
_CATEGORIES = [
    ("electronics", 0.17, 2.0, 0.050, 1.5, 180.0),
    ("fashion", 0.22, 0.8, 0.080, 1.0, 60.0),
    ("grocery", 0.14, 0.3, 0.015, 0.5, 45.0),
    ("home", 0.13, 0.7, 0.040, 1.0, 85.0),
    ("beauty", 0.10, 0.7, 0.030, 0.8, 35.0),
    ("gift_cards", 0.06, 4.0, 0.015, 1.5, 100.0),
    ("toys", 0.06, 0.9, 0.040, 1.0, 40.0),
    ("sports", 0.07, 0.9, 0.050, 1.0, 70.0),
    ("travel", 0.05, 1.5, 0.060, 1.5, 320.0),
]
CATEGORIES = [c[0] for c in _CATEGORIES]
CATEGORY_W = np.array([c[1] for c in _CATEGORIES])
CATEGORY_FRAUD = np.array([c[2] for c in _CATEGORIES])
CATEGORY_REFUND = np.array([c[3] for c in _CATEGORIES])  # absolute refund probability
CATEGORY_FRIENDLY_CB = np.array([c[4] for c in _CATEGORIES])
CATEGORY_MEDIAN_AMOUNT = np.array([c[5] for c in _CATEGORIES])
AMOUNT_SIGMA = 0.6
FRAUD_AMOUNT_FACTOR = 1.7

ACCOUNT_AGES = ["0-1d", "2-7d", "8-30d", "31-365d", "1y+"]
ORDER_AGE_W = np.array([0.04, 0.06, 0.12, 0.36, 0.42])
AGE_FRAUD = np.array([4.0, 2.2, 1.3, 0.8, 0.6])
COUPON_AGE_W = np.array([0.14, 0.12, 0.16, 0.28, 0.30])  # redemptions skew to new accounts

COUPON_CODES = ["WELCOME10", "SUMMER15", "FREESHIP", "VIP20", "APP5", "BACK2SCHOOL"]
CODE_GIVEN_AGE = np.array([
    [0.75, 0.08, 0.07, 0.00, 0.06, 0.04],  # 0-1d
    [0.60, 0.13, 0.10, 0.00, 0.10, 0.07],  # 2-7d
    [0.05, 0.35, 0.25, 0.05, 0.15, 0.15],  # 8-30d
    [0.00, 0.35, 0.25, 0.12, 0.13, 0.15],  # 31-365d
    [0.00, 0.30, 0.22, 0.25, 0.10, 0.13],  # 1y+
])
CODE_DISCOUNT = np.array([10.0, 9.0, 4.99, 20.0, 5.0, 7.5])  # mean discount in currency units
CODE_IS_PERCENT = np.array([False, True, False, False, False, True])  # percent codes vary by basket
ORDER_COUPON_SHARE = np.array([0.35, 0.25, 0.12, 0.09, 0.08])  # orders with a coupon, by age

# --- base rates on a normal day (traffic-weighted means) -----------------------------------------
FRAUD_RATE = 0.0055
FRAUD_CHARGEBACK_SHARE = 0.50  # confirmed fraud that also comes back as a chargeback
FRIENDLY_CHARGEBACK_RATE = 0.0010  # "item not received" chargebacks on genuine orders
DECLINE_RATE = 0.068
FAKE_SIGNUP_RATE = 0.03
REFUND_DELAY_DAYS = 2.0  # mean of the exponential delay after a 2 hour minimum
REFUND_MAX_DELAY_DAYS = 25
PARTIAL_REFUND_SHARE = 0.25

# --- the holiday sale: volume multipliers for its consecutive days -------------------------------
HOLIDAY_VOLUME = np.array([1.9, 2.8, 2.3])


def device_marginal() -> np.ndarray:
    return CHANNEL_W @ DEVICE_GIVEN_CHANNEL


def pm_marginal() -> np.ndarray:
    return device_marginal() @ PM_GIVEN_DEVICE


def channel_given_device() -> np.ndarray:
    """P(channel | device) by Bayes, rows = devices."""
    joint = CHANNEL_W[:, None] * DEVICE_GIVEN_CHANNEL  # channel x device
    return (joint / joint.sum(axis=0, keepdims=True)).T


def normalised(mult: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Scale relative multipliers so that their traffic-weighted mean is 1."""
    return mult / float(weights @ mult)
