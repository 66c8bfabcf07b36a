//! Redis key names of the gateway. Per-user keys share the hash tag `{u<id>}` (one cluster slot
//! per user).

/// Key names under a prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Keys {
        Keys { prefix: prefix.into() }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Token bucket of a user.
    pub fn bucket(&self, user_id: i64) -> String {
        format!("{}:{{u{user_id}}}:bucket", self.prefix)
    }

    /// Anti-brush counter of a user.
    pub fn brush(&self, user_id: i64) -> String {
        format!("{}:{{u{user_id}}}:brush", self.prefix)
    }

    /// The captcha answer a user must give for a goods.
    pub fn captcha(&self, user_id: i64, goods_id: i64) -> String {
        format!("{}:{{u{user_id}}}:captcha:{goods_id}", self.prefix)
    }

    /// Wrong captcha answers of a user for a goods.
    pub fn captcha_failures(&self, user_id: i64, goods_id: i64) -> String {
        format!("{}:{{u{user_id}}}:captcha_failures:{goods_id}", self.prefix)
    }

    /// The hidden seckill path issued to a user for a goods.
    pub fn path(&self, user_id: i64, goods_id: i64) -> String {
        format!("{}:{{u{user_id}}}:path:{goods_id}", self.prefix)
    }
}
