-- Class names beside the labels: what the model calls each kept detection's label (its spec's classNames, COCO's for
-- a 91-class head), so results read without a label table.

ALTER TABLE detections ADD COLUMN label_name text;
COMMENT ON COLUMN detections.label_name IS 'The label''s name as the model names it (NULL when the model names no classes).';

-- Recreated: the view lists the detections' columns as they were when it was made.
DROP VIEW detection_maps;
CREATE VIEW detection_maps AS
SELECT i.job_id, i.path, d.*, o.bytes AS maps_bytes
FROM detections d JOIN images i ON i.id = d.image_id
LEFT JOIN heat_map_objects o ON o.image_id = d.image_id AND o.key = d.maps_key;
COMMENT ON VIEW detection_maps IS 'Detections with their image''s path and the key of the maps file.';
