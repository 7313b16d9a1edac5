-- Vacuum the outbox often: publishing leaves a dead index entry per event in the
-- "unpublished" index, and the publisher's scans walk them until vacuum removes them.
ALTER TABLE portside_outbox_events SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_vacuum_insert_threshold = 5000
);
