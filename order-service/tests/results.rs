//! The results store on the real Redis: a late outcome never hides a newer ticket's outcome.

use contracts::keyspace::Keyspace;
use contracts::order::OrderResult;
use order_service::results::{Outcome, Results, TicketOutcome};
use uuid::Uuid;

#[tokio::test]
async fn a_late_failure_of_an_old_ticket_never_covers_the_new_order() {
    let redis = testkit::redis_pool().await;
    let prefix = testkit::unique_name();
    let results = Results::new(testkit::redis_shared().await, Keyspace::new(&prefix));
    let (old, new) = (Uuid::new_v4(), Uuid::new_v4());
    // The old ticket failed; the user bought again and the new ticket succeeded.
    results.mark_queued(1, 7, old).await.unwrap();
    results.record(&[of(1, 7, old, Outcome::Failed("reservation lost".into()))]).await.unwrap();
    results.mark_queued(1, 7, new).await.unwrap();
    results.record(&[of(1, 7, new, Outcome::Success(42))]).await.unwrap();
    // A redelivery of the old message records its failure again, late.
    results.record(&[of(1, 7, old, Outcome::Failed("reservation lost".into()))]).await.unwrap();
    assert_eq!(results.get(1, 7).await.unwrap().unwrap().result, OrderResult::Success { order_id: 42 });

    // A failure of the ticket itself replaces its "queued"; a success replaces another ticket's failure.
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    results.mark_queued(1, 8, first).await.unwrap();
    results.record(&[of(1, 8, first, Outcome::Failed("order could not be written".into()))]).await.unwrap();
    assert!(matches!(results.get(1, 8).await.unwrap().unwrap().result, OrderResult::Failed { .. }));
    results.record(&[of(1, 8, second, Outcome::Success(43))]).await.unwrap();
    assert_eq!(results.get(1, 8).await.unwrap().unwrap().result, OrderResult::Success { order_id: 43 });
    // "queued" never hides the outcome of its own ticket.
    results.mark_queued(1, 8, second).await.unwrap();
    assert_eq!(results.get(1, 8).await.unwrap().unwrap().result, OrderResult::Success { order_id: 43 });
    testkit::clear_redis_prefix(&redis, &prefix).await;
}

fn of(goods_id: i64, user_id: i64, ticket: Uuid, outcome: Outcome) -> TicketOutcome {
    TicketOutcome { goods_id, user_id, ticket, outcome }
}
