-- Accounts, sessions, one-time e-mail tokens and the audit log.
-- PostgreSQL variant of the same schema. Times are milliseconds since the Unix epoch (BIGINT); ids are UUID strings.

CREATE TABLE users (
    id              TEXT PRIMARY KEY NOT NULL,
    username        TEXT NOT NULL UNIQUE,          -- canonical lower case
    email           TEXT NOT NULL UNIQUE,          -- canonical lower case
    display_name    TEXT,
    password_hash   TEXT NOT NULL,                 -- Argon2id PHC string
    role            TEXT NOT NULL CHECK (role IN ('user', 'admin', 'master')),
    email_verified  BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX users_role ON users (role);

-- A session is one login: a family of rotating refresh tokens.
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Refresh tokens, stored as SHA-256 of the token; `used_at` marks a spent one.
CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY NOT NULL,
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Single-use e-mail verification and password-reset tokens (SHA-256 stored).
CREATE TABLE email_tokens (
    token_hash      TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose         TEXT NOT NULL CHECK (purpose IN ('verify', 'reset')),
    email           TEXT NOT NULL,                 -- the address the token was sent to
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose);

CREATE TABLE audit_log (
    id              TEXT PRIMARY KEY NOT NULL,     -- UUIDv7: time ordered
    at              BIGINT NOT NULL,
    event           TEXT NOT NULL,
    actor_id        TEXT,
    target_id       TEXT,
    ip              TEXT,
    detail          TEXT
);
CREATE INDEX audit_log_event ON audit_log (event);
