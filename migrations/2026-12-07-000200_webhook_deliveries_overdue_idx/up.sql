-- The webhook sweep's look for pending deliveries untouched since a cutoff
-- (every 30 s in every worker process): only those rows, by age.
CREATE INDEX IF NOT EXISTS webhook_deliveries_overdue_idx
    ON webhook_deliveries (updated_at)
    WHERE state = 'pending' AND queued_at IS NOT NULL;
