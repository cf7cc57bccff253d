-- What receipt APIs return beyond store, total, date and items, where on
-- the image each field was read, and which OCR engine(s) read it.
ALTER TABLE receipts
    ADD COLUMN subtotal       NUMERIC(14, 2),
    ADD COLUMN tax            NUMERIC(14, 2),
    ADD COLUMN tip            NUMERIC(14, 2),
    ADD COLUMN payment_method TEXT,
    ADD COLUMN purchase_time  TIME,
    ADD COLUMN address        TEXT,
    ADD COLUMN phone          TEXT,
    ADD COLUMN field_boxes    JSONB,
    ADD COLUMN ocr_engines    JSONB;

ALTER TABLE receipt_items ADD COLUMN bbox JSONB;
