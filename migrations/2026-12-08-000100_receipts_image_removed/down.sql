DROP INDEX IF EXISTS receipts_image_kept_idx;
ALTER TABLE receipts DROP COLUMN IF EXISTS image_removed_at;
