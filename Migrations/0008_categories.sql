-- What each job's labels mean, one row per named class (the model's classNames, COCO's for a 91-class head; the
-- background and torchvision's "N/A" gaps left out), written by the first worker that loads the job's model, so
-- that results join names without knowing the model: SELECT c.name, count(*) FROM detections d JOIN images i ...

CREATE TABLE categories (
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    label integer NOT NULL,
    name text NOT NULL,
    PRIMARY KEY (job_id, label)
);
COMMENT ON TABLE categories IS 'The classes of each job''s model: label and name (the background and unnamed labels left out).';
COMMENT ON COLUMN categories.job_id IS 'The job whose model the classes are.';
COMMENT ON COLUMN categories.label IS 'The label, as detections.label.';
COMMENT ON COLUMN categories.name IS 'The class''s name, as detections.label_name.';
