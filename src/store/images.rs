//! IMAGE_KEEP_DAYS: the images of settled receipts are removed from the
//! blob store once that old; their rows (every field read) stay and say
//! when (`image_removed_at`).
//!
//! The blob goes first, then the row records it: a pass cut short (a
//! crash, the blob store down) leaves rows that are still due and are
//! taken again by the next pass (removing a missing blob succeeds), never
//! a row that says "removed" over an image still stored.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{Db, DbError};

/// A receipt whose image is due to go.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct ImageDue {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub blob_key: String,
}

/// The conditions of an image due, as receipts_image_kept_idx spells them
/// (a partial index matches only literals).
const DUE: &str = "image_removed_at IS NULL AND status IN ('completed', 'failed', 'cancelled')";

impl Db {
    /// Up to `limit` settled receipts untouched since `cutoff` whose image
    /// is still stored, oldest first.
    pub async fn images_due(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ImageDue>, DbError> {
        let mut conn = self.conn().await?;
        let due = diesel::sql_query(format!(
            "SELECT id, blob_key FROM receipts WHERE {DUE} AND updated_at < $1 \
             ORDER BY updated_at LIMIT $2"
        ))
        .bind::<Timestamptz, _>(cutoff)
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?;
        Ok(due)
    }

    /// Record that the images of `ids` were removed. A receipt retried
    /// meanwhile is not settled any more and is left alone (its job then
    /// finds no image and fails saying so).
    pub async fn mark_images_removed(&self, ids: &[Uuid]) -> Result<usize, DbError> {
        let mut conn = self.conn().await?;
        let marked = diesel::sql_query(format!(
            "UPDATE receipts SET image_removed_at = now() WHERE id = ANY($1) AND {DUE}"
        ))
        .bind::<Array<SqlUuid>, _>(ids)
        .execute(&mut conn)
        .await?;
        Ok(marked)
    }
}
