-- Results, written in a shard's completing transaction, and the views users start from.

CREATE TABLE image_results (
    image_id bigint PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    shard_id bigint NOT NULL REFERENCES shards (id) ON DELETE CASCADE,
    lease_token bigint NOT NULL,
    status text NOT NULL,
    error text,
    width integer,
    height integer,
    bytes bigint,
    candidates integer,
    kept integer,
    kept_by_nms integer,
    fetch_ms real, decode_ms real, forward_ms real, candidate_maps_ms real, odam_nms_ms real, final_maps_ms real,
    encode_ms real, upload_ms real, database_ms real,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE image_results IS 'One row per processed image: ok with its numbers and stage timings, or failed with its cause.';
COMMENT ON COLUMN image_results.image_id IS 'The image.';
COMMENT ON COLUMN image_results.shard_id IS 'The shard that processed it.';
COMMENT ON COLUMN image_results.lease_token IS 'The claim that wrote this row.';
COMMENT ON COLUMN image_results.status IS 'ok or failed.';
COMMENT ON COLUMN image_results.error IS 'Why the image failed (file and cause).';
COMMENT ON COLUMN image_results.width IS 'Width in pixels.';
COMMENT ON COLUMN image_results.height IS 'Height in pixels.';
COMMENT ON COLUMN image_results.bytes IS 'Size of the image file.';
COMMENT ON COLUMN image_results.candidates IS 'Candidates before NMS.';
COMMENT ON COLUMN image_results.kept IS 'Detections Odam-NMS (or the job''s NMS) kept.';
COMMENT ON COLUMN image_results.kept_by_nms IS 'Detections plain NMS at the same IoU threshold would have kept.';
COMMENT ON COLUMN image_results.fetch_ms IS 'Milliseconds to fetch the image.';
COMMENT ON COLUMN image_results.decode_ms IS 'Milliseconds to decode it.';
COMMENT ON COLUMN image_results.forward_ms IS 'Milliseconds of the detector''s forward pass.';
COMMENT ON COLUMN image_results.candidate_maps_ms IS 'Milliseconds for the candidates'' class-logit maps.';
COMMENT ON COLUMN image_results.odam_nms_ms IS 'Milliseconds of Odam-NMS.';
COMMENT ON COLUMN image_results.final_maps_ms IS 'Milliseconds for the kept detections'' class, edge and combined maps.';
COMMENT ON COLUMN image_results.encode_ms IS 'Milliseconds to encode the maps and overlays.';
COMMENT ON COLUMN image_results.upload_ms IS 'Milliseconds to upload the objects.';
COMMENT ON COLUMN image_results.database_ms IS 'Milliseconds spent in PostgreSQL for this image.';
COMMENT ON COLUMN image_results.recorded_at IS 'When the row was written.';
CREATE INDEX image_results_shard ON image_results (shard_id);

CREATE TABLE detections (
    image_id bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    rank integer NOT NULL,
    x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL,
    score real NOT NULL,
    label integer NOT NULL,
    maps_key text,
    energy_in_box real,
    peak_in_box boolean,
    compactness real,
    max_correlation real,
    PRIMARY KEY (image_id, rank)
);
COMMENT ON TABLE detections IS 'Each kept detection with its explanation statistics.';
COMMENT ON COLUMN detections.image_id IS 'The image.';
COMMENT ON COLUMN detections.rank IS 'Its place among the image''s detections, best score first (0-based).';
COMMENT ON COLUMN detections.x1 IS 'Left edge in the original image''s pixels.';
COMMENT ON COLUMN detections.y1 IS 'Top edge in pixels.';
COMMENT ON COLUMN detections.x2 IS 'Right edge in pixels.';
COMMENT ON COLUMN detections.y2 IS 'Bottom edge in pixels.';
COMMENT ON COLUMN detections.score IS 'Confidence.';
COMMENT ON COLUMN detections.label IS 'Class label of the model.';
COMMENT ON COLUMN detections.maps_key IS 'Object-store key of the image''s maps file that holds this detection''s maps.';
COMMENT ON COLUMN detections.energy_in_box IS 'Share of the combined map''s energy inside the detection''s own box.';
COMMENT ON COLUMN detections.peak_in_box IS 'Whether the combined map''s maximum lies inside the box.';
COMMENT ON COLUMN detections.compactness IS 'Spread of the map around its peak relative to the box (lower is more compact).';
COMMENT ON COLUMN detections.max_correlation IS 'The highest correlation of its class-logit map with another detection''s.';

CREATE TABLE heat_map_objects (
    image_id bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    key text NOT NULL,
    kind text NOT NULL,
    bytes bigint NOT NULL,
    sha256 text NOT NULL,
    PRIMARY KEY (image_id, key)
);
COMMENT ON TABLE heat_map_objects IS 'Objects uploaded for an image: the maps file, overlays, the detections JSON.';
COMMENT ON COLUMN heat_map_objects.image_id IS 'The image.';
COMMENT ON COLUMN heat_map_objects.key IS 'The object''s key in the job''s store (deterministic: retries overwrite).';
COMMENT ON COLUMN heat_map_objects.kind IS 'maps, overlay or detections.';
COMMENT ON COLUMN heat_map_objects.bytes IS 'Its size.';
COMMENT ON COLUMN heat_map_objects.sha256 IS 'SHA-256 of its bytes, hex.';

CREATE VIEW job_progress AS
SELECT j.id AS job_id, j.name, j.image_count, j.shard_count,
       count(*) FILTER (WHERE s.state = 'completed') AS shards_completed,
       count(*) FILTER (WHERE s.state = 'running') AS shards_running,
       count(*) FILTER (WHERE s.state IN ('available', 'retryable')) AS shards_waiting,
       count(*) FILTER (WHERE s.state = 'failed') AS shards_failed,
       (SELECT count(*) FROM image_results r JOIN images i ON i.id = r.image_id WHERE i.job_id = j.id) AS images_done,
       j.created_at, j.finished_at
FROM jobs j LEFT JOIN shards s ON s.job_id = j.id
GROUP BY j.id;
COMMENT ON VIEW job_progress IS 'Per job: shards by state and images done.';

CREATE VIEW detection_maps AS
SELECT i.job_id, i.path, d.*, o.bytes AS maps_bytes
FROM detections d JOIN images i ON i.id = d.image_id
LEFT JOIN heat_map_objects o ON o.image_id = d.image_id AND o.key = d.maps_key;
COMMENT ON VIEW detection_maps IS 'Detections with their image''s path and the key of the maps file.';

CREATE VIEW slowest_images AS
SELECT i.job_id, i.path, r.*,
       coalesce(r.fetch_ms, 0) + coalesce(r.decode_ms, 0) + coalesce(r.forward_ms, 0) + coalesce(r.candidate_maps_ms, 0)
       + coalesce(r.odam_nms_ms, 0) + coalesce(r.final_maps_ms, 0) + coalesce(r.encode_ms, 0) + coalesce(r.upload_ms, 0)
       + coalesce(r.database_ms, 0) AS total_ms
FROM image_results r JOIN images i ON i.id = r.image_id
ORDER BY total_ms DESC;
COMMENT ON VIEW slowest_images IS 'Images by total processing time, slowest first.';

CREATE VIEW failures AS
SELECT i.job_id, i.path, r.error, r.recorded_at FROM image_results r JOIN images i ON i.id = r.image_id WHERE r.status = 'failed'
UNION ALL
SELECT s.job_id, '(shard ' || a.shard_id || ')', a.error, a.finished_at FROM shard_attempts a JOIN shards s ON s.id = a.shard_id
WHERE a.outcome <> 'completed';
COMMENT ON VIEW failures IS 'Failed images with their cause, and shard attempts that did not complete.';
