//! Several receipts in one upload request: each file is its own upload,
//! checked and queued on its own, so one bad file costs only its own place.

use bytes::Bytes;

use super::{Caller, ReceiptService, ServiceError, UploadAccepted};
use crate::job::ScheduleRequest;

impl ReceiptService {
    /// Enqueue each of `files` as [`enqueue_receipt`](Self::enqueue_receipt)
    /// would, in order; each file's outcome. Refused as a whole only for
    /// what concerns every file: too many of them, a bad scheduling field
    /// or a refused `callbackUrl` (checked before any is stored).
    pub async fn enqueue_batch(
        &self,
        caller: &Caller,
        files: Vec<Bytes>,
        schedule: &ScheduleRequest,
        callback_url: Option<&str>,
    ) -> Result<Vec<Result<UploadAccepted, ServiceError>>, ServiceError> {
        let limit = self.inputs.max_batch_files;
        if files.len() > limit {
            return Err(ServiceError::TooManyFiles {
                count: files.len(),
                limit,
            });
        }
        // Once for every file: a `processAt` a moment ahead holds for the
        // last file as for the first, however long the checks take.
        let schedule = schedule.resolve(chrono::Utc::now())?;
        let callback = self.check_callback(callback_url).await?;
        let mut outcomes = Vec::with_capacity(files.len());
        for file in files {
            let accepted = self.enqueue_resolved(caller, Some(file), schedule, callback.as_ref());
            outcomes.push(accepted.await);
        }
        Ok(outcomes)
    }
}
