import Digest
import Explain
import Foundation
import ObjectStore
import Postgres
import Vision

/// Why a worker stopped a shard before committing it.
public enum ShardInterruption: Error, Sendable {
    /// The claim's token no longer holds the shard: another worker owns it now, and nothing may be committed.
    case leaseLost
    /// The worker is shutting down (SIGTERM): the claim is released for another worker.
    case stopping
}

/// A worker's work on one claimed shard: each image not yet recorded is fetched from the job's source, run through
/// the pipeline and its objects uploaded under deterministic keys (a retry overwrites); then the shard's results and
/// its completion commit in one transaction, fenced by the claim's token. A bad image becomes a failed row with its
/// cause, and the shard goes on.
public struct ShardProcessor {
    public var pipeline: ImagePipeline
    public var store: any ObjectStore
    public var source: JobResources.ImageSource
    public var upload: JobSpec.Upload
    public var leases: ShardLeases
    /// The decoder, with the job's pixel limit.
    public var codec: ImageCodec

    public init(
        pipeline: ImagePipeline, store: any ObjectStore, source: JobResources.ImageSource, upload: JobSpec.Upload = JobSpec.Upload(),
        leases: ShardLeases = ShardLeases(), codec: ImageCodec = ImageCodec()
    ) {
        self.codec = codec
        self.pipeline = pipeline
        self.store = store
        self.source = source
        self.upload = upload
        self.leases = leases
    }

    /// A processed shard's results, waiting for their transaction.
    public struct Results {
        /// Rows of `image_results`, `heat_map_objects`, `detections` and `map_agreement` (in ``imageColumns``,
        /// ``objectColumns``, ``detectionColumns`` and ``agreementColumns`` order), one statement per table.
        public var imageRows: [[String?]] = []
        public var objectRows: [[String?]] = []
        public var detectionRows: [[String?]] = []
        public var agreementRows: [[String?]] = []
        public var images = 0
        public var started = Date()
        /// Milliseconds in PostgreSQL before the commit (the claim, the listing of the shard's images), counted into
        /// the images' database time.
        public var databaseMillisecondsBefore = 0.0
    }

    /// The key of an image's object: `job{J}/{imageID}-{file name}/{name}` (sanitized; the id keeps two files whose
    /// names sanitize alike apart).
    public static func key(job: Int, imageID: String, path: String, name: String) -> String {
        sanitizedKey("job\(job)/\(imageID)-\((path as NSString).lastPathComponent)/\(name)")
    }

