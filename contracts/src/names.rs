//! The service names, as servers register them and requests carry them: the trait names, taken
//! from the clients the `#[rpc::service]` macro generates, so they cannot drift from the code.

use crate::order::OrderServiceClient;
use crate::stock::StockServiceClient;
use crate::user::UserServiceClient;

/// `UserService`.
pub const USER_SERVICE: &str = UserServiceClient::<rpc::Channel>::SERVICE;
/// `StockService`.
pub const STOCK_SERVICE: &str = StockServiceClient::<rpc::Channel>::SERVICE;
/// `OrderService`.
pub const ORDER_SERVICE: &str = OrderServiceClient::<rpc::Channel>::SERVICE;
/// Every service.
pub const ALL: [&str; 3] = [USER_SERVICE, STOCK_SERVICE, ORDER_SERVICE];
