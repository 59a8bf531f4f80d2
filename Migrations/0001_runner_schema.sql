-- The distributed runner's schema: jobs of images cut into shards, workers that claim shards under fenced leases,
-- and the results (detections, heat-map objects, timings) written back in the shard's completing transaction.

CREATE TYPE shard_state AS ENUM ('available', 'running', 'retryable', 'completed', 'failed', 'cancelled');
COMMENT ON TYPE shard_state IS 'A shard''s place in its life: claimable (available, retryable after its run_after), held by a worker (running), or done.';

CREATE TABLE jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    spec jsonb NOT NULL,
    source text NOT NULL,
    image_count integer NOT NULL DEFAULT 0,
    shard_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
COMMENT ON TABLE jobs IS 'One enqueued dataset: what to run (the job spec) over which images.';
COMMENT ON COLUMN jobs.id IS 'The job''s number, as odam status and odam results name it.';
COMMENT ON COLUMN jobs.name IS 'A name given at enqueue time (default: the folder''s name).';
COMMENT ON COLUMN jobs.spec IS 'The job spec as JSON: model and weights, ODAM targets and path, NMS method and thresholds, output store and prefix, what to upload.';
COMMENT ON COLUMN jobs.source IS 'Where workers read images: a shared folder, an http(s) URL prefix, or an object-store prefix.';
COMMENT ON COLUMN jobs.image_count IS 'Images enqueued.';
COMMENT ON COLUMN jobs.shard_count IS 'Shards the images were cut into.';
COMMENT ON COLUMN jobs.created_at IS 'When the job was enqueued.';
COMMENT ON COLUMN jobs.finished_at IS 'When its last shard completed or failed for good; null while work remains.';

CREATE TABLE shards (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    state shard_state NOT NULL DEFAULT 'available',
    run_after timestamptz NOT NULL DEFAULT now(),
    attempt integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5,
    crashes integer NOT NULL DEFAULT 0,
    max_crashes integer NOT NULL DEFAULT 10,
    lease_token bigint,
    worker_id bigint,
    lease_expires_at timestamptz,
    deadline_at timestamptz,
    completed_at timestamptz
) WITH (fillfactor = 80);
COMMENT ON TABLE shards IS 'A slice of a job''s images that one worker processes at a time; heartbeats and claims update it in place (fillfactor 80 keeps those updates HOT).';
COMMENT ON COLUMN shards.id IS 'The shard''s number.';
COMMENT ON COLUMN shards.job_id IS 'The job it belongs to.';
COMMENT ON COLUMN shards.state IS 'available, running, retryable, completed, failed or cancelled.';
COMMENT ON COLUMN shards.run_after IS 'A retryable shard waits until then (backoff).';
COMMENT ON COLUMN shards.attempt IS 'Claims so far that ended in an error (the error budget).';
COMMENT ON COLUMN shards.max_attempts IS 'Errors allowed before the shard fails for good.';
COMMENT ON COLUMN shards.crashes IS 'Claims lost to a dead worker or an expired lease (a budget apart from errors).';
COMMENT ON COLUMN shards.max_crashes IS 'Crashes allowed before the shard fails for good.';
COMMENT ON COLUMN shards.lease_token IS 'The fencing token of the current claim: heartbeats, result writes and completion must present it.';
COMMENT ON COLUMN shards.worker_id IS 'The worker holding the shard while running.';
COMMENT ON COLUMN shards.lease_expires_at IS 'The lease ends then unless a heartbeat extends it.';
COMMENT ON COLUMN shards.deadline_at IS 'A hard limit on one claim, however alive its worker is.';
COMMENT ON COLUMN shards.completed_at IS 'When the shard completed.';
CREATE INDEX shards_claimable ON shards (run_after, id) WHERE state IN ('available', 'retryable');
CREATE INDEX shards_running ON shards (worker_id) WHERE state = 'running';
CREATE INDEX shards_job ON shards (job_id, state);
CREATE SEQUENCE lease_tokens;
COMMENT ON SEQUENCE lease_tokens IS 'Fencing tokens, never reused.';

CREATE TABLE images (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    shard_id bigint NOT NULL REFERENCES shards (id) ON DELETE CASCADE,
    path text NOT NULL,
    position integer NOT NULL
);
COMMENT ON TABLE images IS 'Each image of a job, in the enqueue walk''s order.';
COMMENT ON COLUMN images.id IS 'The image''s number.';
COMMENT ON COLUMN images.job_id IS 'Its job.';
COMMENT ON COLUMN images.shard_id IS 'The shard that processes it.';
COMMENT ON COLUMN images.path IS 'Its path relative to the job''s source.';
COMMENT ON COLUMN images.position IS 'Its place in the enqueue walk (0-based).';
CREATE INDEX images_shard ON images (shard_id);

CREATE TABLE workers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    version text NOT NULL,
    threads integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
    heartbeats bigint NOT NULL DEFAULT 0,
    stopped_at timestamptz
) WITH (fillfactor = 80);
COMMENT ON TABLE workers IS 'Worker processes, live and past.';
COMMENT ON COLUMN workers.id IS 'The worker''s number.';
COMMENT ON COLUMN workers.host IS 'The machine it runs on.';
COMMENT ON COLUMN workers.pid IS 'Its process id there.';
COMMENT ON COLUMN workers.version IS 'odam''s version.';
COMMENT ON COLUMN workers.threads IS 'Compute threads.';
COMMENT ON COLUMN workers.started_at IS 'When it registered.';
COMMENT ON COLUMN workers.last_heartbeat_at IS 'Its last sign of life; the coordinator rescues the shards of workers silent for too long.';
COMMENT ON COLUMN workers.heartbeats IS 'Heartbeats sent.';
COMMENT ON COLUMN workers.stopped_at IS 'When it exited cleanly.';

CREATE TABLE shard_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shard_id bigint NOT NULL REFERENCES shards (id) ON DELETE CASCADE,
    worker_id bigint REFERENCES workers (id),
    lease_token bigint NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    outcome text NOT NULL,
    error text
);
COMMENT ON TABLE shard_attempts IS 'Every claim of a shard and how it ended: completed, error, crash (dead worker) or expired (lease or deadline).';
COMMENT ON COLUMN shard_attempts.shard_id IS 'The shard.';
COMMENT ON COLUMN shard_attempts.worker_id IS 'The worker that held it.';
COMMENT ON COLUMN shard_attempts.lease_token IS 'The claim''s fencing token.';
COMMENT ON COLUMN shard_attempts.started_at IS 'When it was claimed.';
COMMENT ON COLUMN shard_attempts.finished_at IS 'When it ended.';
COMMENT ON COLUMN shard_attempts.outcome IS 'completed, error, crash or expired.';
COMMENT ON COLUMN shard_attempts.error IS 'What went wrong, when something did.';
COMMENT ON COLUMN shard_attempts.id IS 'The attempt''s number.';
CREATE INDEX shard_attempts_shard ON shard_attempts (shard_id);
