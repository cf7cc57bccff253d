//! Duplicate uploads: with `DEDUP_WINDOW` set, the same bytes uploaded
//! again within the window get the earlier upload's job instead of a new
//! one. Best effort: two identical uploads arriving at the same instant
//! may both be queued (a duplicate is only handed a job Redis has).
//! A job handed out is the duplicate's too: the row is marked shared, and
//! the first upload, should its add have timed out (and landed late),
//! keeps its row, image and job rather than taking them back.

use super::{ReceiptService, ReceiptView, ServiceError, UploadAccepted};
use crate::job::ReceiptStatus;
use crate::store::models::NewReceipt;

impl ReceiptService {
    /// The earlier upload of `new`'s bytes within the window, if any.
    pub(super) async fn earlier_upload(
        &self,
        new: &NewReceipt,
    ) -> Result<Option<UploadAccepted>, ServiceError> {
        let window = self.inputs.dedup_window;
        if window.is_zero() {
            return Ok(None);
        }
        let since = crate::store::moment_ago(window);
        let Some(row) = self
            .db
            .recent_upload_of(&new.content_hash, new.owner.as_deref(), since)
            .await?
        else {
            return Ok(None);
        };
        // An upload that asks to be told at a callbackUrl the earlier one
        // did not name gets its own job, whose webhooks go there.
        if new.callback_url.is_some() && new.callback_url != row.callback_url {
            return Ok(None);
        }
        // A queued receipt whose job Redis does not have (yet) may be an
        // upload still being queued, which can fail and take its row and
        // job back: the job id would then lead nowhere. This upload gets
        // its own job instead.
        if row.status == ReceiptStatus::Queued.as_str()
            && self.queue.lookup(&row.job_id).await?.is_none()
        {
            return Ok(None);
        }
        // Claimed before it is answered: an upload whose add timed out
        // takes its row back unless it is shared.
        if !self.db.share_receipt(row.id).await? {
            return Ok(None);
        }
        let Some(stored) = self.db.receipt_by_id(row.id).await? else {
            return Ok(None);
        };
        let receipt = ReceiptView::from_stored(&stored)?;
        Ok(Some(UploadAccepted::duplicate_of(
            row.job_id,
            receipt,
            &row.status,
        )))
    }
}
