-- Events (deploys, rule changes, promotions ...) and their links to incidents: monitor.events.
-- Applied with the rest of the schema when a store is opened (monitor.store).
CREATE TABLE IF NOT EXISTS events (
    event_id    VARCHAR PRIMARY KEY,
    source      VARCHAR NOT NULL,     -- 'file:<name>' (refreshed every cycle) or 'cli'
    kind        VARCHAR NOT NULL,     -- rule | model | promotion | holiday | deploy | ...
    title       VARCHAR NOT NULL,
    url         VARCHAR,
    ts          TIMESTAMP NOT NULL,
    end_ts      TIMESTAMP,            -- exclusive; NULL = a moment, not a window
    scope_json  VARCHAR NOT NULL,     -- {"payment_method": "card"}; {} = everywhere
    metrics     VARCHAR[] NOT NULL,   -- metrics it is about; [] = any
    expected    BOOLEAN NOT NULL,     -- inside its window the named metrics do not page
    author      VARCHAR,
    created_at  TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS incident_events (
    incident_id  VARCHAR NOT NULL,
    event_id     VARCHAR NOT NULL,
    score        DOUBLE NOT NULL,     -- (0, 1]: scope match x time closeness
    scope_match  VARCHAR NOT NULL,    -- slice | cause | everywhere
    matched_json VARCHAR NOT NULL,    -- the incident segment that matched the scope
    lag_seconds  DOUBLE NOT NULL,     -- incident start - event time
    during       BOOLEAN NOT NULL,    -- the incident started inside the event's window
    expected     BOOLEAN NOT NULL,    -- started inside an expected event's window, for a metric it names
    linked_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (incident_id, event_id)
);
