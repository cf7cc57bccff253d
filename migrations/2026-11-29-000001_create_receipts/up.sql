-- Receipts: one row per upload, the permanent record of its job.
CREATE TABLE receipts (
    id               UUID PRIMARY KEY,
    job_id           TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
    store_name       TEXT,
    total_amount     NUMERIC(14, 2),
    currency         TEXT,
    purchase_date    DATE,
    raw_text         TEXT,
    ocr_confidence   REAL,
    confidence       REAL,
    field_confidence JSONB,
    blob_key         TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    content_hash     TEXT NOT NULL,
    failed_reason    TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX receipts_content_hash_idx ON receipts (content_hash);

-- Line items; `unit_price` is what the API calls `price`.
CREATE TABLE receipt_items (
    receipt_id UUID NOT NULL REFERENCES receipts (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    name       TEXT NOT NULL,
    quantity   NUMERIC(12, 3) NOT NULL,
    unit_price NUMERIC(14, 2) NOT NULL,
    line_total NUMERIC(14, 2) NOT NULL,
    PRIMARY KEY (receipt_id, position)
);
