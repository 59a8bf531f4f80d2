-- Exact maps everywhere: which map path made an image's maps, and how each FPN level's maps agreed with plain
-- autograd (sampled predictions recomputed one seed at a time on the same image).

ALTER TABLE image_results ADD COLUMN map_path text,
    ADD COLUMN min_map_r real,
    ADD COLUMN levels_recomputed integer;
COMMENT ON COLUMN image_results.map_path IS 'exact (autograd through the real head) or approximate (FCOS''s reversed head, verified per level).';
COMMENT ON COLUMN image_results.min_map_r IS 'The lowest Pearson r of a sampled map against plain autograd over all levels, candidates and kept detections (before any recomputation).';
COMMENT ON COLUMN image_results.levels_recomputed IS 'Levels whose sampled maps fell below r 0.999 and that were recomputed exactly for all their predictions.';

CREATE TABLE map_agreement (
    image_id bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    stage text NOT NULL,
    level integer NOT NULL,
    predictions integer NOT NULL,
    sampled integer NOT NULL,
    min_r real NOT NULL,
    median_r real NOT NULL,
    recomputed boolean NOT NULL,
    exact integer NOT NULL,
    PRIMARY KEY (image_id, stage, level)
);
COMMENT ON TABLE map_agreement IS 'Per image, map stage and FPN level: how the maps agreed with plain autograd on sampled predictions.';
COMMENT ON COLUMN map_agreement.image_id IS 'The image.';
COMMENT ON COLUMN map_agreement.stage IS 'candidates (Odam-NMS''s class-logit maps) or final (the kept detections'' stored maps).';
COMMENT ON COLUMN map_agreement.level IS 'The FPN level (0 = finest).';
COMMENT ON COLUMN map_agreement.predictions IS 'Predictions of this level that got maps.';
COMMENT ON COLUMN map_agreement.sampled IS 'Of them, recomputed by plain autograd (one seed per backward pass) and compared, every target''s map.';
COMMENT ON COLUMN map_agreement.min_r IS 'The lowest Pearson r of a sampled map against its recomputation.';
COMMENT ON COLUMN map_agreement.median_r IS 'The median Pearson r.';
COMMENT ON COLUMN map_agreement.recomputed IS 'Whether the level fell below r 0.999 and all its maps were recomputed exactly (what is stored).';
COMMENT ON COLUMN map_agreement.exact IS 'Predictions computed exactly: on the exact path all; on the approximate path those whose dropped GroupNorm terms exceeded 2.5% of the kept gradient (all when recomputed).';
