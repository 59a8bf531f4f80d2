-- Images a job lost (their shard failed for good) are reported as such, and retried-then-completed shard attempts no
-- longer read as failures.

CREATE OR REPLACE VIEW failures AS
SELECT i.job_id, i.path, r.error, r.recorded_at FROM image_results r JOIN images i ON i.id = r.image_id WHERE r.status = 'failed'
UNION ALL
SELECT s.job_id, i.path, 'lost: shard ' || s.id || ' failed for good: ' || coalesce(last.error, 'no attempt recorded'), last.finished_at
FROM shards s
JOIN images i ON i.shard_id = s.id
LEFT JOIN image_results r ON r.image_id = i.id
LEFT JOIN LATERAL (
    SELECT a.error, a.finished_at FROM shard_attempts a
    WHERE a.shard_id = s.id AND a.outcome <> 'completed' ORDER BY a.finished_at DESC LIMIT 1
) last ON true
WHERE s.state = 'failed' AND r.image_id IS NULL;
COMMENT ON VIEW failures IS 'Images that failed (their cause) and images lost with a shard that failed for good (the shard''s last error); shard_attempts keeps every attempt.';

CREATE OR REPLACE VIEW job_progress AS
SELECT j.id AS job_id, j.name, j.image_count, j.shard_count,
       count(*) FILTER (WHERE s.state = 'completed') AS shards_completed,
       count(*) FILTER (WHERE s.state = 'running') AS shards_running,
       count(*) FILTER (WHERE s.state IN ('available', 'retryable')) AS shards_waiting,
       count(*) FILTER (WHERE s.state = 'failed') AS shards_failed,
       (SELECT count(*) FROM image_results r JOIN images i ON i.id = r.image_id WHERE i.job_id = j.id) AS images_done,
       j.created_at, j.finished_at,
       j.images_ok, j.images_failed, j.detections,
       round(100.0 * count(*) FILTER (WHERE s.state IN ('completed', 'failed')) / greatest(j.shard_count, 1), 1) AS percent,
       (SELECT count(*) FROM images i JOIN shards f ON f.id = i.shard_id LEFT JOIN image_results r ON r.image_id = i.id
        WHERE i.job_id = j.id AND f.state = 'failed' AND r.image_id IS NULL) AS images_lost,
       (SELECT a.error FROM shard_attempts a JOIN shards f ON f.id = a.shard_id
        WHERE f.job_id = j.id AND f.state = 'failed' AND a.outcome <> 'completed' ORDER BY a.finished_at DESC LIMIT 1) AS last_shard_error
FROM jobs j LEFT JOIN shards s ON s.job_id = j.id
GROUP BY j.id;
COMMENT ON VIEW job_progress IS 'Per job: shards by state, images done, the rollups, the share of shards finished, images lost with failed shards and the last error of a failed shard.';
