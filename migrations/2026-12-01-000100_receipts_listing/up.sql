-- Listing receipts newest first with keyset pagination on (created_at, id),
-- optionally by status, purchase date or a store-name substring.
CREATE INDEX IF NOT EXISTS receipts_created_idx ON receipts (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS receipts_status_created_idx ON receipts (status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS receipts_purchase_date_idx ON receipts (purchase_date);

-- `store_name ILIKE '%…%'` through trigram matching instead of a scan.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS receipts_store_name_trgm_idx ON receipts USING gin (store_name gin_trgm_ops);
