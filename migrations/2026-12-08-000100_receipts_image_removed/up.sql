-- IMAGE_KEEP_DAYS: when a settled receipt's image was removed from the
-- blob store (its fields stay), and the reconciler's look for images due.
ALTER TABLE receipts ADD COLUMN IF NOT EXISTS image_removed_at timestamptz;
CREATE INDEX IF NOT EXISTS receipts_image_kept_idx
    ON receipts (updated_at)
    WHERE image_removed_at IS NULL AND status IN ('completed', 'failed', 'cancelled');
