-- Fraud cases: one row per alerted transaction, written by the alerts worker.
CREATE TABLE fraud_cases (
    case_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id         text        NOT NULL UNIQUE,
    transaction_id   text        NOT NULL UNIQUE,
    user_id          text        NOT NULL,
    merchant_id      text        NOT NULL,
    amount           numeric(12, 2) NOT NULL CHECK (amount >= 0),
    currency         char(3)     NOT NULL,
    score            double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    priority         text        NOT NULL CHECK (priority IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    reasons          jsonb       NOT NULL,
    ruleset_version  integer     NOT NULL,
    model_version    text        NOT NULL,
    features         jsonb,
    event_time       timestamptz NOT NULL,
    detection_time   timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    status           text        NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'confirmed', 'false_positive')),
    decided_at       timestamptz
);

CREATE INDEX fraud_cases_open_by_priority ON fraud_cases (priority, detection_time)
    WHERE status = 'open';
CREATE INDEX fraud_cases_user ON fraud_cases (user_id, event_time);
CREATE INDEX fraud_cases_detection_time ON fraud_cases (detection_time);

-- Investigators' verdicts; the latest one per case is the case's status.
CREATE TABLE fraud_verdicts (
    verdict_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id       bigint      NOT NULL REFERENCES fraud_cases (case_id),
    verdict       text        NOT NULL CHECK (verdict IN ('confirmed', 'false_positive')),
    note          text,
    decided_by    text        NOT NULL,
    decided_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);

CREATE INDEX fraud_verdicts_case ON fraud_verdicts (case_id, decided_at);
