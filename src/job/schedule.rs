//! When and in which order a job runs: its priority and its delay, checked
//! from what a client sent.

use chrono::{DateTime, Utc};

/// BullMQ's range: 1 is the highest priority. A job without one is served
/// before every prioritized job (BullMQ's rule, kept so that our jobs and a
/// Node producer's are ordered alike).
pub const HIGHEST_PRIORITY: u32 = 1;
pub const LOWEST_PRIORITY: u32 = 2_097_152;

/// How far ahead a job may be scheduled: a year. (Much further, BullMQ's
/// delayed-set scores, the due time × 4096 as a double, lose the exact
/// time; a delay of centuries is a mistake, not a plan.)
pub const MAX_DELAY_MS: u64 = 365 * 24 * 60 * 60 * 1000;

/// A field a client sent that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Field `{field}` {problem}.")]
pub struct InvalidField {
    pub field: &'static str,
    pub problem: String,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        problem: problem.into(),
    }
}

/// A job's place in the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    /// None: served before every prioritized job, in upload order.
    pub priority: Option<u32>,
    /// How long the job waits before it may start.
    pub delay_ms: u64,
}

/// The scheduling fields of an upload, as sent.
#[derive(Debug, Clone, Default)]
pub struct ScheduleRequest {
    pub priority: Option<String>,
    pub delay: Option<String>,
    pub process_at: Option<String>,
}

impl ScheduleRequest {
    /// Check every field; `now` is the time the upload arrived.
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<Schedule, InvalidField> {
        let priority = self.priority.as_deref().map(parse_priority).transpose()?;
        let delay_ms = match (&self.delay, &self.process_at) {
            (Some(_), Some(_)) => {
                return Err(invalid("delay", "and `processAt` cannot both be sent"));
            }
            (Some(raw), None) => parse_delay(raw)?,
            (None, Some(raw)) => delay_until(raw, now)?,
            (None, None) => 0,
        };
        Ok(Schedule { priority, delay_ms })
    }
}

fn parse_priority(raw: &str) -> Result<u32, InvalidField> {
    let range = || {
        format!(
            "must be a whole number from {HIGHEST_PRIORITY} (highest) to {LOWEST_PRIORITY}, got `{raw}`"
        )
    };
    let value: u32 = raw
        .trim()
        .parse()
        .map_err(|_| invalid("priority", range()))?;
    if !(HIGHEST_PRIORITY..=LOWEST_PRIORITY).contains(&value) {
        return Err(invalid("priority", range()));
    }
    Ok(value)
}

fn parse_delay(raw: &str) -> Result<u64, InvalidField> {
    let delay_ms = raw.trim().parse().map_err(|_| {
        invalid(
            "delay",
            format!("must be a whole, non-negative number of milliseconds, got `{raw}`"),
        )
    })?;
    within_a_year("delay", raw, delay_ms)
}

fn within_a_year(field: &'static str, raw: &str, delay_ms: u64) -> Result<u64, InvalidField> {
    if delay_ms > MAX_DELAY_MS {
        return Err(invalid(
            field,
            format!("`{raw}` is more than a year ahead ({MAX_DELAY_MS} ms): schedule it later"),
        ));
    }
    Ok(delay_ms)
}

fn delay_until(raw: &str, now: DateTime<Utc>) -> Result<u64, InvalidField> {
    let at = DateTime::parse_from_rfc3339(raw.trim()).map_err(|_| {
        invalid(
            "processAt",
            format!(
                "must be an RFC 3339 time with an offset, e.g. 2026-12-01T09:30:00Z, got `{raw}`"
            ),
        )
    })?;
    let wait = at.with_timezone(&Utc) - now;
    if wait < chrono::TimeDelta::zero() {
        return Err(invalid("processAt", format!("`{raw}` is in the past")));
    }
    within_a_year("processAt", raw, wait.num_milliseconds() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(priority: Option<&str>, delay: Option<&str>, at: Option<&str>) -> ScheduleRequest {
        ScheduleRequest {
            priority: priority.map(String::from),
            delay: delay.map(String::from),
            process_at: at.map(String::from),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .expect("a valid time")
            .with_timezone(&Utc)
    }

    #[test]
    fn an_upload_without_fields_gets_no_priority_and_no_delay() {
        assert_eq!(
            request(None, None, None).resolve(now()),
            Ok(Schedule::default())
        );
    }

    #[test]
    fn process_at_becomes_the_delay_from_now() {
        let schedule = request(Some("3"), None, Some("2026-12-01T10:00:00+01:00"))
            .resolve(now())
            .expect("valid");
        assert_eq!(
            schedule,
            Schedule {
                priority: Some(3),
                delay_ms: 0
            }
        );
        let later = request(None, None, Some("2026-12-01T09:00:05Z")).resolve(now());
        assert_eq!(later.map(|s| s.delay_ms), Ok(5_000));
        // A year ahead is the furthest.
        let year = request(None, None, Some("2027-12-01T09:00:00Z")).resolve(now());
        assert_eq!(year.map(|s| s.delay_ms), Ok(MAX_DELAY_MS));
        let year = request(None, Some("31536000000"), None).resolve(now());
        assert_eq!(year.map(|s| s.delay_ms), Ok(MAX_DELAY_MS));
    }

    #[test]
    fn each_bad_value_names_its_field() {
        for (bad, field) in [
            (request(Some("0"), None, None), "priority"),
            (request(Some("2097153"), None, None), "priority"),
            (request(Some("high"), None, None), "priority"),
            (request(None, Some("-5"), None), "delay"),
            (request(None, Some("soon"), None), "delay"),
            (
                request(None, Some("5"), Some("2026-12-02T00:00:00Z")),
                "delay",
            ),
            (
                request(None, None, Some("2026-11-30T00:00:00Z")),
                "processAt",
            ),
            (request(None, None, Some("2026-12-02 10:00")), "processAt"),
            (request(None, Some("18446744073709551615"), None), "delay"),
            (request(None, Some("31536000001"), None), "delay"),
            (
                request(None, None, Some("2027-12-01T09:00:00.001Z")),
                "processAt",
            ),
        ] {
            assert_eq!(
                bad.resolve(now()).map_err(|e| e.field),
                Err(field),
                "{bad:?}"
            );
        }
    }
}
