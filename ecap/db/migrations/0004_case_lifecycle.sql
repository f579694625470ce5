-- The case lifecycle (ecap/fraud/lifecycle.py): new -> assigned -> investigating -> closed
-- with a resolution (fraud / legitimate), and reopen. Replaces the statuses open /
-- confirmed / false_positive: an open case becomes 'new', a decided one 'closed' with the
-- resolution its verdict gave.
DROP INDEX fraud_cases_open_by_priority;
ALTER TABLE fraud_cases DROP CONSTRAINT fraud_cases_status_check;
ALTER TABLE fraud_cases
    ADD COLUMN resolution text CHECK (resolution IN ('fraud', 'legitimate')),
    ADD COLUMN assignee text REFERENCES api_users (username),
    ADD COLUMN assigned_at timestamptz,
    ADD COLUMN investigating_at timestamptz,
    ADD COLUMN priority_rank smallint GENERATED ALWAYS AS (
        CASE priority WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2 ELSE 3 END
    ) STORED;
UPDATE fraud_cases SET
    resolution = CASE status WHEN 'confirmed' THEN 'fraud'
                             WHEN 'false_positive' THEN 'legitimate' END,
    status = CASE status WHEN 'open' THEN 'new' ELSE 'closed' END;
ALTER TABLE fraud_cases ALTER COLUMN status SET DEFAULT 'new';
ALTER TABLE fraud_cases
    ADD CONSTRAINT fraud_cases_status_check
        CHECK (status IN ('new', 'assigned', 'investigating', 'closed')),
    ADD CONSTRAINT fraud_cases_resolved_when_closed
        CHECK ((status = 'closed') = (resolution IS NOT NULL)),
    ADD CONSTRAINT fraud_cases_assigned_has_assignee
        CHECK (status NOT IN ('assigned', 'investigating') OR assignee IS NOT NULL);

-- The queue's order (highest priority, then oldest) and "next case" (new cases only).
CREATE INDEX fraud_cases_queue ON fraud_cases (priority_rank, created_at, case_id);
CREATE INDEX fraud_cases_new ON fraud_cases (priority_rank, created_at, case_id)
    WHERE status = 'new';
CREATE INDEX fraud_cases_assignee ON fraud_cases (assignee) WHERE assignee IS NOT NULL;

-- How soon a case of each priority should be picked up and closed (the SLA).
CREATE TABLE fraud_case_sla (
    priority        text     PRIMARY KEY CHECK (priority IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    respond_within  interval NOT NULL,
    resolve_within  interval NOT NULL
);
INSERT INTO fraud_case_sla VALUES
    ('CRITICAL', '15 minutes', '4 hours'),
    ('HIGH', '1 hour', '1 day'),
    ('MEDIUM', '4 hours', '3 days'),
    ('LOW', '1 day', '7 days');

-- Every status change of a case: from, to, by whom, when.
CREATE TABLE fraud_case_history (
    entry_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      bigint      NOT NULL REFERENCES fraud_cases (case_id),
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    from_status  text        NOT NULL,
    to_status    text        NOT NULL,
    assignee     text,
    resolution   text
);
CREATE INDEX fraud_case_history_case ON fraud_case_history (case_id, at);

CREATE TABLE fraud_case_notes (
    note_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     bigint      NOT NULL REFERENCES fraud_cases (case_id),
    author      text        NOT NULL,
    body        text        NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fraud_case_notes_case ON fraud_case_notes (case_id, created_at);
