-- Which run of the receipt's job the row is on: 0 for the upload's, one
-- more for every retry. A job carries its run in its data, and a failure
-- is only recorded on the run it belongs to: a late write for a run a
-- client has since retried changes nothing.
ALTER TABLE receipts ADD COLUMN IF NOT EXISTS run integer NOT NULL DEFAULT 0;
