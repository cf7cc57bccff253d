//! Webhook deliveries and their attempts: a delivery is one final event of
//! a receipt for one target, written in the same transaction as the
//! receipt's final state (so no outcome is ever without its deliveries);
//! each attempt to send it is recorded with its answer.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, Insertable, OptionalExtension, QueryDsl, Queryable, Selectable,
    SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::ReceiptRow;
use super::schema::{webhook_attempts, webhook_deliveries};
use super::{Db, DbError};
use crate::job::webhook::{WebhookPayload, WebhookUrl};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Queued, being sent, or waiting for its next attempt.
    Pending,
    /// The target answered 2xx.
    Delivered,
    /// Every attempt failed, or the target cannot be reached safely.
    Failed,
    /// The target answered 410 Gone: not sent again.
    Gone,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Gone => "gone",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct DeliveryRow {
    pub id: Uuid,
    pub job_id: String,
    pub receipt_id: Uuid,
    pub event: String,
    pub url: String,
    pub payload: serde_json::Value,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub queued_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_attempts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct AttemptRow {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
}

/// One attempt, as the sender saw it.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct NewAttempt {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
}

/// A delivery with its attempts, oldest first.
#[derive(Debug, Clone)]
pub struct StoredDelivery {
    pub row: DeliveryRow,
    pub attempts: Vec<AttemptRow>,
}

