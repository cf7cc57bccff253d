ALTER TABLE receipts DROP COLUMN cancelled_at;
UPDATE receipts SET status = 'failed', failed_reason = 'cancelled' WHERE status = 'cancelled';
ALTER TABLE receipts DROP CONSTRAINT receipts_status_check;
ALTER TABLE receipts ADD CONSTRAINT receipts_status_check
    CHECK (status IN ('queued', 'processing', 'completed', 'failed'));
