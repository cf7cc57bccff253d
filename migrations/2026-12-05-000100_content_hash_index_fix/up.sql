-- 2026-12-02-000100 meant to replace the content_hash index with one on
-- (content_hash, created_at DESC), but `IF NOT EXISTS` kept the old one of
-- the same name. Replace it for real.
DROP INDEX IF EXISTS receipts_content_hash_idx;
CREATE INDEX receipts_content_hash_idx ON receipts (content_hash, created_at DESC);
