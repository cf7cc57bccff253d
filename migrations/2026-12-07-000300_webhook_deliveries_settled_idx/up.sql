-- WEBHOOK_KEEP_DAYS: the sweep removes settled deliveries by age.
CREATE INDEX IF NOT EXISTS webhook_deliveries_settled_idx
    ON webhook_deliveries (updated_at)
    WHERE state <> 'pending';
