//! IMAGE_KEEP_DAYS: the images of settled receipts are removed from the
//! blob store once that old; their rows (every field read) stay and say
//! when (`image_removed_at`).

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::schema::receipts;
use super::{Db, DbError};

/// A receipt whose image is to go.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct ImageDue {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub blob_key: String,
}

impl Db {
    /// Mark up to `limit` settled receipts untouched since `cutoff` as
    /// having no image, oldest first, and answer their blobs to remove.
    /// Rows another process holds are skipped; a retry that reopens a row
    /// waits for this one and then finds its image gone.
    pub async fn take_images_due(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ImageDue>, DbError> {
        let mut conn = self.conn().await?;
        // The states spelled out: the partial index receipts_image_kept_idx
        // matches only literals.
        let due = diesel::sql_query(
            "UPDATE receipts SET image_removed_at = now() WHERE id IN ( \
               SELECT id FROM receipts \
               WHERE image_removed_at IS NULL \
                 AND status IN ('completed', 'failed', 'cancelled') \
                 AND updated_at < $1 \
               ORDER BY updated_at LIMIT $2 \
               FOR UPDATE SKIP LOCKED) \
             RETURNING id, blob_key",
        )
        .bind::<Timestamptz, _>(cutoff)
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?;
        Ok(due)
    }

    /// Undo [`Db::take_images_due`] for receipts whose blob could not be
    /// removed (the blob store did not answer): the next pass tries again.
    pub async fn keep_images(&self, ids: &[Uuid]) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::update(receipts::table.filter(receipts::id.eq_any(ids)))
            .set(receipts::image_removed_at.eq(None::<DateTime<Utc>>))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}
