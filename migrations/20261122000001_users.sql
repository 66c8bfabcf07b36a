-- Accounts (owned by user-service).
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT        NOT NULL UNIQUE CHECK (length(username) BETWEEN 3 AND 64),
    -- argon2id PHC string; NULL for token-only load-test users, who cannot log in with a password.
    password_hash TEXT,
    role          TEXT        NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