/// Write one delivery of `payload` per target of `receipt`: the
/// deployment's `targets` and the receipt's own callback URL, each once.
/// Runs inside the transaction that gives the receipt its final state.
pub(super) async fn insert_deliveries(
    conn: &mut AsyncPgConnection,
    receipt: &ReceiptRow,
    payload: &WebhookPayload,
    targets: &[WebhookUrl],
) -> Result<Vec<Uuid>, DbError> {
    let mut urls: Vec<&str> = targets.iter().map(WebhookUrl::as_str).collect();
    if let Some(own) = receipt.callback_url.as_deref() {
        urls.push(own);
    }
    urls.sort_unstable();
    urls.dedup();
    let body = serde_json::to_value(payload)?;
    let now = Utc::now();
    let rows: Vec<DeliveryRow> = urls
        .into_iter()
        .map(|url| DeliveryRow {
            id: Uuid::new_v4(),
            job_id: receipt.job_id.clone(),
            receipt_id: receipt.id,
            event: payload.kind.as_str().to_string(),
            url: url.to_string(),
            payload: body.clone(),
            state: DeliveryState::Pending.as_str().to_string(),
            created_at: now,
            queued_at: None,
            updated_at: now,
        })
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    diesel::insert_into(webhook_deliveries::table)
        .values(&rows)
        .execute(conn)
        .await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

impl Db {
    pub async fn delivery(&self, id: Uuid) -> Result<Option<DeliveryRow>, DbError> {
        let mut conn = self.conn().await?;
        Ok(webhook_deliveries::table
            .find(id)
            .select(DeliveryRow::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// Every delivery of a job, oldest first, with its attempts.
    pub async fn deliveries_of_job(&self, job_id: &str) -> Result<Vec<StoredDelivery>, DbError> {
        let mut conn = self.conn().await?;
        let rows: Vec<DeliveryRow> = webhook_deliveries::table
            .filter(webhook_deliveries::job_id.eq(job_id))
            .order((webhook_deliveries::created_at, webhook_deliveries::id))
            .select(DeliveryRow::as_select())
            .load(&mut conn)
            .await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut attempts: Vec<AttemptRow> = webhook_attempts::table
            .filter(webhook_attempts::delivery_id.eq_any(&ids))
            .order((webhook_attempts::attempted_at, webhook_attempts::id))
            .select(AttemptRow::as_select())
            .load(&mut conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let (mine, rest) = attempts.drain(..).partition(|a| a.delivery_id == row.id);
                attempts = rest;
                StoredDelivery {
                    row,
                    attempts: mine,
                }
            })
            .collect())
    }

    /// Record an attempt and where the delivery stands after it.
    pub async fn record_attempt(
        &self,
        attempt: &NewAttempt,
        state: DeliveryState,
    ) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            diesel::insert_into(webhook_attempts::table)
                .values(attempt)
                .execute(conn)
                .await?;
            diesel::update(webhook_deliveries::table.find(attempt.delivery_id))
                .set((
                    webhook_deliveries::state.eq(state.as_str()),
                    webhook_deliveries::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            Ok::<_, DbError>(())
        })
        .await
    }

    /// Note that these deliveries' jobs are in the queue (now).
    pub async fn mark_deliveries_queued(&self, ids: &[Uuid]) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(ids)))
            .set((
                webhook_deliveries::queued_at.eq(diesel::dsl::now),
                webhook_deliveries::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Take pending deliveries that were queued but not touched since
    /// `cutoff` (no attempt recorded: their job may be lost), oldest first,
    /// touching them so that no other process takes them now (rows another
    /// process is taking are skipped) and the next look comes after the
    /// same wait.
    pub async fn take_overdue_deliveries(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, DbError> {
        #[derive(diesel::QueryableByName)]
        struct Taken {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: Uuid,
        }
        let mut conn = self.conn().await?;
        let taken: Vec<Taken> = diesel::sql_query(
            // `pending` spelled out: the partial index
            // webhook_deliveries_overdue_idx matches only a literal.
            "UPDATE webhook_deliveries SET updated_at = now() WHERE id IN ( \
               SELECT id FROM webhook_deliveries \
               WHERE state = 'pending' AND queued_at IS NOT NULL AND updated_at < $1 \
               ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING id",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .load(&mut conn)
        .await?;
        Ok(taken.into_iter().map(|row| row.id).collect())
    }

    /// Remove up to `limit` settled deliveries (delivered, failed, gone)
    /// untouched since `cutoff`, oldest first, with their attempts; answer
    /// how many went.
    pub async fn prune_settled_deliveries(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<usize, DbError> {
        let mut conn = self.conn().await?;
        // `pending` spelled out: the partial index
        // webhook_deliveries_settled_idx matches only a literal.
        let removed = diesel::sql_query(
            "DELETE FROM webhook_deliveries WHERE id IN ( \
               SELECT id FROM webhook_deliveries \
               WHERE state <> 'pending' AND updated_at < $1 \
               ORDER BY updated_at LIMIT $2)",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(&mut conn)
        .await?;
        Ok(removed)
    }

    /// Put taken deliveries back first in line for the next look (theirs
    /// could not be settled this time: Redis did not answer).
    pub async fn overdue_again(&self, ids: &[Uuid]) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        let long_ago = DateTime::<Utc>::UNIX_EPOCH;
        diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(ids)))
            .set(webhook_deliveries::updated_at.eq(long_ago))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Deliveries whose job was never queued (the process stopped or Redis
    /// failed right after the outcome was committed), created before
    /// `cutoff`, oldest first.
    pub async fn unqueued_deliveries(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, DbError> {
        let mut conn = self.conn().await?;
        Ok(webhook_deliveries::table
            .filter(webhook_deliveries::queued_at.is_null())
            .filter(webhook_deliveries::created_at.lt(cutoff))
            .order(webhook_deliveries::created_at)
            .limit(limit)
            .select(webhook_deliveries::id)
            .load(&mut conn)
            .await?)
    }

    /// Set the given settled deliveries pending again and answer those it
    /// reopened: one already pending (reopened by a request beside this
    /// one, say) is left alone, so only one run sends it.
    pub async fn reopen_deliveries(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, DbError> {
        let mut conn = self.conn().await?;
        let pending = DeliveryState::Pending.as_str();
        let reopened = diesel::update(
            webhook_deliveries::table
                .filter(webhook_deliveries::id.eq_any(ids))
                .filter(webhook_deliveries::state.ne(pending)),
        )
        .set((
            webhook_deliveries::state.eq(pending),
            webhook_deliveries::updated_at.eq(diesel::dsl::now),
        ))
        .returning(webhook_deliveries::id)
        .get_results(&mut conn)
        .await?;
        Ok(reopened)
    }

    /// Undo [`reopen_deliveries`](Self::reopen_deliveries) for deliveries
    /// whose redelivery could not be queued: each back to the state it was
    /// in (while still pending: nothing has tried it since).
    pub async fn settle_again(&self, deliveries: &[(Uuid, &str)]) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        for (id, state) in deliveries {
            diesel::update(
                webhook_deliveries::table
                    .find(id)
                    .filter(webhook_deliveries::state.eq(DeliveryState::Pending.as_str())),
            )
            .set(webhook_deliveries::state.eq(*state))
            .execute(&mut conn)
            .await?;
        }
        Ok(())
    }
}
