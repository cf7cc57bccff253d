DROP INDEX IF EXISTS receipts_content_hash_idx;
CREATE INDEX receipts_content_hash_idx ON receipts (content_hash);
