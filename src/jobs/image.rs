//! A receipt's uploaded file, as the dashboard shows it beside what was
//! read from it.

use bytes::Bytes;

use super::{Caller, ReceiptService, ServiceError};
use crate::store::BlobError;

/// The bytes of an upload and the media type they were accepted as.
#[derive(Debug, Clone)]
pub struct ReceiptImage {
    pub content_type: String,
    pub bytes: Bytes,
}

impl ReceiptService {
    /// The file uploaded for receipt `id`, exactly as it was sent (a PDF
    /// stays a PDF, a HEIC photo a HEIC photo).
    pub async fn receipt_image(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<ReceiptImage, ServiceError> {
        let stored = self.visible_receipt(caller, id).await?;
        if let Some(at) = stored.row.image_removed_at {
            return Err(ServiceError::ImageRemoved(stored.row.id, at));
        }
        let bytes = match self.blobs.get(&stored.row.blob_key).await {
            Ok(bytes) => bytes,
            Err(BlobError::Missing(_)) => return Err(ServiceError::ImageMissing(stored.row.id)),
            Err(e) => return Err(e.into()),
        };
        Ok(ReceiptImage {
            content_type: stored.row.content_type.clone(),
            bytes,
        })
    }
}
