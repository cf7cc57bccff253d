-- Webhooks: an upload's own target, one delivery per final event and
-- target (its body fixed when the event happened), and every attempt.
ALTER TABLE receipts ADD COLUMN callback_url TEXT;

CREATE TABLE webhook_deliveries (
    id UUID PRIMARY KEY,
    job_id TEXT NOT NULL,
    receipt_id UUID NOT NULL REFERENCES receipts (id) ON DELETE CASCADE,
    event TEXT NOT NULL
        CHECK (event IN ('receipt.completed', 'receipt.failed', 'receipt.cancelled')),
    url TEXT NOT NULL,
    payload JSONB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'failed', 'gone')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set once its BullMQ job is added; a sweep queues rows left without.
    queued_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id, created_at);
CREATE INDEX webhook_deliveries_unqueued ON webhook_deliveries (created_at)
    WHERE queued_at IS NULL;

CREATE TABLE webhook_attempts (
    id BIGSERIAL PRIMARY KEY,
    delivery_id UUID NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    -- BullMQ's attempt number within its run (a redelivery starts at 1).
    attempt INTEGER NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL,
    status_code INTEGER,
    duration_ms INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);
