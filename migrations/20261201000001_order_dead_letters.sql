-- Messages the order queue dead-lettered, as the workers' dead-letter consumer finished them:
-- for operators (owned by order-service, written only by order workers).
CREATE TABLE order_dead_letters (
    id               BIGSERIAL   PRIMARY KEY,
    ticket           UUID        UNIQUE,            -- NULL when the message could not be decoded
    goods_id         BIGINT,
    user_id          BIGINT,
    reason           TEXT        NOT NULL,          -- the broker's: rejected, delivery_limit, ...
    outcome          TEXT        NOT NULL CHECK (outcome IN ('ordered', 'failed', 'undecodable')),
    payload          BYTEA       NOT NULL,
    dead_lettered_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
