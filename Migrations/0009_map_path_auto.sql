-- The runner's default map path is now `auto` (FCOS's verified reversed head on the levels whose error estimates
-- allow it, exact maps elsewhere), recorded as `exact` for detectors other than FCOS, where it makes only exact maps.

COMMENT ON COLUMN image_results.map_path IS 'exact (autograd through the real head), approximate (FCOS''s reversed head, verified per level) or auto (FCOS: the reversed head on levels whose estimates allow it, exact elsewhere); map_agreement.exact counts the exact maps per level.';
