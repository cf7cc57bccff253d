//! Listing receipts: the parameters as clients send them, checked once for
//! both APIs (a bad one is a 400 that names it), and the opaque cursor.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{Caller, ReceiptPage, ReceiptService, ReceiptSummary, ServiceError};
use crate::job::ReceiptStatus;
use crate::store::listing::{ListingFilter, ListingKey};

/// The most receipts one page holds, and the default.
pub const MAX_PAGE: i64 = 100;
pub const DEFAULT_PAGE: i64 = 20;

/// The listing's parameters as sent (query string or GraphQL arguments).
#[derive(Debug, Clone, Default)]
pub struct ListingQuery {
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub purchased_from: Option<String>,
    pub purchased_to: Option<String>,
    pub q: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl ReceiptService {
    /// A page of receipts, newest first.
    pub async fn list_receipts(
        &self,
        caller: &Caller,
        query: &ListingQuery,
    ) -> Result<ReceiptPage, ServiceError> {
        let mut filter = filter(query)?;
        filter.owner = caller.listing_owner().map(String::from);
        let limit = filter.limit;
        // One more than asked, to know whether another page follows.
        filter.limit += 1;
        let mut rows = self.db.list_receipts(&filter).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = more
            .then(|| rows.last().map(|row| encode_cursor(row.key())))
            .flatten();
        Ok(ReceiptPage {
            receipts: rows.iter().map(ReceiptSummary::from_row).collect(),
            next_cursor,
        })
    }
}

fn bad(parameter: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::BadParameter {
        parameter,
        message: message.into(),
    }
}

fn filter(query: &ListingQuery) -> Result<ListingFilter, ServiceError> {
    fn given(value: &Option<String>) -> Option<&str> {
        value.as_deref().filter(|v| !v.is_empty())
    }
    let status = given(&query.status)
        .map(|raw| {
            raw.parse::<ReceiptStatus>().map_err(|_| {
                bad(
                    "status",
                    format!("unknown status `{raw}`: use queued, processing, completed, failed or cancelled"),
                )
            })
        })
        .transpose()?;
    let limit = match given(&query.limit) {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                bad(
                    "limit",
                    format!("`{raw}` is not a whole number from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let filter = ListingFilter {
        status: status.map(|s| s.to_string()),
        created_from: given(&query.from)
            .map(|raw| instant("from", raw, false))
            .transpose()?,
        created_to: given(&query.to)
            .map(|raw| instant("to", raw, true))
            .transpose()?,
        purchased_from: given(&query.purchased_from)
            .map(|raw| date("purchasedFrom", raw))
            .transpose()?,
        purchased_to: given(&query.purchased_to)
            .map(|raw| date("purchasedTo", raw))
            .transpose()?,
        store: given(&query.q).map(search_text).transpose()?,
        after: given(&query.cursor).map(decode_cursor).transpose()?,
        limit,
        owner: None,
    };
    check_order(&filter)?;
    Ok(filter)
}

fn check_order(filter: &ListingFilter) -> Result<(), ServiceError> {
    if let (Some(from), Some(to)) = (filter.created_from, filter.created_to)
        && from >= to
    {
        return Err(bad("to", "`to` must be after `from`"));
    }
    if let (Some(from), Some(to)) = (filter.purchased_from, filter.purchased_to)
        && from > to
    {
        return Err(bad(
            "purchasedTo",
            "`purchasedTo` must not be before `purchasedFrom`",
        ));
    }
    Ok(())
}

/// The years a date or timestamp may name: PostgreSQL's own range is wider
/// but not chrono's (`+262142-12-31` parses, and its next day overflows),
/// and a receipt outside these is a typing mistake.
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

fn in_years(parameter: &'static str, raw: &str, year: i32) -> Result<(), ServiceError> {
    if YEARS.contains(&year) {
        return Ok(());
    }
    Err(bad(
        parameter,
        format!(
            "`{raw}` is outside the years {} to {}",
            YEARS.start(),
            YEARS.end()
        ),
    ))
}

/// The store-name search text: PostgreSQL refuses a NUL character in text.
fn search_text(raw: &str) -> Result<String, ServiceError> {
    if raw.contains('\0') {
        return Err(bad("q", "must not contain a NUL character"));
    }
    Ok(raw.to_string())
}

/// An RFC 3339 timestamp, or a date: the start of that day (UTC), or for
/// the exclusive upper bound `to`, the start of the next day.
fn instant(parameter: &'static str, raw: &str, upper: bool) -> Result<DateTime<Utc>, ServiceError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        let at = at.with_timezone(&Utc);
        in_years(parameter, raw, at.year())?;
        return Ok(at);
    }
    let day = date(parameter, raw).map_err(|_| {
        bad(parameter, format!("`{raw}` is neither an RFC 3339 timestamp (2026-12-01T10:00:00Z) nor a date (2026-12-01)"))
    })?;
    let day = if upper { day + TimeDelta::days(1) } else { day };
    Ok(day.and_time(NaiveTime::MIN).and_utc())
}

fn date(parameter: &'static str, raw: &str) -> Result<NaiveDate, ServiceError> {
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| bad(parameter, format!("`{raw}` is not a date like 2026-12-01")))?;
    in_years(parameter, raw, day.year())?;
    Ok(day)
}

/// Opaque to clients: hex of `<created_at in µs>:<id>` of the page's last row.
fn encode_cursor(key: ListingKey) -> String {
    hex::encode(format!("{}:{}", key.created_at.timestamp_micros(), key.id))
}

fn decode_cursor(raw: &str) -> Result<ListingKey, ServiceError> {
    let invalid = || {
        bad(
            "cursor",
            "not a cursor this API gave out: pass `nextCursor` back unchanged",
        )
    };
    let text = hex::decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid)?;
    let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
    let created_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .filter(|at| YEARS.contains(&at.year()))
        .ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok(ListingKey { created_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_decodes_to_the_row_it_was_made_from() {
        let key = ListingKey {
            created_at: DateTime::from_timestamp_micros(1_764_547_200_123_456).expect("in range"),
            id: Uuid::new_v4(),
        };
        assert_eq!(decode_cursor(&encode_cursor(key)).expect("a cursor"), key);
    }

    #[test]
    fn a_date_as_upper_bound_includes_that_whole_day() {
        let to = instant("to", "2026-12-01", true).expect("a date");
        assert_eq!(to.to_rfc3339(), "2026-12-02T00:00:00+00:00");
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let cases = [
            (
                ListingQuery {
                    status: Some("lost".into()),
                    ..Default::default()
                },
                "status",
            ),
            (
                ListingQuery {
                    limit: Some("0".into()),
                    ..Default::default()
                },
                "limit",
            ),
            (
                ListingQuery {
                    limit: Some("101".into()),
                    ..Default::default()
                },
                "limit",
            ),
            (
                ListingQuery {
                    cursor: Some("zz".into()),
                    ..Default::default()
                },
                "cursor",
            ),
            (
                ListingQuery {
                    from: Some("yesterday".into()),
                    ..Default::default()
                },
                "from",
            ),
            (
                ListingQuery {
                    purchased_to: Some("2026-13-01".into()),
                    ..Default::default()
                },
                "purchasedTo",
            ),
        ];
        for (query, named) in cases {
            match filter(&query) {
                Err(ServiceError::BadParameter { parameter, .. }) => assert_eq!(parameter, named),
                other => panic!("{query:?}: {other:?}"),
            }
        }
    }
}
