-- field_confidence holds the whole typed confidence, `overall` included
-- (rows written before this kept `overall` only in the `confidence` column).
UPDATE receipts
   SET field_confidence = field_confidence || jsonb_build_object('overall', coalesce(confidence, 0))
 WHERE field_confidence IS NOT NULL AND NOT field_confidence ? 'overall';
