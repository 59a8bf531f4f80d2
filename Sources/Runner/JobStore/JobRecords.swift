import Detection
import Explain
import Foundation
import Logging
import Postgres

/// A claimed shard: what the worker must present with every write (the fencing token).
public struct ShardClaim: Sendable, Equatable {
    public var shardID: Int
    public var jobID: Int
    public var token: Int

    public init(shardID: Int, jobID: Int, token: Int) {
        self.shardID = shardID
        self.jobID = jobID
        self.token = token
    }

    /// The claim as log metadata (job, shard, token).
    public var logMetadata: Logger.Metadata { ["job": "\(jobID)", "shard": "\(shardID)", "token": "\(token)"] }
}

/// A job to record: its images (paths relative to the source) cut into shards of `shardSize` consecutive images.
public struct NewJob: Sendable {
    public var name: String
    public var spec: JobSpec
    /// A folder every worker sees, an http(s) URL prefix, or `store:PREFIX`.
    public var source: String
    public var images: [String]
    public var shardSize: Int

    public init(name: String, spec: JobSpec, source: String, images: [String], shardSize: Int) {
        self.name = name
        self.spec = spec
        self.source = source
        self.images = images
        self.shardSize = shardSize
    }

    /// Shards the job is cut into.
    public var shardCount: Int { shardSize > 0 ? (images.count + shardSize - 1) / shardSize : 0 }
}

/// A recorded job as workers read it.
public struct StoredJob: Sendable {
    public var id: Int
    public var name: String
    public var spec: JobSpec
    public var source: String
}

/// A job's progress (the `job_progress` view).
public struct JobProgress: Sendable, Equatable, Encodable {
    public var job: Int
    public var name: String
    public var imageCount: Int
    public var imagesDone: Int
    public var shardCount: Int
    public var shardsCompleted: Int
    public var shardsRunning: Int
    public var shardsFailed: Int
    public var isFinished: Bool
    /// Seconds from the job's creation to its end (or to now, while it runs).
    public var elapsedSeconds: Double
    /// Images of shards that failed for good.
    public var imagesLost: Int
    /// The last error of a failed shard, if any.
    public var lastShardError: String?

    init(_ row: PostgresRow) throws {
        job = try row.decode("job_id")
        name = try row.decode("name")
        imageCount = try row.decode("image_count")
        imagesDone = try row.decode("images_done")
        shardCount = try row.decode("shard_count")
        shardsCompleted = try row.decode("shards_completed")
        shardsRunning = try row.decode("shards_running")
        shardsFailed = try row.decode("shards_failed")
        isFinished = try row.decode("finished")
        elapsedSeconds = try row.decode("elapsed_seconds")
        imagesLost = try row.decodeIfPresent("images_lost") ?? 0
        lastShardError = try row.decodeIfPresent("last_shard_error")
    }
}

/// A worker that heartbeats (the `live_workers` view).
public struct LiveWorker: Sendable, Equatable, Encodable {
    public var id: Int
    public var host: String
    public var pid: Int
    public var threads: Int
    public var shardsHeld: Int
    public var heartbeats: Int
    /// Resident memory at the last heartbeat and the most it has had (nil until a heartbeat reported them).
    public var residentBytes: Int?
    public var peakResidentBytes: Int?
}

/// An image of a claimed shard that has no result yet.
public struct PendingImage: Sendable, Equatable {
    public var id: Int
    /// Relative to the job's source.
    public var path: String
}

/// One image's row of `image_results`: what became of it, and where its time went.
public struct ImageResult: Sendable {
    public enum Status: String, Sendable { case ok, failed }

    public var imageID: Int
    public var status: Status
    /// Why the image failed (naming its path), for `failed`.
    public var error: String?
    public var width: Int?
    public var height: Int?
    public var bytes: Int?
    public var candidates: Int?
    public var kept: Int?
    public var keptByNMS: Int?
    public var timings = StepTimings()
    public var uploadRetries = 0
    public var mapPath: String?
    /// The lowest correlation of a checked map with plain autograd, and how many levels were recomputed.
    public var minimumMapR: Float?
    public var levelsRecomputed: Int?
    /// The most bytes of tensors live at once while the image was processed (the process's: with several slots it
    /// includes the other slots' tensors), and the worker's resident memory after.
    public var tensorPeakBytes: Int?
    public var workerResidentBytes: Int?

    public init(imageID: Int, status: Status, error: String? = nil) {
        self.imageID = imageID
        self.status = status
        self.error = error
    }

    /// The row, with the shard and token of the claim it was made under and the database time per image.
    func row(claim: ShardClaim, databaseMilliseconds: Double) -> Row {
        Row(result: self, claim: claim, databaseMilliseconds: databaseMilliseconds)
    }

    struct Row: InsertableRecord {
        var result: ImageResult
        var claim: ShardClaim
        var databaseMilliseconds: Double

