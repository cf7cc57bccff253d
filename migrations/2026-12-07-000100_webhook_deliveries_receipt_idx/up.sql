-- Removing a receipt (an upload taken back) cascades to its deliveries:
-- without this index each removal read the whole table. Built without
-- blocking writes (one statement: CONCURRENTLY cannot share a transaction).
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_deliveries_receipt_idx
    ON webhook_deliveries (receipt_id);
