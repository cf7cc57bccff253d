DROP INDEX IF EXISTS webhook_deliveries_receipt_idx;
