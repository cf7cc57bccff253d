DROP INDEX IF EXISTS webhook_deliveries_settled_idx;
