-- Redis stock buckets per goods (contracts::stock::NewGoods::buckets): 1, the single stock key of
-- every goods created before this column, or up to 64 buckets that spread a hot goods over Redis
-- Cluster slots. Chosen by an admin at creation and never changed; applied at warm-up.
ALTER TABLE seckill_goods
    ADD COLUMN buckets SMALLINT NOT NULL DEFAULT 1 CHECK (buckets BETWEEN 1 AND 64);
