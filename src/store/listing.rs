//! The one read that lists receipts: newest first, keyset-paginated on
//! `(created_at, id)` so a page boundary never moves when rows are added,
//! with optional filters that the listing migration's indexes serve.

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::sql_types::{Bool, Timestamptz};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, PgTextExpressionMethods, QueryDsl, Queryable,
    Selectable,
};
use diesel::{BoxableExpression, SelectableHelper};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::schema::receipts;
use super::{Db, DbError};

/// Where a page starts: strictly after this row, in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListingKey {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// Which receipts to list; every filter is optional and they combine.
#[derive(Debug, Clone, Default)]
pub struct ListingFilter {
    pub status: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub created_to: Option<DateTime<Utc>>,
    pub purchased_from: Option<NaiveDate>,
    /// Inclusive.
    pub purchased_to: Option<NaiveDate>,
    /// Store-name substring, case-insensitive.
    pub store: Option<String>,
    pub after: Option<ListingKey>,
    pub limit: i64,
    /// Only this owner's receipts and unowned ones; `None` for all.
    pub owner: Option<String>,
}

/// The columns a listing shows (not the raw text nor the items).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = receipts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ListedRow {
    pub id: Uuid,
    pub job_id: String,
    pub status: String,
    pub store_name: Option<String>,
    pub total_amount: Option<BigDecimal>,
    pub currency: Option<String>,
    pub purchase_date: Option<NaiveDate>,
    pub failed_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ListedRow {
    pub fn key(&self) -> ListingKey {
        ListingKey {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

impl Db {
    /// Up to `filter.limit` receipts, newest first, after `filter.after`.
    pub async fn list_receipts(&self, filter: &ListingFilter) -> Result<Vec<ListedRow>, DbError> {
        let mut query = receipts::table
            .select(ListedRow::as_select())
            .order((receipts::created_at.desc(), receipts::id.desc()))
            .limit(filter.limit)
            .into_boxed();
        if let Some(status) = &filter.status {
            query = query.filter(receipts::status.eq(status.clone()));
        }
        if let Some(from) = filter.created_from {
            query = query.filter(receipts::created_at.ge(from));
        }
        if let Some(to) = filter.created_to {
            query = query.filter(receipts::created_at.lt(to));
        }
        if let Some(from) = filter.purchased_from {
            query = query.filter(receipts::purchase_date.ge(from));
        }
        if let Some(to) = filter.purchased_to {
            query = query.filter(receipts::purchase_date.le(to));
        }
        if let Some(store) = &filter.store {
            let pattern = format!("%{}%", escape_like(store));
            query = query.filter(receipts::store_name.ilike(pattern));
        }
        if let Some(owner) = &filter.owner {
            query = query.filter(
                receipts::owner
                    .eq(owner.clone())
                    .or(receipts::owner.is_null()),
            );
        }
        if let Some(after) = filter.after {
            query = query.filter(before(after));
        }
        let mut conn = self.conn().await?;
        Ok(query.load(&mut conn).await?)
    }
}

/// `(created_at, id) < (key)`: a row comparison, which PostgreSQL turns
/// into one range of the `(created_at DESC, id DESC)` indexes.
fn before(key: ListingKey) -> Box<dyn BoxableExpression<receipts::table, Pg, SqlType = Bool>> {
    let row = diesel::dsl::sql::<Bool>("(receipts.created_at, receipts.id) < (")
        .bind::<Timestamptz, _>(key.created_at)
        .sql(", ")
        .bind::<diesel::sql_types::Uuid, _>(key.id)
        .sql(")");
    Box::new(row)
}

/// A user's text matched literally inside LIKE: `%`, `_` and `\` escaped.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_in_a_search_are_matched_literally() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
