UPDATE receipts SET field_confidence = field_confidence - 'overall' WHERE field_confidence IS NOT NULL;
