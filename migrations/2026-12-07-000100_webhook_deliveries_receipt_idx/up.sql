-- Removing a receipt (an upload taken back) cascades to its deliveries:
-- without this index each removal read the whole table. (Not CONCURRENTLY:
-- a concurrent build waits for every open snapshot, including those of the
-- processes waiting on the migration lock this one holds: a deadlock.)
CREATE INDEX IF NOT EXISTS webhook_deliveries_receipt_idx
    ON webhook_deliveries (receipt_id);
