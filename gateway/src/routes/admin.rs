//! The admin API (`/admin/v1`, admin role only): goods, warm-up, stats, the audit, load-test users.

use actix_web::{HttpResponse, web};
use contracts::Actor;
use contracts::audit::FiguresError;
use contracts::order::OrderAudit;
use contracts::stock::{NewGoods, StockLevel};
use contracts::user::BulkUsers;

use crate::api::{
    AuditBody, BlacklistBody, BlacklistEntryBody, BulkUsersBody, BulkUsersCreated, GoodsAuditBody, GoodsBody,
    IssuedUserBody, NewGoodsBody, StatsBody,
};
use crate::auth::Admin;
use crate::defences::Entry;
use crate::problem::Problem;
use crate::state::AppState;

/// Puts goods on sale.
#[utoipa::path(post, path = "/admin/v1/goods", tag = "admin", request_body = NewGoodsBody, security(("bearer" = [])),
    responses((status = 201, body = GoodsBody), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn create_goods(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<NewGoodsBody>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let goods = NewGoods {
        name: body.name,
        description: body.description,
        price_cents: body.price_cents,
        seckill_price_cents: body.seckill_price_cents,
        stock: body.stock,
        start_at: body.start_at,
        end_at: body.end_at,
        strategy: body.strategy.unwrap_or_default(),
        buckets: body.buckets.unwrap_or(1),
        payment_window_secs: body.payment_window_secs.unwrap_or(contracts::stock::DEFAULT_PAYMENT_WINDOW_SECS),
    };
    let created = state.stock_for(admin.0).create_goods(goods).await?;
    state.goods.invalidate();
    Ok(HttpResponse::Created().json(GoodsBody::new(&created, chrono::Utc::now())))
}

/// Loads a sale's stock and window into Redis (its units become buyable).
#[utoipa::path(post, path = "/admin/v1/goods/{goods_id}/warmup", tag = "admin",
    params(("goods_id" = i64, Path, description = "Goods id")), security(("bearer" = [])),
    responses((status = 200, body = GoodsBody), (status = 404, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn warm_up(
    state: web::Data<AppState>,
    admin: Admin,
    goods_id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let goods_id = goods_id.into_inner();
    let goods = state.stock_for(admin.0).warm_up(goods_id).await?;
    state.goods.invalidate();
    if goods.stock_left > 0 {
        state.sold_out.clear(goods_id);
    }
    Ok(HttpResponse::Ok().json(GoodsBody::new(&goods, chrono::Utc::now())))
}

/// One goods' stock level and order counts, read consistently ([`contracts::audit::figures`]).
async fn figures(state: &AppState, admin: Actor, goods_id: i64) -> Result<(StockLevel, OrderAudit), Problem> {
    contracts::audit::figures(&state.stock_for(admin), &state.orders_for(admin), goods_id).await.map_err(
        |err| match err {
            FiguresError::Stock(err) => err.into(),
            FiguresError::Orders(err) => err.into(),
            FiguresError::TooBusy => Problem::unavailable(err.to_string()),
        },
    )
}

/// Live figures of one sale.
#[utoipa::path(get, path = "/admin/v1/goods/{goods_id}/stats", tag = "admin",
    params(("goods_id" = i64, Path, description = "Goods id")), security(("bearer" = [])),
    responses((status = 200, body = StatsBody), (status = 404, body = Problem)))]
pub(crate) async fn stats(
    state: web::Data<AppState>,
    admin: Admin,
    goods_id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let goods_id = goods_id.into_inner();
    let (level, orders) = figures(&state, admin.0, goods_id).await?;
    Ok(HttpResponse::Ok().json(StatsBody {
        goods_id,
        initial_stock: level.initial_stock,
        db_stock: level.db_stock,
        redis_stock: level.redis_stock,
        holds: level.holds,
        orders: orders.orders,
        unpaid: orders.unpaid,
        paid: orders.paid,
        cancelled: orders.cancelled,
        pending_tickets: orders.pending_tickets,
        failed_tickets: orders.failed_tickets,
    }))
}

/// The audit of one goods, as the API shows it.
fn audit_of(goods_id: i64, name: String, level: &StockLevel, orders: &OrderAudit) -> GoodsAuditBody {
    let audit = contracts::audit::GoodsAudit::of(goods_id, level, orders);
    GoodsAuditBody {
        goods_id,
        name,
        initial_stock: audit.initial_stock,
        db_stock: audit.db_stock,
        redis_stock: audit.redis_stock,
        holds: audit.holds,
        orders: audit.orders,
        unpaid: audit.unpaid,
        paid: audit.paid,
        cancelled: audit.cancelled,
        refunds_pending: audit.refunds_pending,
        duplicates: audit.duplicates,
        oversold: audit.oversold,
        pending_tickets: audit.pending_tickets,
        drained: audit.drained,
        violations: audit.violations,
    }
}

/// The oversell audit of one goods.
#[utoipa::path(get, path = "/admin/v1/goods/{goods_id}/audit", tag = "admin",
    params(("goods_id" = i64, Path, description = "Goods id")), security(("bearer" = [])),
    responses((status = 200, body = AuditBody), (status = 404, body = Problem)))]
