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

/// Concurrent purchases share the round trips of their "queued" marks: every mark still lands on
/// its own user's entry, across goods, and never covers an outcome its ticket already has.
#[tokio::test]
async fn two_thousand_concurrent_queued_marks_over_three_goods_each_land_on_their_own_entry() {
    let redis = testkit::redis_pool().await;
    let prefix = testkit::unique_name();
    let results = Results::new(testkit::redis_shared().await, Keyspace::new(&prefix));
    let marks: Vec<(i64, i64, Uuid)> = (0..2000).map(|n| (n % 3 + 1, n, Uuid::new_v4())).collect();
    // A fast worker settled every tenth ticket before its mark was sent.
    let settled: Vec<_> = marks
        .iter()
        .step_by(10)
        .map(|&(goods, user, ticket)| of(goods, user, ticket, Outcome::Success(user)))
        .collect();
    results.record(&settled).await.unwrap();

    let tasks: Vec<_> = marks
        .iter()
        .map(|&(goods, user, ticket)| {
            let results = results.clone();
            tokio::spawn(async move { results.mark_queued(goods, user, ticket).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    for (n, &(goods, user, ticket)) in marks.iter().enumerate() {
        let recorded = results.get(goods, user).await.unwrap().expect("an entry");
        assert_eq!(recorded.ticket, ticket);
        let expected =
            if n % 10 == 0 { OrderResult::Success { order_id: user } } else { OrderResult::Queued { ticket } };
        assert_eq!(recorded.result, expected, "user {user} of goods {goods}");
    }
    let queued: usize = queued_over_three_goods(&results).await;
    assert_eq!(queued, 1800);
    testkit::clear_redis_prefix(&redis, &prefix).await;
}

/// Tickets still queued, over the three goods.
async fn queued_over_three_goods(results: &Results) -> usize {
    let mut queued = 0;
    for goods in 1..=3 {
        queued += results.summary(goods).await.unwrap().0.len();
    }
    queued
}
