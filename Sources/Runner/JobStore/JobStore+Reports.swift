import Foundation
import Postgres

/// What a finished (or running) job's results add up to.
public struct JobSummary: Sendable {
    public var imagesOK = 0
    public var imagesFailed = 0
    public var detectionsKept = 0
    /// What plain NMS would have kept, and the candidates both saw.
    public var keptByNMS = 0
    public var candidates = 0
    /// Mean milliseconds per image; nil when no image recorded the step.
    public var forward: Double?
    public var candidateMaps: Double?
    public var odamNMS: Double?
    public var finalMaps: Double?
    public var upload: Double?
    public var database: Double?
    /// The map paths used, the lowest r of a checked map against plain autograd, and the levels recomputed.
    public var mapPaths: [String] = []
    public var minimumMapR: Double?
    public var levelsRecomputed = 0
}

/// An image that failed or was lost, with its cause.
public struct ImageFailure: Sendable, Equatable {
    public var path: String
    public var error: String?
}

/// A kept detection as exported: its image, box, score, label, explanation statistics and maps key.
public struct ExportedDetection: Sendable, Equatable {
    public var imageID: Int
    public var path: String
    public var rank: Int
    public var x1: Double, y1: Double, x2: Double, y2: Double
    public var score: Double
    public var label: Int
    /// The label's name, when the model names its classes.
    public var labelName: String?
    public var energyInBox: Double?
    public var peakInBox: Bool?
    public var compactness: Double?
    public var maxCorrelation: Double?
    public var mapsKey: String?

    public init(
        imageID: Int, path: String, rank: Int, x1: Double, y1: Double, x2: Double, y2: Double, score: Double, label: Int,
        energyInBox: Double?, peakInBox: Bool?, compactness: Double?, maxCorrelation: Double?, mapsKey: String?,
        labelName: String? = nil
    ) {
        self.labelName = labelName
        self.imageID = imageID
        self.path = path
        self.rank = rank
        (self.x1, self.y1, self.x2, self.y2) = (x1, y1, x2, y2)
        self.score = score
        self.label = label
        self.energyInBox = energyInBox
        self.peakInBox = peakInBox
        self.compactness = compactness
        self.maxCorrelation = maxCorrelation
        self.mapsKey = mapsKey
    }
}

/// Mean database and processing time per image of a job's successful images (the runner benchmark).
public struct DatabaseShare: Sendable {
    public var images: Int
    public var databaseMilliseconds: Double
    public var maximumDatabaseMilliseconds: Double
    /// Fetch, decode, forward, maps, Odam-NMS, encode and upload.
    public var processingMilliseconds: Double
}

/// A worker's resident memory over a job: after its first images (warm-up) and at its end.
public struct WorkerMemory: Sendable, Equatable {
    public var worker: Int
    public var images: Int
    /// Resident bytes after the worker's `warmUp`-th image of the job, after its last, and the most after any.
    public var afterWarmUpBytes: Int?
    public var atEndBytes: Int?
    public var maximumBytes: Int?
    /// The largest tensor working set of one of its images.
    public var maximumTensorPeakBytes: Int?
}

/// The report and export queries.
extension JobStore {
    /// Totals and mean step times over a job's image results.
    public func summary(job: Int) throws -> JobSummary {
        let row = try connection.query(
            """
            SELECT count(*) FILTER (WHERE r.status = 'ok') AS ok, count(*) FILTER (WHERE r.status = 'failed') AS failed,
                coalesce(sum(r.kept), 0) AS kept, coalesce(sum(r.kept_by_nms), 0) AS kept_by_nms,
                coalesce(sum(r.candidates), 0) AS candidates,
                avg(r.forward_ms) AS forward, avg(r.candidate_maps_ms) AS candidate_maps, avg(r.odam_nms_ms) AS odam_nms,
                avg(r.final_maps_ms) AS final_maps, avg(r.upload_ms) AS upload, avg(r.database_ms) AS database,
                string_agg(DISTINCT r.map_path, ',') AS map_paths, min(r.min_map_r) AS min_map_r,
                coalesce(sum(r.levels_recomputed), 0) AS levels_recomputed
            FROM image_results r JOIN images i ON i.id = r.image_id WHERE i.job_id = \(job)
            """, purpose: "summarizing job \(job)"
        ).records[0]
        var summary = JobSummary()
        summary.imagesOK = try row.decode("ok")
        summary.imagesFailed = try row.decode("failed")
        summary.detectionsKept = try row.decode("kept")
        summary.keptByNMS = try row.decode("kept_by_nms")
        summary.candidates = try row.decode("candidates")
        summary.forward = try row.decodeIfPresent("forward")
        summary.candidateMaps = try row.decodeIfPresent("candidate_maps")
        summary.odamNMS = try row.decodeIfPresent("odam_nms")
        summary.finalMaps = try row.decodeIfPresent("final_maps")
        summary.upload = try row.decodeIfPresent("upload")
        summary.database = try row.decodeIfPresent("database")
        summary.mapPaths = (try row.decodeIfPresent("map_paths", as: String.self))?.split(separator: ",").map(String.init) ?? []
        summary.minimumMapR = try row.decodeIfPresent("min_map_r")
        summary.levelsRecomputed = try row.decode("levels_recomputed")
        return summary
    }

