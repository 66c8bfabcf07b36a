//! Who is asking: a user with a role, or one of the system's own programs.
//!
//! A service never takes the caller's identity from a call's arguments: it verifies the token
//! the call carries (see `platform::identity`) and gets a [`Principal`]; the checks below say
//! what that principal may do.

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

/// A signed-in user: who a JWT is for, and who a user principal is.
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

/// One of the system's own programs, acting for itself (not for a user).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Service {
    /// The public HTTP gateway.
    Gateway = 1,
    /// user-service.
    UserService = 2,
    /// stock-service.
    StockService = 3,
    /// order-service.
    OrderService = 4,
    /// An order worker (and its reconciler).
    OrderWorker = 5,
    /// An operator tool (the load and audit tool, the dashboard) acting on the system itself.
    Operator = 6,
}

impl Service {
    /// The service with this code.
    pub fn from_code(code: u8) -> Option<Service> {
        Some(match code {
            1 => Service::Gateway,
            2 => Service::UserService,
            3 => Service::StockService,
            4 => Service::OrderService,
            5 => Service::OrderWorker,
            6 => Service::Operator,
            _ => return None,
        })
    }
}

/// Who a call comes from, as its verified token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A user (through the gateway, which verified the user's JWT).
    User(Actor),
    /// One of the system's programs.
    Service(Service),
}

/// The caller may not do this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{principal:?} may not do this: {required}")]
pub struct Denied {
    /// Who asked.
    pub principal: Principal,
    /// What it takes.
    pub required: &'static str,
}

impl Principal {
    /// A user, any role: the calls a buyer makes for themself.
    pub fn user(self) -> Result<Actor, Denied> {
        match self {
            Principal::User(actor) => Ok(actor),
            principal => Err(Denied { principal, required: "a user" }),
        }
    }

    /// A user with the admin role.
    pub fn admin(self) -> Result<Actor, Denied> {
        match self {
            Principal::User(actor) if actor.is_admin() => Ok(actor),
            principal => Err(Denied { principal, required: "an admin" }),
        }
    }

    /// One of the system's programs: the internal methods (claims, releases, rebuilds).
    pub fn service(self) -> Result<Service, Denied> {
        match self {
            Principal::Service(service) => Ok(service),
            principal => Err(Denied { principal, required: "one of the system's services" }),
        }
    }

    /// An admin or a service: figures and audits.
    pub fn admin_or_service(self) -> Result<(), Denied> {
        match self {
            Principal::Service(_) => Ok(()),
            Principal::User(actor) if actor.is_admin() => Ok(()),
            principal => Err(Denied { principal, required: "an admin or a service" }),
        }
    }
}
