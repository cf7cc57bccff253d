//! The final states of a receipt row: completed, failed, cancelled. Each is
//! written together with the webhook deliveries it raises, in one
//! transaction, and only when the row's status actually changes to it, so
//! an outcome is announced once and never lost between the two writes.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::{ItemRow, ReceiptRow, StoredReceipt};
use super::schema::{receipt_items, receipts};
use super::webhooks::insert_deliveries;
use super::{Db, DbError};
use crate::job::webhook::{WebhookPayload, WebhookUrl};
use crate::job::{Confidence, FieldBoxes, ReceiptBox, ReceiptStatus};
use crate::ocr::ReceiptReading;

/// The statuses only a retry changes.
const FINAL: [&str; 3] = ["completed", "failed", "cancelled"];

/// Who hears of a final state.
#[derive(Debug, Clone, Copy)]
pub enum Notify<'a> {
    /// A new outcome: one delivery for each of these deployment targets
    /// (WEBHOOK_URLS) and for the receipt's own callback URL.
    Targets(&'a [WebhookUrl]),
    /// An earlier outcome put back (a retry that could not be queued): no
    /// event.
    Nobody,
}

/// A final state written, and the deliveries it raised (to be queued).
#[derive(Debug, Clone)]
pub struct Finished<T> {
    pub value: T,
    pub deliveries: Vec<Uuid>,
}

impl Db {
    /// Store what OCR found and hand back the stored receipt. Replaces any
    /// earlier result in one transaction, so a job that runs twice leaves
    /// one result (and one `receipt.completed`). A receipt cancelled
    /// meanwhile is left alone: `None`.
    pub async fn save_reading(
        &self,
        id: Uuid,
        reading: &ReceiptReading,
        notify: Notify<'_>,
    ) -> Result<Option<Finished<StoredReceipt>>, DbError> {
        let items = item_rows(id, reading)?;
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let before: Option<String> = receipts::table
                .find(id)
                .select(receipts::status)
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let Some(before) = before else {
                return Ok(None);
            };
            if before == ReceiptStatus::Cancelled.as_str() {
                return Ok(None);
            }
            let row = write_reading(conn, id, reading).await?;
            diesel::delete(receipt_items::table.filter(receipt_items::receipt_id.eq(id)))
                .execute(conn)
                .await?;
            let items = diesel::insert_into(receipt_items::table)
                .values(&items)
                .returning(ItemRow::as_returning())
                .get_results(conn)
                .await?;
            let stored = StoredReceipt { row, items };
            let deliveries = match notify {
                Notify::Targets(targets) if before != ReceiptStatus::Completed.as_str() => {
                    let payload = WebhookPayload::completed(&stored.row.job_id, stored.result()?);
                    insert_deliveries(conn, &stored.row, &payload, targets).await?
                }
                _ => Vec::new(),
            };
            Ok(Some(Finished {
                value: stored,
                deliveries,
            }))
        })
        .await
    }

    /// Mark the receipt of `job_id` failed unless it already finished or
    /// is on a later run than `run` (a client retried it since, or the
    /// reconciler added it again). A row on an earlier run only lags the
    /// job (Redis holds one job per id): it is marked. `None` when nothing
    /// changed.
    pub async fn mark_job_failed(
        &self,
        job_id: &str,
        reason: &str,
        run: u32,
        notify: Notify<'_>,
    ) -> Result<Option<Finished<()>>, DbError> {
        let run = i32::try_from(run).unwrap_or(i32::MAX);
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let changed = diesel::update(receipts::table.filter(receipts::job_id.eq(job_id)))
                .filter(receipts::status.ne_all(FINAL))
                .filter(receipts::run.le(run))
                .set((
                    receipts::status.eq(ReceiptStatus::Failed.as_str()),
                    receipts::failed_reason.eq(reason),
                    receipts::updated_at.eq(diesel::dsl::now),
                ))
                .returning(ReceiptRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(row) = changed else { return Ok(None) };
            let payload = WebhookPayload::failed(job_id, row.id, reason);
            announce(conn, &row, &payload, notify).await.map(Some)
        })
        .await
    }

    /// Mark the receipt of `job_id` cancelled, now, unless it finished.
    /// `None` when nothing changed.
    pub async fn cancel_receipt(
        &self,
        job_id: &str,
        notify: Notify<'_>,
    ) -> Result<Option<Finished<()>>, DbError> {
        self.cancel_receipt_from(job_id, Unfinished::Any, notify)
            .await
    }

    /// The same, only from the unfinished state `from`.
    pub async fn cancel_receipt_from(
        &self,
        job_id: &str,
        from: Unfinished,
        notify: Notify<'_>,
    ) -> Result<Option<Finished<()>>, DbError> {
        let processing: &[&str] = &[ReceiptStatus::Processing.as_str()];
        let (statuses, run) = match from {
            Unfinished::Any => (&ReceiptStatus::UNFINISHED[..], None),
            Unfinished::AnyOnRun(run) => (&ReceiptStatus::UNFINISHED[..], Some(run)),
            Unfinished::Processing(run) => (processing, Some(run)),
        };
        let run = run.map(|run| i32::try_from(run).unwrap_or(i32::MAX));
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let mut cancel = diesel::update(receipts::table.filter(receipts::job_id.eq(job_id)))
                .filter(receipts::status.eq_any(statuses))
                .into_boxed();
            if let Some(run) = run {
                cancel = cancel.filter(receipts::run.le(run));
            }
            let changed = cancel
                .set((
                    receipts::status.eq(ReceiptStatus::Cancelled.as_str()),
                    receipts::cancelled_at.eq(diesel::dsl::now),
                    receipts::updated_at.eq(diesel::dsl::now),
                ))
                .returning(ReceiptRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(row) = changed else { return Ok(None) };
            let payload = WebhookPayload::cancelled(job_id, row.id);
            announce(conn, &row, &payload, notify).await.map(Some)
        })
        .await
    }
}

/// Which unfinished receipts a cancel may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// `queued` or `processing`: a client's cancel.
    Any,
    /// `queued` or `processing`, on this run or an earlier one: a cancel
    /// Redis recorded, which must not end a run a retry has started since.
    AnyOnRun(u32),
    /// `processing`, on this run or an earlier one: a worker's report that
    /// it stopped the job, which must not end a receipt a retry has put
    /// back to `queued` meanwhile, nor the retried run once it runs.
    Processing(u32),
}

/// The deliveries of a new outcome, written in its transaction.
async fn announce(
    conn: &mut AsyncPgConnection,
    row: &ReceiptRow,
    payload: &WebhookPayload,
    notify: Notify<'_>,
) -> Result<Finished<()>, DbError> {
    let deliveries = match notify {
        Notify::Targets(targets) => insert_deliveries(conn, row, payload, targets).await?,
        Notify::Nobody => Vec::new(),
    };
    Ok(Finished {
        value: (),
        deliveries,
    })
}

/// Write a reading's fields and mark the row completed.
async fn write_reading(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reading: &ReceiptReading,
) -> Result<ReceiptRow, DbError> {
    let parsed = &reading.receipt;
    let confidence = serde_json::to_value(confidence_of(reading))?;
    let boxes = serde_json::to_value(boxes_of(reading))?;
    let engines: Vec<&str> = reading.engines.iter().map(|e| e.as_str()).collect();
    let engines = serde_json::to_value(engines)?;
    Ok(diesel::update(receipts::table.find(id))
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
        .await?)
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
