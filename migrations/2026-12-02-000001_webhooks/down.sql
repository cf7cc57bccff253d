DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
ALTER TABLE receipts DROP COLUMN callback_url;
