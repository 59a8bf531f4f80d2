import DefaultModel
import Detection
import Engine
import Foundation
import NN
import Runner
import Synthesis
import Vision
import WeightsIO

extension RunnerBenchmark {
    /// The soak run: each worker's resident memory after a warm-up and at the end of a long run, with odam's pool and
    /// an unbounded one side by side.
    public struct Soak: Sendable {
        /// Generated scenes per worker.
        public var imagesPerWorker: Int
        /// Images after which each worker's first memory reading is taken.
        public var warmUp = 50
        /// The scenes' size in pixels (the synthetic-scene FCOS's 320x320 by default).
        public var height = 320
        public var width = 320
        /// A shipped model's name, a torchvision builder name or a JSON model spec, as a job spec's `model.spec`.
        public var model = DefaultModel.Variant.odamTrain.rawValue
        /// The model's checkpoint; nil for the shipped model, and for other models random weights whose class bias is
        /// shifted until at least ``candidates`` predictions of the first scene score above the job's threshold (a
        /// random network scores near its prior, 0.01, everywhere and would leave ODAM nothing to do).
        public var weights: String?
        public var candidates = 20

        public init(imagesPerWorker: Int) { self.imagesPerWorker = imagesPerWorker }
    }

    /// The pools the soak run compares: odam's (sized by the working set, sizes unused for two images freed) and
    /// an unbounded one that keeps every size (odam's pool before it was bounded).
    static let soakPools: [(name: String, environment: [String: String])] = [
        ("working-set pool (default)", [:]), ("unbounded pool", ["ODAM_POOL_BYTES": String(8 << 30), "ODAM_POOL_EPOCHS": "0"]),
    ]

    /// `workers` processes each process `soak.imagesPerWorker` generated scenes, once per pool; per worker the
    /// resident memory after `soak.warmUp` images and at the end, from `image_results.worker_rss_bytes`.
    func runSoak(_ soak: Soak, jobs: JobStore, connectionString: String, scratch: String, report: (String) -> Void) throws {
        let total = soak.imagesPerWorker * workers
        _ = try SyntheticDataset.write(
            directory: scratch + "/soak", count: total, seed: 23, generator: SceneGenerator(width: soak.width, height: soak.height))
        let folder = scratch + "/soak/images"
        let walk = try Enqueuer.walk(folder)
        // Short soaks get small shards, so that the workers share the scenes evenly.
        let shardSize = min(self.shardSize, max(1, soak.imagesPerWorker / 4))
        var spec = JobSpec()
        spec.model.spec = soak.model
        spec.model.weights = soak.weights
        if DefaultModel.variant(named: soak.model) == nil && soak.weights == nil {
            let weights = scratch + "/soak-model.safetensors"
            let (shift, count) = try Self.writeRandomWeights(
                model: soak.model, scene: folder + "/" + walk.images[0], candidates: soak.candidates,
                threshold: spec.nms.scoreThreshold, to: weights)
            report(
                String(
                    format:
                        "model: %@ with random weights (seed 0), class bias shifted by %+.2f: %d candidates of the first scene above %.2f",
                    soak.model, shift, count, spec.nms.scoreThreshold))
            spec.model.weights = weights
        }
        report(
            "soak: \(walk.images.count) scenes of \(soak.height)x\(soak.width), \(workers) workers with 1 thread each, shards of \(shardSize)"
        )
        report(
            "| pool | worker | images | images/s (all workers) | RSS after \(soak.warmUp) | RSS at end | growth | max RSS | max tensor working set |"
        )
        report("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        func mib(_ bytes: Int?) -> String { bytes.map { String(format: "%.0f MiB", Double($0) / 1_048_576) } ?? "-" }
        for (index, pool) in Self.soakPools.enumerated() {
            spec.output.store = "file://\(scratch)/objects-\(index)"
            let job = try jobs.enqueue(
                NewJob(name: "bench-soak-\(index)", spec: spec, source: folder, images: walk.images, shardSize: shardSize))
            let seconds = try runProcesses(
                Self.workerArguments, connectionString: connectionString, environment: pool.environment,
                logs: scratch + "/soak-\(index)-worker")
            let share = try jobs.databaseShare(job: job)
            guard share.images == walk.images.count else {
                throw RunnerError("only \(share.images) of \(walk.images.count) images were processed; see the worker logs")
            }
            for memory in try jobs.workerMemory(job: job, warmUp: soak.warmUp) {
                var growth = "-"
                if let warm = memory.afterWarmUpBytes, let end = memory.atEndBytes, warm > 0 {
                    growth = String(format: "%+.1f%%", 100 * Double(end - warm) / Double(warm))
                }
                let rate = String(format: "%.2f", Double(share.images) / seconds)
                let cells: [String] = [
                    pool.name, String(memory.worker), String(memory.images), rate, mib(memory.afterWarmUpBytes), mib(memory.atEndBytes),
                    growth, mib(memory.maximumBytes), mib(memory.maximumTensorPeakBytes),
                ]
                report("| " + cells.joined(separator: " | ") + " |")
            }
            try jobs.deleteJobs(named: "bench-soak-\(index)")
        }
    }

    /// Writes random weights of `model` (its builder's seed) to `path`, the classifier's foreground bias shifted by the
    /// smallest amount (to 1/64 of a logit) that gives `scene` at least `candidates` candidates scoring above
    /// `threshold`; the shift and the count it gave.
    public static func writeRandomWeights(model: String, scene: String, candidates target: Int, threshold: Float, to path: String) throws
        -> (
            shift: Float, count: Int
        )
    {
        let spec = try ModelSpec.resolve(model)
        let detector = try spec.build(classCount: 91)
        // Faster R-CNN's softmax keeps index 0 for the background; the one-stage heads have no background class.
        let (biasName, firstForeground) =
            spec.architecture == .fasterrcnn
            ? ("roi_heads.box_predictor.cls_score.bias", 1) : ("head.classification_head.cls_logits.bias", 0)
        guard let bias = detector.namedParameters.first(where: { $0.name == biasName })?.parameter else {
            throw ModelError("\(model): no parameter \(biasName) to shift")
        }
        let original = bias.value.scalars
        let image = try ImageCodec().decode(contentsOf: scene).tensor()
        func apply(shift: Float) {
            bias.value = Tensor(
                shape: bias.shape, values: original.indices.map { $0 >= firstForeground ? original[$0] + shift : original[$0] })
        }
        func count(shift: Float) -> Int {
            apply(shift: shift)
            var timings = StageTimings()
            let result = withoutGradients { detector.forward(detector.transform.batch([image]), timings: &timings).results[0] }
            return result.candidates.count { $0.score > threshold }
        }
        var (low, high): (Float, Float) = (0, 16)
        var found = count(shift: low)
        if found < target {
            found = count(shift: high)
            guard found >= target else {
                throw ModelError("\(model): even a class bias shift of \(high) gives only \(found) candidates above \(threshold)")
            }
            while high - low > 1.0 / 64 {
                let middle = (low + high) / 2
                let got = count(shift: middle)
                if got >= target { (high, found) = (middle, got) } else { low = middle }
            }
        } else {
            high = 0
        }
        apply(shift: high)
        try SafeTensors.write(detector.stateDict, to: path)
        return (high, found)
    }
}
