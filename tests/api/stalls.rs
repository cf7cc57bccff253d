//! Stalled jobs, found by BullMQ's stalled-jobs check that every worker
//! process runs on its timer (`receipt_ocr::queue::stalls`): a job whose
//! worker died is moved back to `waiting` once and counted once, however
//! many processes check. A worker killed mid-job end to end is in
//! `faults.rs`.

use std::collections::HashMap;
use std::time::Duration;

use receipt_ocr::job::{ReceiptJobData, Schedule, new_job_id};
use receipt_ocr::queue::stalls::{self, StallCheck, StallCounter};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use crate::helpers::{isolated_settings, queue_for, redis_for, wait_for};

/// A receipt job's data; the blob is never read (no worker takes it).
pub fn receipt_job() -> ReceiptJobData {
    ReceiptJobData {
        receipt_id: uuid::Uuid::new_v4(),
        blob_key: "uploads/x.jpg".into(),
        content_type: "image/jpeg".into(),
        trace_context: Default::default(),
        run: 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_job_is_moved_back_and_counted_once_with_two_checkers_running() {
    let settings = isolated_settings();
    let queue = queue_for(&settings).await;
    let keys = format!("{}:{}", settings.queue.prefix, settings.queue.name);
    let mut redis = redis_for(&settings).await;
    // Two jobs taken by workers: `dead`'s worker died (no lock left),
    // `live`'s still renews its lock.
    let (dead, live) = (new_job_id(), new_job_id());
    for job_id in [&dead, &live] {
        queue
            .enqueue(job_id.clone(), receipt_job(), Schedule::default())
            .await
            .expect("enqueued");
        let _: () = redis::pipe()
            .lrem(format!("{keys}:wait"), 0, job_id)
            .lpush(format!("{keys}:active"), job_id)
            .query_async(&mut redis)
            .await
            .expect("taken");
    }
    let lock = format!("{keys}:{live}:lock");
    let _: () = redis
        .set_ex(&lock, "a-live-worker", 600)
        .await
        .expect("lock");

    // Two processes' checkers, checking often.
    let check = StallCheck {
        interval: Duration::from_millis(100),
        max_stalled_count: 1,
    };
    let counters = [StallCounter::default(), StallCounter::default()];
    let checkers = counters
        .clone()
        .map(|counter| tokio::spawn(stalls::watch(queue.clone(), check, counter)));

    let wait_key = format!("{keys}:wait");
    wait_for(|| async {
        (times_in(&mut redis.clone(), &wait_key, &dead).await == 1).then_some(())
    })
    .await;
    // Two more checks after the move: each marks the active `live` again
    // in the stalled set, which we empty before waiting for the next one.
    let stalled_key = format!("{keys}:stalled");
    for _ in 0..2 {
        let _: () = redis.del(&stalled_key).await.expect("DEL");
        wait_for(|| async {
            let mut redis = redis.clone();
            let marked: bool = redis.sismember(&stalled_key, &live).await.ok()?;
            marked.then_some(())
        })
        .await;
    }
    for checker in checkers {
        checker.abort();
    }

    let counted: u64 = counters.iter().map(StallCounter::get).sum();
    assert_eq!(counted, 1, "each stall is counted by one process only");
    assert_eq!(
        times_in(&mut redis, &wait_key, &dead).await,
        1,
        "moved back once"
    );
    assert_eq!(
        times_in(&mut redis, &wait_key, &live).await,
        0,
        "a locked job stays"
    );
    let stalls_seen: String = redis
        .hget(format!("{keys}:{dead}"), "stc")
        .await
        .expect("stc");
    assert_eq!(stalls_seen, "1");
    let events: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(format!("{keys}:events"))
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .expect("XRANGE");
    let stalled_events = events
        .iter()
        .filter(|(_, fields)| fields.get("event").map(String::as_str) == Some("stalled"))
        .map(|(_, fields)| fields.get("jobId").cloned().unwrap_or_default())
        .collect::<Vec<_>>();
    assert_eq!(
        stalled_events,
        vec![dead],
        "one `stalled` event, for the dead job"
    );
    let _: () = redis.del(&lock).await.expect("DEL");
    queue.obliterate().await.expect("obliterate");
}

/// How many times `job_id` is in the list at `key`.
async fn times_in(redis: &mut MultiplexedConnection, key: &str, job_id: &str) -> usize {
    let ids: Vec<String> = redis.lrange(key, 0, -1).await.expect("LRANGE");
    ids.iter().filter(|id| *id == job_id).count()
}
