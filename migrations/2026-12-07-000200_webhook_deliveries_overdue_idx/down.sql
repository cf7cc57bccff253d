DROP INDEX IF EXISTS webhook_deliveries_overdue_idx;
