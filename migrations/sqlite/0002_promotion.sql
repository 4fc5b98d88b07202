-- Release promotion graphs run against a lease's stack, and the state of
-- each of their tasks (so an interrupted run resumes where it stopped).
CREATE TABLE promotion_graphs (
    graph_id   TEXT PRIMARY KEY,
    lease_id   TEXT NOT NULL,
    flavor     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- JSON: parameters, label_to_taskid, full_task_graph, the tasks' definitions
    record     TEXT NOT NULL
);
CREATE INDEX promotion_graphs_by_lease ON promotion_graphs (lease_id, created_at);

CREATE TABLE promotion_tasks (
    graph_id    TEXT NOT NULL REFERENCES promotion_graphs (graph_id) ON DELETE CASCADE,
    label       TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    detail      TEXT,
    started_at  BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (graph_id, label)
);
