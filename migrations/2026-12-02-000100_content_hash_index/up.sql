-- Duplicate uploads (DEDUP_WINDOW): the newest receipt with the same bytes.
CREATE INDEX IF NOT EXISTS receipts_content_hash_idx ON receipts (content_hash, created_at DESC);
