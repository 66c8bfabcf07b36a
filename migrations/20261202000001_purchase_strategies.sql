-- How a purchase of each goods takes its unit (contracts::stock::PurchaseStrategy). Chosen by an
-- admin at creation and never changed; every goods created before this column is on the
-- production path, `lua_mq`. `version` is read and compared only by `db_optimistic`.
ALTER TABLE seckill_goods
    ADD COLUMN strategy TEXT NOT NULL DEFAULT 'lua_mq'
        CHECK (strategy IN ('db_check_then_update', 'db_guarded_update', 'db_for_update', 'db_optimistic',
                            'redis_decr', 'redis_lua_sync_db', 'lua_mq')),
    ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
