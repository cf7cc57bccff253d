-- Set when DEDUP_WINDOW hands this receipt's job to a later upload of the
-- same bytes: the first upload's undo (its add timed out) then keeps the
-- row, image and job instead of taking back a job another client holds.
ALTER TABLE receipts ADD COLUMN IF NOT EXISTS shared boolean NOT NULL DEFAULT false;
