DROP INDEX IF EXISTS receipts_owner_created_idx;
ALTER TABLE receipts DROP COLUMN owner;
