-- The catalogue and the flash sales (owned by stock-service).
CREATE TABLE goods (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description TEXT        NOT NULL DEFAULT '',
    price_cents BIGINT      NOT NULL CHECK (price_cents >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE seckill_goods (
    goods_id            BIGINT      PRIMARY KEY REFERENCES goods (id),
    seckill_price_cents BIGINT      NOT NULL CHECK (seckill_price_cents >= 0),
    initial_stock       INTEGER     NOT NULL CHECK (initial_stock >= 0),
    -- Decremented only by order workers, guarded by `stock >= n`: the last line of defence
    -- against overselling. The CHECK makes a negative stock impossible even for a buggy writer.
    stock               INTEGER     NOT NULL CHECK (stock >= 0 AND stock <= initial_stock),
    start_at            TIMESTAMPTZ NOT NULL,
    end_at              TIMESTAMPTZ NOT NULL,
    -- Set by the first warm-up: from then on the reconciler keeps the sale state in Redis.
    warmed_at           TIMESTAMPTZ,
    CHECK (end_at > start_at)
);
