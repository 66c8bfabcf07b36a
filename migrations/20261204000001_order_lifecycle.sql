-- The sale lifecycle: an order is created unpaid and held for its goods' payment window; it is
-- paid through a payment provider, or cancelled (by its buyer, or by its timeout) and its unit
-- put back on sale. Every transition is one conditional UPDATE (`WHERE status = 'unpaid'`), so a
-- payment and a cancellation racing each other can never both win.

-- How long a won unit waits for its payment (contracts::stock::NewGoods::payment_window_secs).
ALTER TABLE seckill_goods
    ADD COLUMN payment_window_secs INTEGER NOT NULL DEFAULT 900 CHECK (payment_window_secs BETWEEN 1 AND 86400);

-- Orders written before the lifecycle were final at insert: they count as paid.
UPDATE orders SET status = 'paid' WHERE status = 'created';
ALTER TABLE orders
    ALTER COLUMN status SET DEFAULT 'unpaid',
    ADD CONSTRAINT orders_status CHECK (status IN ('unpaid', 'paid', 'cancelled')),
    ADD COLUMN expires_at       TIMESTAMPTZ,
    ADD COLUMN paid_at          TIMESTAMPTZ,
    ADD COLUMN payment_id       BIGINT,
    ADD COLUMN cancelled_at     TIMESTAMPTZ,
    ADD COLUMN cancel_reason    TEXT CHECK (cancel_reason IN ('timeout', 'buyer')),
    -- Set once the cancelled order's unit is back in the Redis sale state too (PostgreSQL's
    -- stock gets it back in the cancelling transaction itself).
    ADD COLUMN unit_returned_at TIMESTAMPTZ;
UPDATE orders SET expires_at = created_at WHERE expires_at IS NULL;
-- Writers set the goods' own window; the default is the default window.
ALTER TABLE orders ALTER COLUMN expires_at SET NOT NULL, ALTER COLUMN expires_at SET DEFAULT now() + interval '15 minutes';

-- One live order per user and goods: a cancelled order frees its buyer to buy again.
ALTER TABLE orders DROP CONSTRAINT orders_one_per_user_and_goods;
CREATE UNIQUE INDEX orders_one_live_per_user_and_goods ON orders (user_id, goods_id) WHERE status <> 'cancelled';
-- The safety sweep's and the buyer's order list's reads.
CREATE INDEX orders_unpaid_expiry_idx ON orders (expires_at) WHERE status = 'unpaid';
CREATE INDEX orders_unreturned_idx ON orders (cancelled_at) WHERE status = 'cancelled' AND unit_returned_at IS NULL;
CREATE INDEX orders_user_idx ON orders (user_id, id DESC);

-- Payments of orders through a payment provider (owned by order-service). One row per payment
-- intent; the provider's callback (a signed webhook) moves it on.
CREATE TABLE payments (
    id              BIGSERIAL   PRIMARY KEY,
    order_id        BIGINT      NOT NULL REFERENCES orders (id),
    user_id         BIGINT      NOT NULL,
    -- The buyer's Idempotency-Key: the same key is the same payment, never a second charge.
    idempotency_key TEXT        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    provider        TEXT        NOT NULL,
    -- The provider's id of the payment intent, once it gave one.
    provider_ref    TEXT        UNIQUE,
    amount_cents    BIGINT      NOT NULL CHECK (amount_cents >= 0),
    -- refunding: the money came after the order could no longer be paid (cancelled, expired, or
    -- paid by another payment) and is being given back; refunded: given back.
    status          TEXT        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed', 'refunding', 'refunded')),
    refund_ref      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payments_one_per_key UNIQUE (user_id, idempotency_key)
);
CREATE INDEX payments_order_idx ON payments (order_id);
CREATE INDEX payments_refunding_idx ON payments (updated_at) WHERE status = 'refunding';
