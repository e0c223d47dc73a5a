-- Scheduler state (monitor.scheduler): meta-alerts about the toolkit itself.
-- Applied idempotently after schema.sql on every write connection.

-- One row per episode of a problem with the toolkit (not with a metric's values):
-- a metric that keeps failing, a broken edit of a metric file, a source that stopped
-- receiving data, a writer lock held too long. At most one open row per key.
CREATE SEQUENCE IF NOT EXISTS meta_alert_id_seq;
CREATE TABLE IF NOT EXISTS meta_alerts (
    alert_id      BIGINT PRIMARY KEY DEFAULT nextval('meta_alert_id_seq'),
    key           VARCHAR NOT NULL,     -- kind:subject, e.g. 'metric_failing:fraud_rate'
    kind          VARCHAR NOT NULL,     -- metric_failing | broken_definition | stale_data | writer_busy |
                                        -- analysis_failing | job_failing
    subject       VARCHAR NOT NULL,     -- the metric name, or the metric file for broken_definition
    severity      VARCHAR NOT NULL,
    message       VARCHAR NOT NULL,     -- the latest one-sentence description
    details_json  VARCHAR NOT NULL,     -- evidence: error text, file:line problems, window, counts
    status        VARCHAR NOT NULL,     -- open | resolved
    first_seen    TIMESTAMP NOT NULL,
    last_seen     TIMESTAMP NOT NULL,
    occurrences   BIGINT NOT NULL,      -- how many times it was raised while open
    resolved_at   TIMESTAMP,
    resolution    VARCHAR,              -- what cleared it
    notified_at   TIMESTAMP             -- when the firing message was last queued for the owner
);
