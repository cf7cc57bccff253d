DROP TABLE receipt_items;
DROP TABLE receipts;
