//! Finding an earlier upload of the same bytes, for `DEDUP_WINDOW`.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, OptionalExtension, PgExpressionMethods, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::models::ReceiptRow;
use super::schema::receipts;
use super::{Db, DbError};

/// Receipts whose job still stands for the upload: a failed or cancelled
/// one is not handed back (uploading again is how a client tries anew),
/// nor one whose image IMAGE_KEEP_DAYS removed (the upload stores it anew).
const STANDING: [&str; 3] = ["queued", "processing", "completed"];

impl Db {
    /// The newest standing receipt with `content_hash` created after
    /// `since` by the same owner (the same API key, or none when the API is
    /// open): another key's upload is never handed back.
    pub async fn recent_upload_of(
        &self,
        content_hash: &str,
        owner: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Option<ReceiptRow>, DbError> {
        let mut conn = self.conn().await?;
        let row = receipts::table
            .filter(receipts::content_hash.eq(content_hash))
            .filter(receipts::owner.is_not_distinct_from(owner))
            .filter(receipts::created_at.gt(since))
            .filter(receipts::status.eq_any(STANDING))
            .filter(receipts::image_removed_at.is_null())
            .order(receipts::created_at.desc())
            .select(ReceiptRow::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        Ok(row)
    }

    /// Hand receipt `id`'s job to a duplicate upload: marks it shared, so
    /// that the upload that made it no longer takes it back
    /// ([`Db::delete_unshared_receipt`]). False when the row is gone (that
    /// upload took it back first) or no longer standing.
    pub async fn share_receipt(&self, id: uuid::Uuid) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let shared = diesel::update(receipts::table.find(id))
            .filter(receipts::status.eq_any(STANDING))
            .set(receipts::shared.eq(true))
            .execute(&mut conn)
            .await?;
        Ok(shared > 0)
    }
}
