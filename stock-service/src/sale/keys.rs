//! Redis key names of a sale. Every key of one goods carries the hash tag `{g<id>}`, so all the
//! keys a script touches live in one Redis Cluster slot.

/// The keys of one goods' sale state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleKeys {
    /// Hash: `start_ms`, `end_ms`, `price_cents`, `initial`. Its presence means "warmed up".
    pub meta: String,
    /// Integer: units left.
    pub stock: String,
    /// Hash: user id → `r:<ticket>:<ms>` (reserved) or `c:<ticket>:<ms>` (claimed by a worker).
    pub buyers: String,
}

impl SaleKeys {
    /// Keys of `goods_id` under `prefix` (`sk` in production, unique per test).
    pub fn new(prefix: &str, goods_id: i64) -> SaleKeys {
        SaleKeys {
            meta: format!("{prefix}:{{g{goods_id}}}:meta"),
            stock: format!("{prefix}:{{g{goods_id}}}:stock"),
            buyers: format!("{prefix}:{{g{goods_id}}}:buyers"),
        }
    }
}

/// The pub/sub channel announcing goods back in stock (the gateways' sold-out flags listen).
pub fn restock_channel(prefix: &str) -> String {
    format!("{prefix}:restock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_goods_shares_one_hash_tag() {
        let keys = SaleKeys::new("sk", 42);
        for key in [&keys.meta, &keys.stock, &keys.buyers] {
            assert!(key.contains("{g42}"), "{key}");
        }
        assert_eq!(keys.stock, "sk:{g42}:stock");
    }
}
