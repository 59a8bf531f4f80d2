import Digest
import Engine
import Explain
import Foundation
import ObjectStore
import Processes
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
/// its completion commit in one transaction (``JobStore/commit(_:claim:worker:)``), fenced by the claim's token. A bad
/// image becomes a failed row with its cause, and the shard goes on.
public struct ShardProcessor {
    public var pipeline: ImagePipeline
    public var store: any ObjectStore
    public var source: JobResources.ImageSource
    public var upload: JobSpec.Upload
    /// The decoder, with the job's pixel limit.
    public var codec: ImageCodec
    /// The worker's memory limit in bytes (`odam worker --max-memory`), or nil for none. Near it the pool's cache is
    /// released; an image whose decode and forward pass would not fit in what is left fails, naming the limit.
    public var memoryLimitBytes: Int?

    public init(
        pipeline: ImagePipeline, store: any ObjectStore, source: JobResources.ImageSource, upload: JobSpec.Upload = JobSpec.Upload(),
        codec: ImageCodec = ImageCodec()
    ) {
        self.codec = codec
        self.pipeline = pipeline
        self.store = store
        self.source = source
        self.upload = upload
    }

    /// The key of an image's object: `job{J}/{imageID}-{file name}/{name}` (sanitized; the id keeps two files whose
    /// names sanitize alike apart).
    public static func key(job: Int, imageID: Int, path: String, name: String) -> String {
        sanitizedKey("job\(job)/\(imageID)-\((path as NSString).lastPathComponent)/\(name)")
    }

    /// Processes every image of the claim not yet recorded; `checkpoint` runs before each image and before returning,
    /// and throws a ``ShardInterruption`` to stop.
    public func process(_ claim: ShardClaim, jobs: JobStore, checkpoint: () throws -> Void = {}) throws -> ShardResults {
        var results = ShardResults()
        let (images, listing) = try Stopwatch.time { try jobs.pendingImages(claim) }
        results.imageCount = images.count
        results.databaseMillisecondsBefore = listing
        defer {
            // Between shards: heap memory freed by the shard's images goes back to the kernel.
            MemoryUsage.releaseFreedHeap()
        }
        // The largest tensor working set of this shard's images so far: what the next forward pass needs besides
        // the decoded image.
        var workingSet = 0
        for image in images {
            try checkpoint()
            let codec = memoryLimitBytes.map { limitedCodec(limit: $0, workingSet: workingSet) } ?? self.codec
            BufferPool.shared.resetPeak()
            // Each image is an epoch of the buffer pool: sizes the last images did not use are freed.
            defer { BufferPool.shared.endEpoch() }
            let imageWatch = Stopwatch()
            var watch = Stopwatch()
            do {
                let bytes = try source.fetch(image.path)
                let fetched = watch.lap()
                let decoded: RGBImage
                do { decoded = try codec.decode(bytes, file: image.path) } catch {
                    throw memoryLimited(error, codec: codec, workingSet: workingSet)
                }
                let decodeMilliseconds = watch.lap()
                let output = try pipeline.process(decoded)
                _ = watch.lap()
                let retriesBefore = store.retries
                let uploaded = try upload(output, image: image, job: claim.jobID)
                let uploadMilliseconds = watch.lap()
                // Hashed after the upload's timing: the digest is bookkeeping, not the store's time.
                let objects = uploaded.map {
                    HeatMapObject(imageID: image.id, key: $0.key, kind: $0.kind, bytes: $0.bytes.count, sha256: SHA256.hex($0.bytes))
                }
                var row = ImageResult(imageID: image.id, status: .ok)
                row.width = decoded.width
                row.height = decoded.height
                row.bytes = bytes.count
                row.candidates = output.candidates
                row.kept = output.records.count
                row.keptByNMS = output.keptByNMS
                // The pipeline timed its own steps; fetch, decode and upload are the shard's.
                row.timings = output.timings
                row.timings.fetch = fetched
                row.timings.decode = decodeMilliseconds
                row.timings.upload = uploadMilliseconds
                row.uploadRetries = store.retries - retriesBefore
                row.mapPath = pipeline.mapMaker.effectivePath.rawValue
                let levels = output.candidateAgreement + output.finalAgreement
                row.minimumMapR = levels.map(\.minR).min()
                row.levelsRecomputed = levels.filter(\.recomputed).count
                row.tensorPeakBytes = BufferPool.shared.peakLiveBytes
                workingSet = max(workingSet, BufferPool.shared.peakLiveBytes)
                row.workerResidentBytes = MemoryUsage.residentBytes()
                results.images.append(row)
                for (stage, levels) in [(MapAgreementRow.Stage.candidates, output.candidateAgreement), (.final, output.finalAgreement)] {
                    results.agreement += levels.map { MapAgreementRow(imageID: image.id, stage: stage, level: $0) }
                }
                results.objects += objects
                let mapsKey = objects.first { $0.kind == "maps" }?.key
                for (rank, record) in output.records.enumerated() {
                    results.detections.append(
                        DetectionRow(
                            imageID: image.id, rank: rank, box: record.box, score: record.score, label: record.label,
                            labelName: record.labelName, mapsKey: mapsKey,
                            energyInBox: record.energyInBox, peakInBox: record.peakInBox, compactness: record.compactness,
                            maxCorrelation: record.maxCorrelation))
                }
            } catch let error as ObjectStoreError {
                // The store failing is not the image's fault: the shard is retried as a whole.
                throw error
            } catch {
                // Every failed row names its image, whatever the error's own text says.
                let cause = "\(error)"
                var row = ImageResult(
                    imageID: image.id, status: .failed, error: cause.hasPrefix(image.path) ? cause : "\(image.path): \(cause)")
                // The time spent on the image until it failed.
                row.timings.fetch = imageWatch.milliseconds
                results.images.append(row)
            }
        }
        try checkpoint()
        Failpoint.hit("commit")
        return results
    }