        var columnValues: [(column: String, value: (any PostgresEncodable)?)] {
            let r = result, t = result.timings
            return [
                ("image_id", r.imageID), ("shard_id", claim.shardID), ("lease_token", claim.token), ("status", r.status.rawValue),
                ("error", r.error), ("width", r.width), ("height", r.height), ("bytes", r.bytes), ("candidates", r.candidates),
                ("kept", r.kept), ("kept_by_nms", r.keptByNMS), ("fetch_ms", t.fetch), ("decode_ms", t.decode),
                ("forward_ms", t.forward), ("candidate_maps_ms", t.candidateMaps), ("odam_nms_ms", t.odamNMS),
                ("final_maps_ms", t.finalMaps), ("encode_ms", t.encode), ("upload_ms", t.upload), ("upload_retries", r.uploadRetries),
                ("map_path", r.mapPath), ("min_map_r", r.minimumMapR), ("levels_recomputed", r.levelsRecomputed),
                ("tensor_peak_bytes", r.tensorPeakBytes), ("worker_rss_bytes", r.workerResidentBytes),
                ("database_ms", databaseMilliseconds),
            ]
        }
    }
}

/// Milliseconds of an image's steps; nil where the step did not run.
public struct StepTimings: Sendable, Equatable {
    public var fetch: Double?
    public var decode: Double?
    public var forward: Double?
    public var candidateMaps: Double?
    public var odamNMS: Double?
    public var finalMaps: Double?
    public var encode: Double?
    public var upload: Double?

    public init() {}
}

/// An object uploaded for an image (`heat_map_objects`).
public struct HeatMapObject: Sendable, InsertableRecord {
    public var imageID: Int
    public var key: String
    /// maps, detections or overlay.
    public var kind: String
    public var bytes: Int
    public var sha256: String

    public init(imageID: Int, key: String, kind: String, bytes: Int, sha256: String) {
        self.imageID = imageID
        self.key = key
        self.kind = kind
        self.bytes = bytes
        self.sha256 = sha256
    }

    var columnValues: [(column: String, value: (any PostgresEncodable)?)] {
        [("image_id", imageID), ("key", key), ("kind", kind), ("bytes", bytes), ("sha256", sha256)]
    }
}

/// A kept detection of an image (`detections`), with its explanation statistics.
public struct DetectionRow: Sendable, InsertableRecord {
    public var imageID: Int
    public var rank: Int
    /// (x1, y1, x2, y2) in the original image's pixels.
    public var box: Box<Float>
    public var score: Float
    public var label: Int
    /// The label's name, when the model names its classes.
    public var labelName: String?
    public var mapsKey: String?
    public var energyInBox: Double
    public var peakInBox: Bool
    public var compactness: Double
    public var maxCorrelation: Float?

    public init(
        imageID: Int, rank: Int, box: Box<Float>, score: Float, label: Int, labelName: String? = nil, mapsKey: String?,
        energyInBox: Double, peakInBox: Bool, compactness: Double, maxCorrelation: Float?
    ) {
        self.labelName = labelName
        self.imageID = imageID
        self.rank = rank
        self.box = box
        self.score = score
        self.label = label
        self.mapsKey = mapsKey
        self.energyInBox = energyInBox
        self.peakInBox = peakInBox
        self.compactness = compactness
        self.maxCorrelation = maxCorrelation
    }

    var columnValues: [(column: String, value: (any PostgresEncodable)?)] {
        [
            ("image_id", imageID), ("rank", rank), ("x1", box[0]), ("y1", box[1]), ("x2", box[2]), ("y2", box[3]), ("score", score),
            ("label", label), ("label_name", labelName), ("maps_key", mapsKey), ("energy_in_box", energyInBox), ("peak_in_box", peakInBox),
            ("compactness", compactness), ("max_correlation", maxCorrelation),
        ]
    }
}

/// How the maps of one FPN level of an image agreed with plain autograd (`map_agreement`).
public struct MapAgreementRow: Sendable, InsertableRecord {
    public enum Stage: String, Sendable { case candidates, final }

    public var imageID: Int
    public var stage: Stage
    public var level: VerifiedExplainer.LevelAgreement

    public init(imageID: Int, stage: Stage, level: VerifiedExplainer.LevelAgreement) {
        self.imageID = imageID
        self.stage = stage
        self.level = level
    }

    var columnValues: [(column: String, value: (any PostgresEncodable)?)] {
        [
            ("image_id", imageID), ("stage", stage.rawValue), ("level", level.level), ("predictions", level.predictions),
            ("sampled", level.sampled), ("min_r", level.minR), ("median_r", level.medianR), ("recomputed", level.recomputed),
            ("exact", level.exact),
        ]
    }
}

/// A shard's results, waiting for their fenced commit.
public struct ShardResults: Sendable {
    public var images: [ImageResult] = []
    public var objects: [HeatMapObject] = []
    public var detections: [DetectionRow] = []
    public var agreement: [MapAgreementRow] = []
    /// Images the shard had to process.
    public var imageCount = 0
    public var started = Date()
    /// Milliseconds in PostgreSQL before the commit (the claim, the listing of the shard's images), counted into the
    /// images' database time.
    public var databaseMillisecondsBefore = 0.0

    public init() {}
}
