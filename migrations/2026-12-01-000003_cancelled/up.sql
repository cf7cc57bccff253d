-- A receipt whose job a client cancelled ends `cancelled`, with the time.
ALTER TABLE receipts DROP CONSTRAINT receipts_status_check;
ALTER TABLE receipts ADD CONSTRAINT receipts_status_check
    CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled'));
ALTER TABLE receipts ADD COLUMN cancelled_at TIMESTAMPTZ;