    /// A decode refused as too large because of the memory limit, as an error naming the limit; other errors as they are.
    func memoryLimited(_ error: ImageError, codec: ImageCodec, workingSet: Int) -> any Error {
        guard error.kind == .tooLarge, let limit = memoryLimitBytes, codec.maximumPixels < self.codec.maximumPixels else { return error }
        return RunnerError(
            "\(error.file): does not fit in the worker's memory limit (--max-memory \(limit >> 20) MiB, "
                + "\((MemoryUsage.residentBytes() ?? 0) >> 20) MiB in use, \(workingSet >> 20) MiB for the forward pass: "
                + "room for \(codec.maximumPixels) pixels): \(error.reason)")
    }

    /// The decoder for the next image under a memory limit: near the limit the pool's cache is released first, and
    /// the pixel limit is what the rest allows after the forward pass's working set.
    func limitedCodec(limit: Int, workingSet: Int) -> ImageCodec {
        var resident = MemoryUsage.residentBytes() ?? 0
        if resident > limit / 10 * 9 {
            BufferPool.shared.releaseCache()
            MemoryUsage.releaseFreedHeap()
            resident = MemoryUsage.residentBytes() ?? resident
        }
        var limited = codec
        limited.maximumPixels = min(codec.maximumPixels, max(0, (limit - resident - workingSet) / ImageCodec.peakBytesPerPixel))
        return limited
    }

    /// Uploads an image's objects (maps, detections, overlays, as the job asks); what was uploaded, under which key.
    func upload(_ output: ImagePipeline.Output, image: PendingImage, job: Int) throws -> [(key: String, kind: String, bytes: [UInt8])] {
        var objects: [(name: String, kind: String, bytes: [UInt8], type: String)] = []
        if upload.maps { objects.append(("maps.safetensors", "maps", output.mapsFile, "application/octet-stream")) }
        if upload.detections { objects.append(("detections.json", "detections", output.detectionsJSON, "application/json")) }
        for (rank, png) in output.overlays.enumerated() { objects.append(("overlay-d\(rank).png", "overlay", png, "image/png")) }
        var uploaded: [(key: String, kind: String, bytes: [UInt8])] = []
        for (index, object) in objects.enumerated() {
            if index == 1 { Failpoint.hit("upload") }
            let key = Self.key(job: job, imageID: image.id, path: image.path, name: object.name)
            try store.put(key, bytes: object.bytes, contentType: object.type)
            uploaded.append((key, object.kind, object.bytes))
        }
        return uploaded
    }
}
