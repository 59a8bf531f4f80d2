import Digest
import Foundation
import ObjectStore
import Postgres
import Vision

/// A worker's work on one claimed shard: each image not yet recorded is read from the job's source folder, run
/// through the pipeline and its maps file uploaded under a deterministic key; then the shard's results and its
/// completion commit in one transaction, fenced by the claim's token. A bad image becomes a failed row with its
/// cause, and the shard goes on.
public struct ShardProcessor {
    public var pipeline: ImagePipeline
    public var store: any ObjectStore
    public var leases: ShardLeases

    public init(pipeline: ImagePipeline, store: any ObjectStore, leases: ShardLeases = ShardLeases()) {
        self.pipeline = pipeline
        self.store = store
        self.leases = leases
    }

    /// Processes and commits a claim; false when the lease was lost (nothing committed).
    public func process(_ claim: ShardLeases.Claim, worker: Int, db: PostgresConnection) throws -> Bool {
        let started = Date()
        let source = try db.query("SELECT source FROM jobs WHERE id = $1", [String(claim.jobID)]).rows[0][0]!
        // A retried shard skips the images a committed attempt already recorded (none, as results commit with completion).
        let images = try db.query(
            """
            SELECT i.id, i.path FROM images i LEFT JOIN image_results r ON r.image_id = i.id
            WHERE i.shard_id = $1 AND r.image_id IS NULL ORDER BY i.position
            """, [String(claim.shardID)]
        ).rows.map { (id: $0[0]!, path: $0[1]!) }
        var statements: [(String, [String?])] = []
        let codec = ImageCodec()
        for image in images {
            let path = source + "/" + image.path
            let fetchStart = DispatchTime.now().uptimeNanoseconds
            let bytes = FileManager.default.contents(atPath: path).map { [UInt8]($0) }
            let fetchMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - fetchStart) / 1e6
            do {
                guard let bytes else { throw RunnerError("\(path): cannot read the file") }
                let decodeStart = DispatchTime.now().uptimeNanoseconds
                let decoded = try codec.decode(bytes, file: path)
                let decodeMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - decodeStart) / 1e6
                let output = try pipeline.process(decoded)
                let key = "job\(claim.jobID)/image\(image.id).safetensors"
                let uploadStart = DispatchTime.now().uptimeNanoseconds
                try store.put(key, bytes: output.mapsFile, contentType: "application/octet-stream")
                let uploadMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - uploadStart) / 1e6
                let ms = output.milliseconds
                statements.append(
                    (
                        """
                        INSERT INTO image_results (image_id, shard_id, lease_token, status, width, height, bytes, candidates, kept, kept_by_nms,
                            fetch_ms, decode_ms, forward_ms, candidate_maps_ms, odam_nms_ms, final_maps_ms, encode_ms, upload_ms)
                        VALUES ($1, $2, $3, 'ok', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
                        """,
                        [
                            image.id, String(claim.shardID), String(claim.token), String(decoded.width), String(decoded.height),
                            String(bytes.count), String(output.candidates), String(output.records.count), String(output.keptByNMS),
                            String(fetchMilliseconds), String(decodeMilliseconds), ms["forward"].map { String($0) },
                            ms["candidate_maps"].map { String($0) }, ms["odam_nms"].map { String($0) }, ms["final_maps"].map { String($0) },
                            ms["encode"].map { String($0) }, String(uploadMilliseconds),
                        ]
                    ))
                statements.append(
                    (
                        "INSERT INTO heat_map_objects (image_id, key, kind, bytes, sha256) VALUES ($1, $2, 'maps', $3, $4)",
                        [image.id, key, String(output.mapsFile.count), SHA256.hex(output.mapsFile)]
                    ))
                for (rank, record) in output.records.enumerated() {
                    statements.append(
                        (
                            """
                            INSERT INTO detections (image_id, rank, x1, y1, x2, y2, score, label, maps_key, energy_in_box, peak_in_box,
                                compactness, max_correlation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                            """,
                            [
                                image.id, String(rank), String(record.box[0]), String(record.box[1]), String(record.box[2]),
                                String(record.box[3]),
                                String(record.score), String(record.label), key, String(record.energyInBox),
                                record.peakInBox ? "true" : "false",
                                String(record.compactness), String(record.maxCorrelation),
                            ]
                        ))
                }
            } catch {
                statements.append(
                    (
                        "INSERT INTO image_results (image_id, shard_id, lease_token, status, error, fetch_ms) VALUES ($1, $2, $3, 'failed', $4, $5)",
                        [image.id, String(claim.shardID), String(claim.token), "\(error)", String(fetchMilliseconds)]
                    ))
            }
        }
        let databaseStart = DispatchTime.now().uptimeNanoseconds
        let committed = try db.transaction { () -> Bool in
            for (sql, parameters) in statements { try db.query(sql, parameters) }
            guard try leases.complete(db, claim, worker: worker, startedAt: started) else {
                throw LeaseLost()
            }
            let perImage = Double(DispatchTime.now().uptimeNanoseconds - databaseStart) / 1e6 / Double(max(images.count, 1))
            try db.query(
                "UPDATE image_results SET database_ms = $2 WHERE shard_id = $1 AND lease_token = $3",
                [
                    String(claim.shardID), String(perImage), String(claim.token),
                ])
            return true
        }
        return committed
    }

    struct LeaseLost: Error {}

    /// Processes a claim; a lost lease rolls everything back and reports false.
    public func processFenced(_ claim: ShardLeases.Claim, worker: Int, db: PostgresConnection) throws -> Bool {
        do { return try process(claim, worker: worker, db: db) } catch is LeaseLost { return false }
    }
}
