-- Orders (owned by order-service; written only by order workers, in batches).
CREATE TABLE orders (
    id          BIGINT      PRIMARY KEY,            -- snowflake: time-ordered, unique across workers
    user_id     BIGINT      NOT NULL,
    goods_id    BIGINT      NOT NULL REFERENCES seckill_goods (goods_id),
    ticket      UUID        NOT NULL UNIQUE,        -- the order message's id: a redelivery is a no-op
    price_cents BIGINT      NOT NULL CHECK (price_cents >= 0),
    status      TEXT        NOT NULL DEFAULT 'created',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- One order per user and goods, whatever happens upstream.
    CONSTRAINT orders_one_per_user_and_goods UNIQUE (user_id, goods_id)
);

CREATE INDEX orders_goods_idx ON orders (goods_id);
