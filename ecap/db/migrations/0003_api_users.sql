-- The REST API's principals (docs/api.md): users with argon2 password hashes, their API
-- keys and refresh tokens (stored as SHA-256 digests only), and the audit trail of writes.
CREATE TABLE api_users (
    user_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text        NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    role           text        NOT NULL CHECK (role IN ('analyst', 'investigator', 'admin')),
    password_hash  text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);

CREATE TABLE api_keys (
    key_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint      NOT NULL REFERENCES api_users (user_id),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    prefix        text        NOT NULL UNIQUE,
    digest        text        NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

CREATE TABLE api_refresh_tokens (
    token_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint      NOT NULL REFERENCES api_users (user_id),
    digest        text        NOT NULL UNIQUE,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);

CREATE INDEX api_refresh_tokens_user ON api_refresh_tokens (user_id);

-- Every write through the API or the operator commands: who, what, when, before, after.
CREATE TABLE audit_log (
    audit_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    action       text        NOT NULL,
    target       text        NOT NULL,
    before       jsonb,
    after        jsonb
);

CREATE INDEX audit_log_target ON audit_log (target, at);
