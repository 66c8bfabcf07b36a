//! Who is asking: roles and the actor an admin operation is checked against.

use serde::{Deserialize, Serialize};

/// A user's role, as carried in JWTs and checked by every admin operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A buyer.
    User,
    /// May create goods, warm sales up, read stats and audits, create load-test users.
    Admin,
}

impl Role {
    /// The role's name in the database and in JWTs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored role name.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is asking, as established by the gateway from a verified JWT. Services check it again
/// for admin operations (defence in depth: an RPC port reachable by mistake is not a way in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user's id.
    pub user_id: i64,
    /// The user's role.
    pub role: Role,
}

impl Actor {
    /// Whether this actor may use admin operations.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
