-- The store: what has been computed, what was found, what was said about it.
-- Applied idempotently on every open; per-metric leaf tables are created by
-- monitor.store from the metric's declared dimensions (see leaves_table.sql).

-- One row per metric: the definition the stored history was computed with.
CREATE TABLE IF NOT EXISTS metric_definitions (
    metric          VARCHAR PRIMARY KEY,
    definition_hash VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    grain           VARCHAR NOT NULL,
    dimensions      VARCHAR[] NOT NULL,
    header_json     VARCHAR NOT NULL,   -- the parsed YAML header, for the dashboard/report
    path            VARCHAR,
    updated_at      TIMESTAMP NOT NULL
);

-- The run log: every attempt to compute one metric for one window.
CREATE SEQUENCE IF NOT EXISTS run_id_seq;
CREATE TABLE IF NOT EXISTS runs (
    run_id          BIGINT PRIMARY KEY DEFAULT nextval('run_id_seq'),
    metric          VARCHAR NOT NULL,
    window_start    TIMESTAMP NOT NULL,
    window_end      TIMESTAMP NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    rows            BIGINT,
    status          VARCHAR NOT NULL,   -- running | ok | failed
    error           VARCHAR,
    definition_hash VARCHAR NOT NULL,
    trigger         VARCHAR NOT NULL    -- backfill | run | serve | demo
);

-- Incidents: one per (metric, slice, episode). Slice '' is the metric total.
CREATE TABLE IF NOT EXISTS incidents (
    incident_id      VARCHAR PRIMARY KEY,  -- stable: hash of metric, slice, start
    metric           VARCHAR NOT NULL,
    slice            VARCHAR NOT NULL,     -- 'country=BR&device_os=android', '' = total
    slice_json       VARCHAR NOT NULL,     -- {"country": "BR", ...}
    parent_id        VARCHAR,              -- the total incident this slice incident sits under
    start_ts         TIMESTAMP NOT NULL,
    end_ts           TIMESTAMP,            -- exclusive; NULL while open
    last_ts          TIMESTAMP NOT NULL,   -- last bucket seen anomalous
    direction        VARCHAR NOT NULL,     -- up | down
    kind             VARCHAR NOT NULL,     -- level_shift | spike | mix_shift (the traffic mix alone moved a ratio total)
    baseline         DOUBLE,
    observed         DOUBLE,
    relative_change  DOUBLE,
    score            DOUBLE NOT NULL,
    severity         VARCHAR NOT NULL,
    status           VARCHAR NOT NULL,     -- open | resolved
    resolution       VARCHAR,              -- recovered | new_normal | withdrawn (no longer detected after a re-run) | NULL while open
    why_json         VARCHAR NOT NULL,     -- detector, parameters, baseline window
    explanation_json VARCHAR,              -- monitor.attribute Explanation.to_dict()
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    acked_by         VARCHAR,
    acked_at         TIMESTAMP,
    label            VARCHAR,              -- true_positive | false_alarm | expected
    labelled_by      VARCHAR,
    labelled_at      TIMESTAMP
);

-- What detection expected, per bucket, for the total and each one-dimension slice:
-- the band the dashboard and report draw. Replaced per (metric, slice) on each detection.
CREATE TABLE IF NOT EXISTS expectations (
    metric    VARCHAR NOT NULL,
    slice     VARCHAR NOT NULL,   -- '' = total, else 'dim=value'
    ts        TIMESTAMP NOT NULL,
    observed  DOUBLE,             -- value, or rate for ratio metrics (NULL below the volume floor)
    volume    DOUBLE,             -- denominator (ratio) or value (sum)
    expected  DOUBLE,
    lower     DOUBLE,
    upper     DOUBLE,
    score     DOUBLE,             -- signed standardised deviation
    anomalous BOOLEAN
);

-- Change points found per series, for marking on charts.
CREATE TABLE IF NOT EXISTS change_points (
    metric VARCHAR NOT NULL,
    slice  VARCHAR NOT NULL,
    ts     TIMESTAMP NOT NULL
);
