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

/// Job ids are short printable tokens; anything else cannot exist.
pub fn is_plausible_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b))
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
}
