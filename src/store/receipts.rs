//! Every change of a receipt row, in one place: the placeholder at upload
//! (and its undo), `processing` when a worker starts, the saved reading,
//! and the final failure. Also the reads both APIs serve.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::{ItemRow, NewReceipt, ReceiptRow, StoredReceipt};
use super::schema::{receipt_items, receipts};
use super::{Db, DbError};
use crate::job::{Confidence, FieldBoxes, ReceiptBox, ReceiptStatus};
use crate::ocr::ReceiptReading;

/// The statuses only a retry changes.
const FINAL: [&str; 3] = ["completed", "failed", "cancelled"];

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

    /// Undo a placeholder whose job could not be queued.
    pub async fn delete_receipt(&self, id: Uuid) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::delete(receipts::table.find(id))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Mark the receipt `processing`, creating its row when the job came
    /// from a producer that wrote none (a Node BullMQ producer, say).
    /// Answers false, changing nothing, when a client cancelled it.
    pub async fn begin_processing(&self, receipt: &NewReceipt) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        diesel::insert_into(receipts::table)
            .values(receipt)
            .on_conflict_do_nothing()
            .execute(&mut conn)
            .await?;
        let waiting = [
            ReceiptStatus::Queued.as_str(),
            ReceiptStatus::Processing.as_str(),
        ];
        diesel::update(receipts::table.find(receipt.id))
            .filter(receipts::status.eq_any(waiting))
            .set((
                receipts::status.eq(ReceiptStatus::Processing.as_str()),
                receipts::updated_at.eq(diesel::dsl::now),
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

    /// Mark the receipt of `job_id` cancelled, now, unless it finished.
    /// Answers whether it changed.
    pub async fn cancel_receipt(&self, job_id: &str) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let changed = diesel::update(receipts::table.filter(receipts::job_id.eq(job_id)))
            .filter(receipts::status.ne_all(FINAL))
            .set((
                receipts::status.eq(ReceiptStatus::Cancelled.as_str()),
                receipts::cancelled_at.eq(diesel::dsl::now),
                receipts::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(changed > 0)
    }

    /// Put a failed or cancelled receipt back to `queued` for a retry.
    /// Answers whether it changed.
    pub async fn requeue_receipt(&self, job_id: &str) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let retryable = [
            ReceiptStatus::Failed.as_str(),
            ReceiptStatus::Cancelled.as_str(),
        ];
        let changed = diesel::update(receipts::table.filter(receipts::job_id.eq(job_id)))
            .filter(receipts::status.eq_any(retryable))
            .set((
                receipts::status.eq(ReceiptStatus::Queued.as_str()),
                receipts::failed_reason.eq(None::<String>),
                receipts::cancelled_at.eq(None::<chrono::DateTime<chrono::Utc>>),
                receipts::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(changed > 0)
    }

    /// Store what OCR found and hand back the stored receipt. Replaces any
    /// earlier result in one transaction, so a job that runs twice leaves
    /// one result. A receipt cancelled meanwhile is left alone: `None`.
    pub async fn save_reading(
        &self,
        id: Uuid,
        reading: &ReceiptReading,
    ) -> Result<Option<StoredReceipt>, DbError> {
        let items = item_rows(id, reading)?;
        let parsed = &reading.receipt;
        let confidence = serde_json::to_value(confidence_of(reading))?;
        let boxes = serde_json::to_value(boxes_of(reading))?;
        let engines: Vec<&str> = reading.engines.iter().map(|e| e.as_str()).collect();
        let engines = serde_json::to_value(engines)?;
        let mut conn = self.conn().await?;
        let stored = conn
            .transaction(async |conn| {
                let row = diesel::update(receipts::table.find(id))
                    .set((
                        (
                            receipts::status.eq(ReceiptStatus::Completed.as_str()),
                            receipts::store_name.eq(&parsed.store_name),
                            receipts::total_amount.eq(&parsed.total_amount),
                            receipts::currency.eq(&parsed.currency),
                            receipts::purchase_date.eq(parsed.purchase_date),
                            receipts::raw_text.eq(&reading.text),
                            receipts::ocr_confidence.eq(reading.ocr_confidence),
                            receipts::confidence.eq(parsed.confidence.overall),
                            receipts::field_confidence.eq(&confidence),
                            receipts::failed_reason.eq(None::<String>),
                            receipts::updated_at.eq(diesel::dsl::now),
                        ),
                        (
                            receipts::subtotal.eq(&parsed.subtotal),
                            receipts::tax.eq(&parsed.tax),
                            receipts::tip.eq(&parsed.tip),
                            receipts::payment_method.eq(&parsed.payment_method),
                            receipts::purchase_time.eq(parsed.time),
                            receipts::address.eq(&parsed.address),
                            receipts::phone.eq(&parsed.phone),
                            receipts::field_boxes.eq(&boxes),
                            receipts::ocr_engines.eq(&engines),
                        ),
                    ))
                    .returning(ReceiptRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                let Some(row) = row else {
                    return Ok(None);
                };
                diesel::delete(receipt_items::table.filter(receipt_items::receipt_id.eq(id)))
                    .execute(conn)
                    .await?;
                let items = diesel::insert_into(receipt_items::table)
                    .values(&items)
                    .returning(ItemRow::as_returning())
                    .get_results(conn)
                    .await?;
                Ok::<_, diesel::result::Error>(Some(StoredReceipt { row, items }))
            })
            .await?;
        Ok(stored)
    }

    /// Mark the receipt of `job_id` failed unless it already finished.
    pub async fn mark_job_failed(&self, job_id: &str, reason: &str) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::update(receipts::table.filter(receipts::job_id.eq(job_id)))
            .filter(receipts::status.ne_all(FINAL))
            .set((
                receipts::status.eq(ReceiptStatus::Failed.as_str()),
                receipts::failed_reason.eq(reason),
                receipts::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Receipts `queued` or `processing` untouched since `cutoff`, oldest
    /// first (the reconciler's candidates).
    pub async fn unfinished_receipts(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<ReceiptRow>, DbError> {
        let mut conn = self.conn().await?;
        let unfinished = [
            ReceiptStatus::Queued.as_str(),
            ReceiptStatus::Processing.as_str(),
        ];
        Ok(receipts::table
            .filter(receipts::status.eq_any(unfinished))
            .filter(receipts::updated_at.lt(cutoff))
            .order(receipts::updated_at)
            .limit(limit)
            .select(ReceiptRow::as_select())
            .load(&mut conn)
            .await?)
    }

    /// A receipt whose job is back in the queue (lost from Redis and added
    /// again, or handed back by a stopping worker): `queued`, touched now.
    pub async fn mark_queued_again(&self, job_id: &str) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        let unfinished = [
            ReceiptStatus::Queued.as_str(),
            ReceiptStatus::Processing.as_str(),
        ];
        diesel::update(receipts::table.filter(receipts::job_id.eq(job_id)))
            .filter(receipts::status.eq_any(unfinished))
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

/// The parser's confidence, typed as the read side parses it back.
fn confidence_of(reading: &ReceiptReading) -> Confidence {
    let c = reading.receipt.confidence;
    Confidence {
        overall: c.overall,
        store_name: c.store_name,
        total_amount: c.total_amount,
        date: c.purchase_date,
        items: c.items,
        time: c.time,
        subtotal: c.subtotal,
        tax: c.tax,
        tip: c.tip,
        payment_method: c.payment_method,
        address: c.address,
        phone: c.phone,
    }
}

/// The box of each field's source line on the image.
fn boxes_of(reading: &ReceiptReading) -> FieldBoxes {
    let lines = reading.receipt.lines;
    let at = |line| line_box(reading, line);
    FieldBoxes {
        store_name: at(lines.store_name),
        total_amount: at(lines.total_amount),
        date: at(lines.purchase_date),
        time: at(lines.time),
        subtotal: at(lines.subtotal),
        tax: at(lines.tax),
        tip: at(lines.tip),
        payment_method: at(lines.payment_method),
        address: at(lines.address),
        phone: at(lines.phone),
    }
}

/// Line `line` of the reading's text is line `line` of its OCR page.
fn line_box(reading: &ReceiptReading, line: Option<usize>) -> Option<ReceiptBox> {
    let bbox = reading.page.lines.get(line?)?.bbox;
    Some(ReceiptBox {
        x: bbox.x,
        y: bbox.y,
        width: bbox.width,
        height: bbox.height,
    })
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

fn item_rows(id: Uuid, reading: &ReceiptReading) -> Result<Vec<ItemRow>, DbError> {
    let row = |(position, item): (usize, &crate::ocr::ParsedItem)| {
        let bbox = line_box(reading, item.line);
        Ok(ItemRow {
            receipt_id: id,
            position: position as i32,
            name: item.name.clone(),
            quantity: item.quantity.clone(),
            unit_price: item.unit_price.clone(),
            line_total: item.line_total.clone(),
            bbox: bbox.map(serde_json::to_value).transpose()?,
        })
    };
    reading.receipt.items.iter().enumerate().map(row).collect()
}
