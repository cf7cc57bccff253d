ALTER TABLE receipt_items DROP COLUMN bbox;
ALTER TABLE receipts
    DROP COLUMN subtotal, DROP COLUMN tax, DROP COLUMN tip, DROP COLUMN payment_method,
    DROP COLUMN purchase_time, DROP COLUMN address, DROP COLUMN phone,
    DROP COLUMN field_boxes, DROP COLUMN ocr_engines;
