DROP INDEX IF EXISTS receipts_content_hash_idx;
