//! Job ids: `ocr-<unix ms>-<12 random base-36 characters>`.

use rand::Rng;

/// A new job id. ~62 bits of randomness, so one id says nothing about another.
pub fn new_job_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let random: String = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..36)] as char)
        .collect();
    format!("ocr-{}-{random}", chrono::Utc::now().timestamp_millis())
}

/// The names of a BullMQ queue's own keys (`<prefix>:<queue>:<name>`): a
/// job with one of them as its id cannot exist, its hash would be that key.
const QUEUE_KEY_NAMES: [&str; 17] = [
    "wait",
    "paused",
    "active",
    "delayed",
    "prioritized",
    "completed",
    "failed",
    "stalled",
    "stalled-check",
    "limiter",
    "meta",
    "events",
    "id",
    "marker",
    "pc",
    "repeat",
    "metrics",
];

/// Job ids are short printable tokens that do not name one of the queue's
/// own keys; anything else cannot exist. (`:` stays: BullMQ's repeatable
/// jobs have it; an id that names another key is answered as not found by
/// [`QueueHandle::lookup`](crate::queue::QueueHandle::lookup).)
pub fn is_plausible_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b))
        && !QUEUE_KEY_NAMES.contains(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_job_ids_are_plausible_and_distinct() {
        let (a, b) = (new_job_id(), new_job_id());
        assert!(is_plausible_job_id(&a) && is_plausible_job_id(&b));
        assert_ne!(a, b);
        assert_eq!(a.rsplit('-').next().map(str::len), Some(12));
    }

    #[test]
    fn ids_with_spaces_or_slashes_are_not_plausible() {
        assert!(!is_plausible_job_id("ocr-1 2"));
        assert!(!is_plausible_job_id("../etc"));
        assert!(!is_plausible_job_id(""));
    }

    #[test]
    fn ids_naming_the_queues_own_keys_are_not_plausible() {
        for id in ["wait", "meta", "events", "stalled-check"] {
            assert!(!is_plausible_job_id(id), "{id}");
        }
        assert!(is_plausible_job_id("42"), "a BullMQ counter id");
        assert!(is_plausible_job_id("repeat:daily:1700000000000"));
    }
}
