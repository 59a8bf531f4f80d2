-- Memory in the runner's own reports: each image's working set and the worker's resident memory after it, and each
-- worker's current and peak resident memory (sent with its heartbeat).

ALTER TABLE image_results ADD COLUMN tensor_peak_bytes bigint, ADD COLUMN worker_rss_bytes bigint;
COMMENT ON COLUMN image_results.tensor_peak_bytes IS 'The most bytes of tensors live at once while the image was processed (the engine''s working set for it).';
COMMENT ON COLUMN image_results.worker_rss_bytes IS 'The worker''s resident memory right after the image (bytes), to see growth over a job.';

ALTER TABLE workers ADD COLUMN rss_bytes bigint, ADD COLUMN peak_rss_bytes bigint;
COMMENT ON COLUMN workers.rss_bytes IS 'The worker''s resident memory at its last heartbeat (bytes).';
COMMENT ON COLUMN workers.peak_rss_bytes IS 'The most resident memory the worker has had (VmHWM, bytes), at its last heartbeat.';

CREATE OR REPLACE VIEW live_workers AS
SELECT w.id, w.host, w.pid, w.version, w.threads, w.started_at, w.last_heartbeat_at, w.heartbeats,
       (SELECT count(*) FROM shards s WHERE s.worker_id = w.id AND s.state = 'running') AS shards_held,
       w.rss_bytes, w.peak_rss_bytes
FROM workers w WHERE w.stopped_at IS NULL AND w.last_heartbeat_at > now() - interval '30 seconds';
COMMENT ON VIEW live_workers IS 'Workers that sent a heartbeat in the last 30 seconds, with the shards they hold and their resident memory.';