pub(crate) async fn audit_goods(
    state: web::Data<AppState>,
    admin: Admin,
    goods_id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let goods_id = goods_id.into_inner();
    let goods = state.stock.get_goods(goods_id).await?;
    let (level, orders) = figures(&state, admin.0, goods_id).await?;
    let audit = audit_of(goods_id, goods.name, &level, &orders);
    Ok(HttpResponse::Ok().json(AuditBody { ok: audit.violations.is_empty(), goods: vec![audit] }))
}

/// The oversell audit of every goods.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = AuditBody), (status = 403, body = Problem)))]
pub(crate) async fn audit_all(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, Problem> {
    let mut audits = Vec::new();
    for goods in state.stock.list_goods().await? {
        let (level, orders) = figures(&state, admin.0, goods.goods_id).await?;
        audits.push(audit_of(goods.goods_id, goods.name, &level, &orders));
    }
    Ok(HttpResponse::Ok().json(AuditBody { ok: audits.iter().all(|a| a.violations.is_empty()), goods: audits }))
}

/// Creates (or reuses) token-only load-test users and returns their tokens.
#[utoipa::path(post, path = "/admin/v1/users/bulk", tag = "admin", request_body = BulkUsersBody, security(("bearer" = [])),
    responses((status = 201, body = BulkUsersCreated), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn bulk_users(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<BulkUsersBody>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let request = BulkUsers { prefix: body.prefix, count: body.count };
    let users = state.users_for(admin.0).bulk_create(request).await?;
    let users = users.into_iter().map(|u| IssuedUserBody { id: u.id, username: u.username, token: u.token }).collect();
    Ok(HttpResponse::Created().json(BulkUsersCreated { users }))
}

/// Who is blacklisted from the seckill routes (for repeated anti-brush trips), and until when.
#[utoipa::path(get, path = "/admin/v1/blacklist", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = BlacklistBody), (status = 403, body = Problem)))]
pub(crate) async fn list_blacklist(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, Problem> {
    let entries = state.blacklist.list().await.map_err(|err| {
        tracing::warn!(%err, "blacklist unreadable");
        Problem::unavailable("blacklist unavailable")
    })?;
    let entries = entries.into_iter().map(|(entry, until_ms)| BlacklistEntryBody::new(&entry, until_ms)).collect();
    Ok(HttpResponse::Ok().json(BlacklistBody { entries }))
}

/// Lifts a blacklist entry (`user/<id>` or `ip/<address>`).
#[utoipa::path(delete, path = "/admin/v1/blacklist/{kind}/{id}", tag = "admin",
    params(("kind" = String, Path, description = "`user` or `ip`"), ("id" = String, Path, description = "User id or IP address")),
    security(("bearer" = [])),
    responses((status = 204, description = "Lifted"), (status = 404, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn lift_blacklist(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (kind, id) = path.into_inner();
    let entry =
        Entry::parse(&kind, &id).ok_or_else(|| Problem::not_found(format!("no blacklist entry {kind}/{id}")))?;
    let lifted = state.blacklist.lift(&entry).await.map_err(|err| {
        tracing::warn!(%err, "blacklist unwritable");
        Problem::unavailable("blacklist unavailable")
    })?;
    if !lifted {
        return Err(Problem::not_found(format!("no blacklist entry {kind}/{id}")));
    }
    tracing::info!(admin = admin.0.user_id, %entry, "blacklist entry lifted");
    Ok(HttpResponse::NoContent().finish())
}
