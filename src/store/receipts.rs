//! Every change of a receipt row before its final state, in one place: the
//! placeholder at upload (and its undo), `processing` when a worker starts,
//! a requeue for a retry or a lost job. Also the reads both APIs serve.
//! The final states are written in [`super::finish`].

use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::{ItemRow, NewReceipt, ReceiptRow, StoredReceipt};
use super::schema::{receipt_items, receipts};
use super::{Db, DbError};
use crate::job::ReceiptStatus;

impl Db {
    /// The placeholder row of an accepted upload.
    pub async fn insert_receipt(&self, new: &NewReceipt) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::insert_into(receipts::table)
            .values(new)
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Undo a placeholder whose job could not be queued, unless a
    /// duplicate upload was handed its job meanwhile
    /// ([`Db::share_receipt`]): answers false when the row is kept for
    /// that reason.
    pub async fn delete_unshared_receipt(&self, id: Uuid) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let deleted = diesel::delete(receipts::table.find(id))
            .filter(receipts::shared.eq(false))
            .execute(&mut conn)
            .await?;
        if deleted > 0 {
            return Ok(true);
        }
        let shared = receipts::table
            .find(id)
            .select(receipts::shared)
            .first::<bool>(&mut conn)
            .await
            .optional()?;
        Ok(shared != Some(true))
    }

    /// Mark the receipt `processing`, creating its row when the job came
    /// from a producer that wrote none (a Node BullMQ producer, say), and
    /// on the starting job's run: Redis holds one job per id, so the job
    /// that starts is the receipt's run (a job Bull Board retried, say,
    /// after a client's retry claimed the row and then gave way to it).
    /// Answers false, changing nothing, when a client cancelled it.
    pub async fn begin_processing(&self, receipt: &NewReceipt) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        diesel::insert_into(receipts::table)
            .values(receipt)
            .on_conflict_do_nothing()
            .execute(&mut conn)
            .await?;
        diesel::update(receipts::table.find(receipt.id))
            .filter(receipts::status.eq_any(ReceiptStatus::UNFINISHED))
            .set((
                receipts::status.eq(ReceiptStatus::Processing.as_str()),
                receipts::updated_at.eq(diesel::dsl::now),
                receipts::run.eq(receipt.run),
            ))
            .execute(&mut conn)
            .await?;
        let status: String = receipts::table
            .find(receipt.id)
            .select(receipts::status)
            .first(&mut conn)
            .await?;
        Ok(status != ReceiptStatus::Cancelled.as_str())
    }

    /// Put a failed or cancelled receipt whose image is still stored back
    /// to `queued` for a retry, on its next run: answers that run, or
    /// `None` when nothing changed.
    pub async fn requeue_receipt(&self, job_id: &str) -> Result<Option<u32>, DbError> {
        let mut conn = self.conn().await?;
        let retryable = [
            ReceiptStatus::Failed.as_str(),
            ReceiptStatus::Cancelled.as_str(),
        ];
        let changed = diesel::update(receipts::table.filter(receipts::job_id.eq(job_id)))
            .filter(receipts::status.eq_any(retryable))
            .filter(receipts::image_removed_at.is_null())
            .set((
                receipts::status.eq(ReceiptStatus::Queued.as_str()),
                receipts::failed_reason.eq(None::<String>),
                receipts::cancelled_at.eq(None::<chrono::DateTime<chrono::Utc>>),
                receipts::updated_at.eq(diesel::dsl::now),
                receipts::run.eq(receipts::run + 1),
            ))
            .returning(receipts::run)
            .get_result::<i32>(&mut conn)
            .await
            .optional()?;
        Ok(changed.map(run_of))
    }

    /// Put back a receipt that a retry claimed ([`Db::requeue_receipt`])
    /// but could not queue: `row` as it was read before, if it is still
    /// `queued` (nothing took it up since), but on the run the retry
    /// began: its job may still land late, and a run is never reused.
    pub async fn unclaim_receipt(&self, row: &ReceiptRow) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::update(receipts::table.find(row.id))
            .filter(receipts::status.eq(ReceiptStatus::Queued.as_str()))
            .set((
                receipts::status.eq(&row.status),
                receipts::failed_reason.eq(&row.failed_reason),
                receipts::cancelled_at.eq(row.cancelled_at),
                receipts::updated_at.eq(row.updated_at),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Receipts `queued` or `processing` untouched since `cutoff`, oldest
    /// first, from after `after` (the last row of the page before): the
    /// reconciler's candidates, a page at a time.
    pub async fn unfinished_receipts(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        after: Option<UnfinishedKey>,
        limit: i64,
    ) -> Result<Vec<ReceiptRow>, DbError> {
        let mut conn = self.conn().await?;
        let mut query = receipts::table
            .filter(receipts::status.eq_any(ReceiptStatus::UNFINISHED))
            .filter(receipts::updated_at.lt(cutoff))
            .order((receipts::updated_at, receipts::id))
            .limit(limit)
            .select(ReceiptRow::as_select())
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(
                receipts::updated_at
                    .gt(after.updated_at)
                    .or(receipts::updated_at
                        .eq(after.updated_at)
                        .and(receipts::id.gt(after.id))),
            );
        }
        Ok(query.load(&mut conn).await?)
    }

    /// A receipt whose job Redis lost, to be added again: `queued` on its
    /// next run (a late write for the lost job then changes nothing).
    /// Left untouched in time: should the add fail, the next pass tries
    /// again. Answers that run; `None` when the row finished since.
    pub async fn requeue_lost(&self, job_id: &str) -> Result<Option<u32>, DbError> {
        let mut conn = self.conn().await?;
        let run = diesel::update(receipts::table.filter(receipts::job_id.eq(job_id)))
            .filter(receipts::status.eq_any(ReceiptStatus::UNFINISHED))
            .set((
                receipts::status.eq(ReceiptStatus::Queued.as_str()),
                receipts::run.eq(receipts::run + 1),
            ))
            .returning(receipts::run)
            .get_result::<i32>(&mut conn)
            .await
            .optional()?;
        Ok(run.map(run_of))
    }

    /// The status of the receipt of `job_id`, if it has one.
    pub async fn status_of_job(&self, job_id: &str) -> Result<Option<String>, DbError> {
        let mut conn = self.conn().await?;
        Ok(receipts::table
            .filter(receipts::job_id.eq(job_id))
            .select(receipts::status)
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// A receipt whose job a stopping worker handed back to the queue:
    /// `queued`, touched now.
    pub async fn mark_queued_again(&self, job_id: &str) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::update(receipts::table.filter(receipts::job_id.eq(job_id)))
            .filter(receipts::status.eq_any(ReceiptStatus::UNFINISHED))
            .set((
                receipts::status.eq(ReceiptStatus::Queued.as_str()),
                receipts::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn receipt_by_id(&self, id: Uuid) -> Result<Option<StoredReceipt>, DbError> {
        let mut conn = self.conn().await?;
        let row = receipts::table
            .find(id)
            .select(ReceiptRow::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        with_items(&mut conn, row).await
    }

    pub async fn receipt_by_job_id(&self, job_id: &str) -> Result<Option<StoredReceipt>, DbError> {
        let mut conn = self.conn().await?;
        let row = receipts::table
            .filter(receipts::job_id.eq(job_id))
            .select(ReceiptRow::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        with_items(&mut conn, row).await
    }

    /// Whether a receipt has job `job_id`, and its owner: `None` when
    /// there is no such row, `Some(None)` when it has no owner.
    pub async fn owner_of_job(&self, job_id: &str) -> Result<Option<Option<String>>, DbError> {
        let mut conn = self.conn().await?;
        Ok(receipts::table
            .filter(receipts::job_id.eq(job_id))
            .select(receipts::owner)
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// How many receipts exist (tests and metrics).
    pub async fn count_receipts(&self) -> Result<i64, DbError> {
        let mut conn = self.conn().await?;
        Ok(receipts::table.count().get_result(&mut conn).await?)
    }
}

async fn with_items(
    conn: &mut AsyncPgConnection,
    row: Option<ReceiptRow>,
) -> Result<Option<StoredReceipt>, DbError> {
    let Some(row) = row else { return Ok(None) };
    let items = receipt_items::table
        .filter(receipt_items::receipt_id.eq(row.id))
        .order(receipt_items::position)
        .select(ItemRow::as_select())
        .load(conn)
        .await?;
    Ok(Some(StoredReceipt { row, items }))
}

/// Where a page of [`Db::unfinished_receipts`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnfinishedKey {
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub id: Uuid,
}

impl UnfinishedKey {
    pub fn of(row: &ReceiptRow) -> Self {
        Self {
            updated_at: row.updated_at,
            id: row.id,
        }
    }
}

/// A run as stored (a non-negative `integer`).
fn run_of(stored: i32) -> u32 {
    u32::try_from(stored).unwrap_or_default()
}
