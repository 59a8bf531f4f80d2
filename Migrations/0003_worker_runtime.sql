-- What the worker and coordinator processes add: upload retries per image, per-job rollups kept by the leading
-- coordinator, and shard releases on shutdown.

ALTER TABLE image_results ADD COLUMN upload_retries integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN image_results.upload_retries IS 'Object-store requests of this image that were retried (5xx, 429, SlowDown, timeouts, resets).';

ALTER TABLE jobs ADD COLUMN images_ok integer NOT NULL DEFAULT 0,
    ADD COLUMN images_failed integer NOT NULL DEFAULT 0,
    ADD COLUMN detections bigint NOT NULL DEFAULT 0,
    ADD COLUMN rolled_up_at timestamptz;
COMMENT ON COLUMN jobs.images_ok IS 'Images processed successfully (a rollup the leading coordinator refreshes every few seconds).';
COMMENT ON COLUMN jobs.images_failed IS 'Images recorded as failed (rollup).';
COMMENT ON COLUMN jobs.detections IS 'Detections recorded (rollup).';
COMMENT ON COLUMN jobs.rolled_up_at IS 'When the rollups were last refreshed.';

COMMENT ON COLUMN shard_attempts.outcome IS 'completed, error, crash (dead worker), expired (lease or deadline) or released (worker shut down).';

CREATE OR REPLACE VIEW job_progress AS
SELECT j.id AS job_id, j.name, j.image_count, j.shard_count,
       count(*) FILTER (WHERE s.state = 'completed') AS shards_completed,
       count(*) FILTER (WHERE s.state = 'running') AS shards_running,
       count(*) FILTER (WHERE s.state IN ('available', 'retryable')) AS shards_waiting,
       count(*) FILTER (WHERE s.state = 'failed') AS shards_failed,
       (SELECT count(*) FROM image_results r JOIN images i ON i.id = r.image_id WHERE i.job_id = j.id) AS images_done,
       j.created_at, j.finished_at,
       j.images_ok, j.images_failed, j.detections,
       round(100.0 * count(*) FILTER (WHERE s.state IN ('completed', 'failed')) / greatest(j.shard_count, 1), 1) AS percent
FROM jobs j LEFT JOIN shards s ON s.job_id = j.id
GROUP BY j.id;
COMMENT ON VIEW job_progress IS 'Per job: shards by state, images done, the rollups, and the share of shards finished.';

CREATE VIEW live_workers AS
SELECT w.id, w.host, w.pid, w.version, w.threads, w.started_at, w.last_heartbeat_at, w.heartbeats,
       (SELECT count(*) FROM shards s WHERE s.worker_id = w.id AND s.state = 'running') AS shards_held
FROM workers w WHERE w.stopped_at IS NULL AND w.last_heartbeat_at > now() - interval '30 seconds';
COMMENT ON VIEW live_workers IS 'Workers that sent a heartbeat in the last 30 seconds, with the shards they hold.';
