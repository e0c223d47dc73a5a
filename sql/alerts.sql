-- Alerting state (monitor.alert): silences, per-group notification state, the outbox
-- and its attempt log. Applied idempotently after schema.sql on every write connection.

-- Silences: mute alerts whose labels match all matchers while starts_at <= now < ends_at.
CREATE TABLE IF NOT EXISTS alert_silences (
    silence_id    VARCHAR PRIMARY KEY,
    matchers_json VARCHAR NOT NULL,     -- [{"name": "metric", "op": "=", "value": "fraud_rate"}, ...]
    author        VARCHAR NOT NULL,
    comment       VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    starts_at     TIMESTAMP NOT NULL,
    ends_at       TIMESTAMP NOT NULL,   -- set to the expiry time by `monitor silence expire`
    expired_at    TIMESTAMP             -- when it was ended early, NULL otherwise
);

-- One row per (receiver, group): what was last notified, and when the group is next evaluated.
CREATE TABLE IF NOT EXISTS alert_groups (
    receiver          VARCHAR NOT NULL,
    group_key         VARCHAR NOT NULL,   -- route path + group_by label values
    group_labels_json VARCHAR NOT NULL,
    first_seen_at     TIMESTAMP NOT NULL,
    next_eval_at      TIMESTAMP NOT NULL, -- first_seen_at + group_wait, then + group_interval
    last_notified_at  TIMESTAMP,          -- when the last message for this group was queued
    notified_json     VARCHAR NOT NULL,   -- {fingerprint: incident_id} notified as firing
    notifications     INTEGER NOT NULL,
    PRIMARY KEY (receiver, group_key)
);

-- The outbox: every message to every receiver, kept after delivery as the alert log.
-- Per receiver, messages go out in seq order; a message waiting for a retry holds back later ones.
CREATE SEQUENCE IF NOT EXISTS alert_outbox_seq;
CREATE TABLE IF NOT EXISTS alert_outbox (
    seq              BIGINT PRIMARY KEY DEFAULT nextval('alert_outbox_seq'),
    message_id       VARCHAR NOT NULL UNIQUE, -- the idempotency key sent with every attempt
    receiver         VARCHAR NOT NULL,
    receiver_type    VARCHAR NOT NULL,
    group_key        VARCHAR NOT NULL,
    reason           VARCHAR NOT NULL,        -- new | update | repeat | resolved
    status           VARCHAR NOT NULL,        -- pending | sending | sent | failed
    summary          VARCHAR NOT NULL,
    payload_json     VARCHAR NOT NULL,        -- the notifier-neutral message (docs/alerts.md)
    incident_ids     VARCHAR[] NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMP NOT NULL,
    last_attempt_at  TIMESTAMP,
    sent_at          TIMESTAMP,
    last_status_code INTEGER,
    last_error       VARCHAR,                 -- redacted: never holds a URL or secret
    updated_at       TIMESTAMP NOT NULL
);

-- Every delivery attempt, for "why did this alert arrive late / twice / not at all".
CREATE TABLE IF NOT EXISTS alert_attempts (
    message_id   VARCHAR NOT NULL,
    attempt      INTEGER NOT NULL,
    receiver     VARCHAR NOT NULL,
    attempted_at TIMESTAMP NOT NULL,
    outcome      VARCHAR NOT NULL,            -- sent | retry | failed | resent_after_crash
    status_code  INTEGER,
    error        VARCHAR,
    retry_after  DOUBLE
);