    /// A job's failed and lost images with their causes, at most `limit`.
    public func failures(job: Int, limit: Int) throws -> [ImageFailure] {
        try connection.query(
            "SELECT path, error FROM failures WHERE job_id = \(job) LIMIT \(limit)", purpose: "reading job \(job)'s failures"
        ).records.map { ImageFailure(path: try $0.decode("path"), error: try $0.decodeIfPresent("error")) }
    }

    /// The job whose worker uploaded the object `key` (a maps file, overlay or detections JSON), or nil.
    public func jobOfObject(key: String) throws -> Int? {
        try connection.query(
            "SELECT i.job_id FROM heat_map_objects o JOIN images i ON i.id = o.image_id WHERE o.key = \(key) LIMIT 1",
            purpose: "looking up object \(key)"
        ).records.first.map { try $0.decode("job_id") }
    }

    /// A job's kept detections, by image and rank.
    public func detections(job: Int) throws -> [ExportedDetection] {
        try connection.query(
            """
            SELECT image_id, path, rank, x1, y1, x2, y2, score, label, label_name, energy_in_box, peak_in_box, compactness, max_correlation, maps_key
            FROM detection_maps WHERE job_id = \(job) ORDER BY image_id, rank
            """, purpose: "reading job \(job)'s detections"
        ).records.map {
            ExportedDetection(
                imageID: try $0.decode("image_id"), path: try $0.decode("path"), rank: try $0.decode("rank"), x1: try $0.decode("x1"),
                y1: try $0.decode("y1"), x2: try $0.decode("x2"), y2: try $0.decode("y2"), score: try $0.decode("score"),
                label: try $0.decode("label"), energyInBox: try $0.decodeIfPresent("energy_in_box"),
                peakInBox: try $0.decodeIfPresent("peak_in_box"), compactness: try $0.decodeIfPresent("compactness"),
                maxCorrelation: try $0.decodeIfPresent("max_correlation"), mapsKey: try $0.decodeIfPresent("maps_key"),
                labelName: try $0.decodeIfPresent("label_name"))
        }
    }

    /// Mean database and processing time per successful image of a job.
    public func databaseShare(job: Int) throws -> DatabaseShare {
        let row = try connection.query(
            """
            SELECT count(*) AS images, coalesce(avg(database_ms), 0) AS database, coalesce(max(database_ms), 0) AS maximum,
                coalesce(avg(coalesce(fetch_ms, 0) + coalesce(decode_ms, 0) + coalesce(forward_ms, 0) + coalesce(candidate_maps_ms, 0)
                    + coalesce(odam_nms_ms, 0) + coalesce(final_maps_ms, 0) + coalesce(encode_ms, 0) + coalesce(upload_ms, 0)), 0)
                    AS processing
            FROM image_results r JOIN images i ON i.id = r.image_id WHERE i.job_id = \(job) AND r.status = 'ok'
            """, purpose: "measuring job \(job)'s database time"
        ).records[0]
        return DatabaseShare(
            images: try row.decode("images"), databaseMilliseconds: try row.decode("database"),
            maximumDatabaseMilliseconds: try row.decode("maximum"), processingMilliseconds: try row.decode("processing"))
    }

    /// Per worker of `job`: resident memory after its `warmUp`-th successful image and after its last (from
    /// `image_results.worker_rss_bytes`, images in the order they were recorded).
    public func workerMemory(job: Int, warmUp: Int) throws -> [WorkerMemory] {
        try connection.query(
            """
            WITH per_image AS (
                SELECT a.worker_id, r.worker_rss_bytes, r.tensor_peak_bytes,
                    row_number() OVER (PARTITION BY a.worker_id ORDER BY r.recorded_at, i.position) AS n,
                    count(*) OVER (PARTITION BY a.worker_id) AS total
                FROM image_results r JOIN images i ON i.id = r.image_id
                JOIN shard_attempts a ON a.shard_id = r.shard_id AND a.lease_token = r.lease_token AND a.outcome = 'completed'
                WHERE i.job_id = \(job) AND r.status = 'ok')
            SELECT worker_id, max(total) AS images,
                max(worker_rss_bytes) FILTER (WHERE n = least(\(warmUp), total)) AS warm,
                max(worker_rss_bytes) FILTER (WHERE n = total) AS final, max(worker_rss_bytes) AS maximum,
                max(tensor_peak_bytes) AS tensor_peak
            FROM per_image GROUP BY worker_id ORDER BY worker_id
            """, purpose: "reading job \(job)'s worker memory"
        ).records.map {
            WorkerMemory(
                worker: try $0.decode("worker_id"), images: try $0.decode("images"), afterWarmUpBytes: try $0.decodeIfPresent("warm"),
                atEndBytes: try $0.decodeIfPresent("final"), maximumBytes: try $0.decodeIfPresent("maximum"),
                maximumTensorPeakBytes: try $0.decodeIfPresent("tensor_peak"))
        }
    }
}
