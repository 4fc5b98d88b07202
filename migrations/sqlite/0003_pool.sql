-- Placement, the pool of pre-warmed stacks, the wait queue, and the managers
-- sharing this database (each heartbeats; work of a dead one is taken over).
ALTER TABLE leases ADD COLUMN host TEXT NOT NULL DEFAULT 'local';
-- The manager instance doing this lease's in-flight work (provisioning, release).
ALTER TABLE leases ADD COLUMN worker TEXT;
CREATE INDEX leases_host_state ON leases (host, state);

CREATE TABLE pool_stacks (
    stack_id   TEXT PRIMARY KEY,
    template   TEXT NOT NULL,
    seed       TEXT,
    host       TEXT NOT NULL,
    -- warming (being provisioned) or ready
    state      TEXT NOT NULL,
    worker     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ready_at   BIGINT,
    endpoints  TEXT
);
CREATE INDEX pool_stacks_pick ON pool_stacks (state, template, ready_at);

CREATE TABLE waiters (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    owner        TEXT NOT NULL,
    scope        TEXT NOT NULL,
    request      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    deadline     BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    -- waiting, granted, timed_out, cancelled, refused
    state        TEXT NOT NULL,
    lease_id     TEXT,
    reason       TEXT,
    settled_at   BIGINT
);
CREATE INDEX waiters_state_seq ON waiters (state, seq);

CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
