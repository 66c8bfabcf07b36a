//! The sale lifecycle over HTTP, the whole system in process: pay through the sandbox provider
//! (which calls this gateway's webhook back, signed), cancel, list, a late payment refunded.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Options, TestApp, spawn_app};

/// Buys one unit and returns the order id (a string, as the API gives it).
async fn won_order(app: &TestApp, goods_id: i64, token: &str) -> String {
    let (status, body) = app.buy(goods_id, token).await;
    assert_eq!(status, 202, "{body}");
    let result = app.final_result(goods_id, token).await;
    assert_eq!(result["status"], "success", "{result}");
    result["order_id"].as_str().expect("an order id").to_owned()
}

async fn order(app: &TestApp, order_id: &str, token: &str) -> Value {
    let (status, body) = app.get(&format!("/api/v1/orders/{order_id}"), Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the order's status is `status`.
async fn order_becomes(app: &TestApp, order_id: &str, token: &str, status: &str) -> Value {
    testkit::wait_for(Duration::from_secs(30), || async {
        let body = order(app, order_id, token).await;
        (body["status"] == status).then_some(body)
    })
    .await
    .unwrap_or_else(|| panic!("order {order_id} never became {status}"))
}

#[actix_web::test]
async fn a_buyer_pays_through_the_sandbox_cancels_lists_and_a_late_payment_is_refunded() {
    let app = spawn_app(Options::default()).await;
    let goods_id = app.sale_with_window(4, 3).await;
    let users = app.users(4).await;
    let (payer, canceller, late, retrier) = (&users[0].1, &users[1].1, &users[2].1, &users[3].1);

    // A payment the provider declines leaves the order unpaid; another one, in the window, pays it.
    let retried = won_order(&app, goods_id, retrier).await;
    let pay = format!("/api/v1/orders/{retried}/pay");
    let declined = json!({"sandbox": {"succeed": false, "callback_after_ms": 50}});
    let (status, payment) = app.post_idempotent(&pay, retrier, "declined-1", declined).await;
    assert_eq!(status, 202, "{payment}");
    let failed = testkit::wait_for(Duration::from_secs(30), || async {
        let status: String = sqlx::query_scalar("SELECT status FROM payments WHERE provider_ref = $1")
            .bind(payment["provider_ref"].as_str().unwrap())
            .fetch_one(&app.db_pool())
            .await
            .unwrap();
        (status == "failed").then_some(())
    })
    .await;
    assert!(failed.is_some(), "the declined payment failed");
    assert_eq!(order(&app, &retried, retrier).await["status"], "unpaid");
    let (status, _) = app.post_idempotent(&pay, retrier, "accepted-2", json!({})).await;
    assert_eq!(status, 202);
    order_becomes(&app, &retried, retrier, "paid").await;

    // Paid in time: the sandbox calls the webhook back, and the order is paid.
    let paid = won_order(&app, goods_id, payer).await;
    let unpaid = order(&app, &paid, payer).await;
    assert_eq!(unpaid["status"], "unpaid", "{unpaid}");
    assert!(unpaid["expires_at"].is_string());
    let pay = format!("/api/v1/orders/{paid}/pay");
    let (status, missing_key) = app.post(&pay, Some(payer), json!({})).await;
    assert_eq!((status, missing_key["code"].as_str()), (400, Some("VALIDATION")), "{missing_key}");
    let (status, payment) = app.post_idempotent(&pay, payer, "key-1", json!({})).await;
    assert_eq!((status, payment["status"].as_str()), (202, Some("pending")), "{payment}");
    let (status, again) = app.post_idempotent(&pay, payer, "key-1", json!({})).await;
    assert_eq!(again["payment_id"], payment["payment_id"], "the same key is the same payment ({status})");
    order_becomes(&app, &paid, payer, "paid").await;
    let (status, paid_twice) = app.post_idempotent(&pay, payer, "key-2", json!({})).await;
    assert_eq!((status, paid_twice["code"].as_str()), (409, Some("ORDER_PAID")), "{paid_twice}");
    let (status, _) = app.post(&format!("/api/v1/orders/{paid}/cancel"), Some(payer), json!({})).await;
    assert_eq!(status, 409, "a paid order cannot be cancelled");
    // Another buyer's order is not found, for paying as for cancelling.
    let (status, _) = app.post_idempotent(&pay, canceller, "key-x", json!({})).await;
    assert_eq!(status, 404);

    // Cancelled by its buyer: the unit is back and the buyer may buy again.
    let cancelled = won_order(&app, goods_id, canceller).await;
    let (status, body) = app.post(&format!("/api/v1/orders/{cancelled}/cancel"), Some(canceller), json!({})).await;
    assert_eq!(
        (status, body["status"].as_str(), body["cancel_reason"].as_str()),
        (200, Some("cancelled"), Some("buyer"))
    );
    let result = app.final_result(goods_id, canceller).await;
    assert_eq!(result["status"], "cancelled", "{result}");
    let rebought = won_order(&app, goods_id, canceller).await;
    assert_ne!(rebought, cancelled);

    // Paid too late: the sandbox calls back after the window; the order stays cancelled and
    // the money is refunded.
    let late_order = won_order(&app, goods_id, late).await;
    let body = json!({"sandbox": {"succeed": true, "callback_after_ms": 6_000}});
    let (status, late_payment) =
        app.post_idempotent(&format!("/api/v1/orders/{late_order}/pay"), late, "late-1", body).await;
    assert_eq!(status, 202, "{late_payment}");
    let timed_out = order_becomes(&app, &late_order, late, "cancelled").await;
    assert_eq!(timed_out["cancel_reason"], "timeout");
    let refunded = testkit::wait_for(Duration::from_secs(30), || async {
        let status: String = sqlx::query_scalar("SELECT status FROM payments WHERE provider_ref = $1")
            .bind(late_payment["provider_ref"].as_str().unwrap())
            .fetch_one(&app.db_pool())
            .await
            .unwrap();
        (status == "refunded").then_some(())
    })
    .await;
    assert!(refunded.is_some(), "the late payment was refunded");
    assert_eq!(order(&app, &late_order, late).await["status"], "cancelled", "a late payment resurrects nothing");

    // The webhook refuses what the provider did not sign.
    let forged = app
        .client
        .post(app.url("/api/v1/payments/webhook"))
        .insert_header(("Seckill-Signature", "t=1,v1=00"))
        .send_json(&json!({"type": "payment.succeeded", "intent": "x"}))
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 400);

    // The buyer's list, newest first, a page at a time.
    let (status, first) = app.get("/api/v1/orders?limit=1", Some(canceller)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["orders"][0]["id"], rebought.as_str());
    let next = first["next_before"].as_str().expect("a second page");
    let (_, second) = app.get(&format!("/api/v1/orders?limit=1&before={next}"), Some(canceller)).await;
    assert_eq!(second["orders"][0]["id"], cancelled.as_str());
    let (status, _) = app.get("/api/v1/orders?limit=0", Some(canceller)).await;
    assert_eq!(status, 400);

    let audit = app.drained_audit(goods_id).await;
    let goods = &audit["goods"][0];
    assert_eq!(audit["ok"], true, "{audit}");
    // 4 units: two paid, one rebought (unpaid until its window closes too), the late one cancelled.
    assert_eq!(goods["paid"], 2, "{audit}");
    assert!(goods["cancelled"].as_i64().unwrap() >= 2, "{audit}");
    app.finish().await;
}
