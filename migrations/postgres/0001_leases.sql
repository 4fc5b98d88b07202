-- Leases, their audit trail, and API tokens. Timestamps: UTC epoch milliseconds.
CREATE TABLE leases (
    id                TEXT PRIMARY KEY,
    owner             TEXT NOT NULL,
    namespace         TEXT NOT NULL,
    stack_id          TEXT NOT NULL,
    template          TEXT NOT NULL,
    seed              TEXT,
    state             TEXT NOT NULL,
    failure_reason    TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    last_heartbeat_at BIGINT,
    hold              BOOLEAN NOT NULL DEFAULT FALSE,
    labels            TEXT NOT NULL DEFAULT '{}',
    endpoints         TEXT,
    backend           TEXT NOT NULL
);
CREATE INDEX leases_owner_state ON leases (owner, state);
CREATE INDEX leases_state_expires ON leases (state, expires_at);
CREATE INDEX leases_stack ON leases (stack_id);
CREATE UNIQUE INDEX leases_active_namespace ON leases (stack_id, namespace)
    WHERE state IN ('requested', 'provisioning', 'ready', 'releasing');

CREATE TABLE lease_events (
    id         BIGSERIAL PRIMARY KEY,
    lease_id   TEXT NOT NULL REFERENCES leases (id),
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    reason     TEXT
);
CREATE INDEX lease_events_lease ON lease_events (lease_id, id);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
