-- The API key (by name) that uploaded the receipt; NULL when the API was
-- open, for receipts from before owners were recorded, and for jobs added
-- by another BullMQ producer.
ALTER TABLE receipts ADD COLUMN owner TEXT;
-- A key's own listing, newest first.
CREATE INDEX receipts_owner_created_idx ON receipts (owner, created_at DESC, id DESC);