    /// Processes every image of the claim not yet recorded; `checkpoint` runs before each image and before returning,
    /// and throws a ``ShardInterruption`` to stop.
    public func process(_ claim: ShardLeases.Claim, db: PostgresConnection, checkpoint: () throws -> Void = {}) throws -> Results {
        var results = Results()
        let listingStart = DispatchTime.now().uptimeNanoseconds
        let images = try db.query(
            """
            SELECT i.id, i.path FROM images i LEFT JOIN image_results r ON r.image_id = i.id
            WHERE i.shard_id = $1 AND r.image_id IS NULL ORDER BY i.position
            """, [String(claim.shardID)]
        ).rows.map { (id: $0[0]!, path: $0[1]!) }
        results.images = images.count
        results.databaseMillisecondsBefore = Double(DispatchTime.now().uptimeNanoseconds - listingStart) / 1e6
        for image in images {
            try checkpoint()
            let fetchStart = DispatchTime.now().uptimeNanoseconds
            var fetchMilliseconds: Double { Double(DispatchTime.now().uptimeNanoseconds - fetchStart) / 1e6 }
            do {
                let bytes = try source.fetch(image.path)
                let fetched = fetchMilliseconds
                let decodeStart = DispatchTime.now().uptimeNanoseconds
                let decoded = try codec.decode(bytes, file: image.path)
                let decodeMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - decodeStart) / 1e6
                let output = try pipeline.process(decoded)
                let uploadStart = DispatchTime.now().uptimeNanoseconds
                let retriesBefore = (store as? S3Store)?.retries ?? 0
                var objects: [(key: String, kind: String, bytes: [UInt8], type: String)] = []
                let mapsKey = Self.key(job: claim.jobID, imageID: image.id, path: image.path, name: "maps.safetensors")
                if upload.maps { objects.append((mapsKey, "maps", output.mapsFile, "application/octet-stream")) }
                if upload.detections {
                    objects.append(
                        (
                            Self.key(job: claim.jobID, imageID: image.id, path: image.path, name: "detections.json"), "detections",
                            output.detectionsJSON, "application/json"
                        ))
                }
                for (rank, png) in output.overlays.enumerated() {
                    objects.append(
                        (
                            Self.key(job: claim.jobID, imageID: image.id, path: image.path, name: "overlay-d\(rank).png"), "overlay", png,
                            "image/png"
                        ))
                }
                for (index, object) in objects.enumerated() {
                    if index == 1 { Failpoint.hit("upload") }
                    try store.put(object.key, bytes: object.bytes, contentType: object.type)
                }
                let uploadMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - uploadStart) / 1e6
                let retries = ((store as? S3Store)?.retries ?? 0) - retriesBefore
                let ms = output.milliseconds
                results.imageRows.append([
                    image.id, String(claim.shardID), String(claim.token), "ok", nil, String(decoded.width), String(decoded.height),
                    String(bytes.count), String(output.candidates), String(output.records.count), String(output.keptByNMS), String(fetched),
                    String(decodeMilliseconds), ms["forward"].map { String($0) }, ms["candidate_maps"].map { String($0) },
                    ms["odam_nms"].map { String($0) }, ms["final_maps"].map { String($0) }, ms["encode"].map { String($0) },
                    String(uploadMilliseconds), String(retries), pipeline.mapMaker.path.rawValue,
                    (output.candidateAgreement + output.finalAgreement).map(\.minR).min().map { String($0) },
                    String((output.candidateAgreement + output.finalAgreement).filter(\.recomputed).count),
                ])
                for (stage, levels) in [("candidates", output.candidateAgreement), ("final", output.finalAgreement)] {
                    for level in levels {
                        results.agreementRows.append([
                            image.id, stage, String(level.level), String(level.predictions), String(level.sampled), String(level.minR),
                            String(level.medianR), level.recomputed ? "true" : "false",
                            String(level.exact),
                        ])
                    }
                }
                for object in objects {
                    results.objectRows.append([image.id, object.key, object.kind, String(object.bytes.count), SHA256.hex(object.bytes)])
                }
                for (rank, record) in output.records.enumerated() {
                    results.detectionRows.append([
                        image.id, String(rank), String(record.box[0]), String(record.box[1]), String(record.box[2]), String(record.box[3]),
                        String(record.score), String(record.label), upload.maps ? mapsKey : nil, String(record.energyInBox),
                        record.peakInBox ? "true" : "false", String(record.compactness), record.maxCorrelation.map { String($0) },
                    ])
                }
            } catch let error as ObjectStoreError {
                // The store failing is not the image's fault: the shard is retried as a whole.
                throw error
            } catch {
                // Every failed row names its image, whatever the error's own text says.
                let cause = "\(error)"
                let message = cause.hasPrefix(image.path) ? cause : "\(image.path): \(cause)"
                var row: [String?] = [image.id, String(claim.shardID), String(claim.token), "failed", message]
                row += [String?](repeating: nil, count: Self.imageColumns.count - row.count)
                row[Self.imageColumns.firstIndex(of: "fetch_ms")!] = String(fetchMilliseconds)
                row[Self.imageColumns.firstIndex(of: "upload_retries")!] = "0"
                results.imageRows.append(row)
            }
        }
        try checkpoint()
        Failpoint.hit("commit")
        return results
    }

    /// Commits the results and the shard's completion in one transaction, fenced by the claim's token; false when the
    /// token no longer holds the shard (everything rolled back).
    public func commit(_ results: Results, claim: ShardLeases.Claim, worker: Int, db: PostgresConnection) throws -> Bool {
        let databaseStart = DispatchTime.now().uptimeNanoseconds
        do {
            return try db.transaction { () -> Bool in
                // The fence first: completing locks the shard's row, and a lost token ends the transaction before
                // any result row is tried.
                guard try leases.complete(db, claim, worker: worker, startedAt: results.started) else {
                    throw ShardInterruption.leaseLost
                }
                try Self.insert("image_results", Self.imageColumns, results.imageRows, db: db)
                try Self.insert("heat_map_objects", Self.objectColumns, results.objectRows, db: db)
                try Self.insert("detections", Self.detectionColumns, results.detectionRows, db: db)
                try Self.insert("map_agreement", Self.agreementColumns, results.agreementRows, db: db)
                let perImage =
                    (Double(DispatchTime.now().uptimeNanoseconds - databaseStart) / 1e6 + results.databaseMillisecondsBefore)
                    / Double(max(results.images, 1))
                try db.query(
                    "UPDATE image_results SET database_ms = $2 WHERE shard_id = $1 AND lease_token = $3",
                    [String(claim.shardID), String(perImage), String(claim.token)])
                return true
            }
        } catch ShardInterruption.leaseLost {
            return false
        }
    }

    static let imageColumns = [
        "image_id", "shard_id", "lease_token", "status", "error", "width", "height", "bytes", "candidates", "kept", "kept_by_nms",
        "fetch_ms",
        "decode_ms", "forward_ms", "candidate_maps_ms", "odam_nms_ms", "final_maps_ms", "encode_ms", "upload_ms", "upload_retries",
        "map_path", "min_map_r", "levels_recomputed",
    ]
    static let agreementColumns = ["image_id", "stage", "level", "predictions", "sampled", "min_r", "median_r", "recomputed", "exact"]
    static let objectColumns = ["image_id", "key", "kind", "bytes", "sha256"]
    static let detectionColumns = [
        "image_id", "rank", "x1", "y1", "x2", "y2", "score", "label", "maps_key", "energy_in_box", "peak_in_box", "compactness",
        "max_correlation",
    ]

    /// Inserts rows with one multi-row statement per thousand rows (one round trip instead of one per row); the
    /// values stay bound parameters.
    static func insert(_ table: String, _ columns: [String], _ rows: [[String?]], db: PostgresConnection) throws {
        for start in stride(from: 0, to: rows.count, by: 1000) {
            let chunk = rows[start..<min(rows.count, start + 1000)]
            let tuples = chunk.indices.map { r in
                "(" + columns.indices.map { "$\((r - start) * columns.count + $0 + 1)" }.joined(separator: ", ") + ")"
            }
            try db.query(
                "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES " + tuples.joined(separator: ", "), chunk.flatMap { $0 })
        }
    }

    /// Processes and commits a claim; false when the lease was lost (nothing committed).
    public func processFenced(_ claim: ShardLeases.Claim, worker: Int, db: PostgresConnection) throws -> Bool {
        do {
            return try commit(try process(claim, db: db), claim: claim, worker: worker, db: db)
        } catch ShardInterruption.leaseLost { return false }
    }
}
