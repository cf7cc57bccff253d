DROP INDEX IF EXISTS receipts_store_name_trgm_idx;
DROP INDEX IF EXISTS receipts_purchase_date_idx;
DROP INDEX IF EXISTS receipts_status_created_idx;
DROP INDEX IF EXISTS receipts_created_idx;
