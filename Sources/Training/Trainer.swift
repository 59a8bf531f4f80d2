public import Detection
import Engine
import Foundation
import NN
import Vision
import WeightsIO

/// `odam train`: FCOS trained from scratch with SGD, multi-scale resizing and horizontal flips, checkpoints that
/// resume exactly, and the validation metrics after each epoch.
///
/// Everything random is a function of the seed and the iteration (the epoch's image order, each batch's scale and
/// flips), so a run resumed from a checkpoint continues as if never stopped.
public final class Trainer {
    public let config: TrainingConfig
    public let detector: FCOS
    let samples: [Sample]
    let loss: FCOSLoss
    /// The names the saved model spec gives its labels.
    let classNames: [String]
    var optimizer: SGD
    public private(set) var iteration = 0

    struct Sample {
        var path: String
        var boxes: [[Float]]
        var labels: [Int]
        var ignored: [Bool]
    }

    /// One line of progress: iteration, epoch, loss terms, speed.
    public struct Progress: Sendable {
        public var iteration: Int
        public var iterations: Int
        public var epoch: Int
        public var learningRate: Float
        public var losses: [String: Float]
        public var imagesPerSecond: Double
        public var secondsLeft: Double
    }

    public var iterationsPerEpoch: Int { max(samples.count / config.batchSize, 1) }
    public var totalIterations: Int { iterationsPerEpoch * config.epochs }

    public init(config: TrainingConfig) throws {
        self.config = config
        var loss = FCOSLoss()
        loss.assignment = config.assignment
        self.loss = loss
        var spec = config.model
        spec.normalization = .batchNorm
        guard let fcos = try spec.build(classCount: spec.classCount!) as? FCOS else {
            throw ModelError("odam train trains FCOS models (the model's architecture is \(spec.architecture.rawValue))")
        }
        detector = fcos
        let annotations = try COCOAnnotations(contentsOf: config.train + "/annotations.json")
        let byImage = Dictionary(grouping: annotations.annotations, by: \.imageID)
        var samples = annotations.images.map { image in
            let objects = byImage[image.id] ?? []
            return Sample(
                path: config.train + "/" + image.fileName, boxes: objects.map { Array($0.box) }, labels: objects.map(\.categoryID),
                ignored: objects.map(\.ignore))
        }
        // The model's class names come from the training annotations unless its spec names them.
        let classCount = spec.classCount!
        classNames =
            config.model.classNames
            ?? (0..<classCount).map { $0 == 0 ? "__background__" : annotations.categories[$0] ?? "label \($0)" }
        if let limit = config.trainImages { samples = Array(samples.prefix(limit)) }
        guard !samples.isEmpty else { throw ModelError("\(config.train)/annotations.json: no training images") }
        self.samples = samples
        optimizer = SGD(learningRate: config.learningRate, momentum: config.momentum, weightDecay: config.weightDecay)
    }

    var schedule: LearningRateSchedule {
        LearningRateSchedule(
            baseRate: config.learningRate, warmupIterations: config.warmupIterations, warmupFactor: config.warmupFactor,
            milestones: config.milestones.map { $0 * iterationsPerEpoch }, gamma: config.gamma)
    }

    /// The epoch's image order: a Fisher-Yates shuffle seeded by the seed and the epoch.
    func order(epoch: Int) -> [Int] {
        var random = RandomNumbers(seed: config.seed &* 7919 &+ UInt64(epoch))
        var order = Array(samples.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(random.next() % UInt64(i + 1))) }
        return order
    }

    /// The batch of iteration `iteration`: network input and targets in its pixels.
    public func batch(at iteration: Int) throws -> (DetectionTransform.Batch, [TrainingTarget]) {
        let epoch = iteration / iterationsPerEpoch, step = iteration % iterationsPerEpoch
        let chosen = order(epoch: epoch)[(step * config.batchSize)..<((step + 1) * config.batchSize)]
        var random = RandomNumbers(seed: config.seed &* 104_729 &+ UInt64(iteration))
        let minSize = config.minSizes[Int(random.next() % UInt64(config.minSizes.count))]
        let transform = DetectionTransform(minSize: minSize, maxSize: config.maxSize ?? max(minSize, detector.transform.maxSize))
        var images: [Tensor] = [], targets: [TrainingTarget] = []
        for index in chosen {
            let sample = samples[index]
            let decoded = try ImageCodec().decode(contentsOf: sample.path)
            var image = decoded
            var boxes = sample.boxes
            if config.horizontalFlip && random.unit() < 0.5 {
                image = decoded.flippedHorizontally()
                let width = Float(decoded.width)
                boxes = boxes.map { [width - $0[2], $0[1], width - $0[0], $0[3]] }
            }
            images.append(image.tensor())
            let resized = transform.resizedSize(height: decoded.height, width: decoded.width)
            let sx = Float(resized.width) / Float(decoded.width), sy = Float(resized.height) / Float(decoded.height)
            targets.append(
                TrainingTarget(
                    boxes: boxes.map { [$0[0] * sx, $0[1] * sy, $0[2] * sx, $0[3] * sy] }, labels: sample.labels, ignored: sample.ignored))
        }
        return (transform.batch(images), targets)
    }

    /// One SGD step on the next batch; returns the loss terms.
    func step() throws -> [String: Float] {
        let (batch, targets) = try batch(at: iteration)
        return trainStep(batch: batch, targets: targets)
    }

    /// One SGD step on a prepared batch (the iteration counter advances).
    public func trainStep(batch: DetectionTransform.Batch, targets: [TrainingTarget]) -> [String: Float] {
        detector.beginTrainingStep()
        defer { detector.endTrainingStep() }
        let padded = (batch.tensor.shape[2], batch.tensor.shape[3])
        let (terms, extra) = withTrainingMode { () -> (FCOSLoss.Terms, [String: Tensor]) in
            var timings = StageTimings()
            let (features, pyramid) = detector.backbone(batch.tensor, timings: &timings)
            var towerLayers: [(classification: [TowerLayer], regression: [TowerLayer])] = []
            let outputs = pyramid.map { level -> (logits: Tensor, boxes: Tensor, centerness: Tensor) in
                guard config.odamTrain != nil else { return detector.head(level) }
                // Odam-Train's maps go through the reversed head, which reads the tower layers.
                var classLayers: [TowerLayer] = [], boxLayers: [TowerLayer] = []
                let classFeatures = detector.classificationTower(level, recording: &classLayers)
                let boxFeatures = detector.regressionTower(level, recording: &boxLayers)
                towerLayers.append((classLayers, boxLayers))
                return (detector.classLogits(classFeatures), detector.boxRegression(boxFeatures).relu(), detector.centerness(boxFeatures))
            }
            let anchors = pyramid.indices.map { level in
                detector.anchors.anchors(
                    level: level, gridHeight: pyramid[level].shape[2], gridWidth: pyramid[level].shape[3], imageHeight: padded.0,
                    imageWidth: padded.1)
            }
            let terms = loss(
                logits: outputs.map(\.logits), boxes: outputs.map(\.boxes), centerness: outputs.map(\.centerness), targets: targets,
                anchors: anchors)
            guard let odam = config.odamTrain else { return (terms, [:]) }
            var trace = ForwardTrace(
                input: batch.tensor, backbone: features, pyramid: pyramid,
                head: [
                    "cls_logits": outputs.map(\.logits), "bbox_regression": outputs.map(\.boxes), "bbox_ctrness": outputs.map(\.centerness),
                ])
            trace.towerLayers = towerLayers
            let assignments = terms.assignments
            let (odamLoss, _) = OdamTrainLoss(settings: odam)(
                detector: detector, trace: trace, targets: targets, anchors: anchors, assignments: assignments, inputSizes: batch.imageSizes
            )
            return (terms, ["odam": odamLoss])
        }
        var total = terms.total
        for (_, value) in extra { total = total + value }
        let parameters = detector.trainableParameters
        let grads = gradients(of: total, withRespectTo: parameters.map(\.parameter.value))
        var byName = Dictionary(uniqueKeysWithValues: zip(parameters.map(\.name), grads))
        if let clipNorm = config.clipNorm { _ = clipGradientNorm(&byName, maxNorm: clipNorm) }
        optimizer.learningRate = schedule.rate(at: iteration)
        optimizer.step(parameters, gradients: byName)
        var values = [
            "classification": terms.classification.item, "regression": terms.regression.item, "centerness": terms.centerness.item,
        ]
        for (name, value) in extra { values[name] = value.item }
        iteration += 1
        return values
    }

    /// Trains to the end of the configured epochs (or to iteration `stop`), from `iteration`, checkpointing and
    /// validating on the way; the final weights are written when the last epoch ends.
    public func run(until stop: Int? = nil, progress: (Progress) -> Void, epochDone: (Int, [String: Double]) -> Void) throws {
        try FileManager.default.createDirectory(atPath: config.output, withIntermediateDirectories: true)
        var window: [Double] = []
        while iteration < min(stop ?? totalIterations, totalIterations) {
            let (losses, milliseconds) = try Stopwatch.time { try step() }
            window.append(milliseconds / 1000)
            if window.count > 20 { window.removeFirst() }
            let perIteration = window.reduce(0, +) / Double(window.count)
            progress(
                Progress(
                    iteration: iteration, iterations: totalIterations, epoch: (iteration - 1) / iterationsPerEpoch + 1,
                    learningRate: optimizer.learningRate, losses: losses, imagesPerSecond: Double(config.batchSize) / perIteration,
                    secondsLeft: perIteration * Double(totalIterations - iteration)))
            let epochEnds = iteration % iterationsPerEpoch == 0
            if iteration % config.checkpointEvery == 0 || epochEnds { try saveCheckpoint() }
            if epochEnds {
                let metrics = try validate()
                epochDone(iteration / iterationsPerEpoch, metrics)
                var line = metrics
                line["epoch"] = Double(iteration / iterationsPerEpoch)
                line["iteration"] = Double(iteration)
                try appendLine(line, to: config.output + "/metrics.jsonl")
            }
        }
        if iteration == totalIterations { try saveModel(to: config.output + "/model.safetensors") }
    }

    func appendLine(_ values: [String: Double], to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: values, options: [.sortedKeys]) + Data("\n".utf8)
        if let handle = FileHandle(forWritingAtPath: path) {
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
        } else if !FileManager.default.createFile(atPath: path, contents: data) {
            throw ModelError("\(path): cannot write the metrics")
        }
    }

    public var checkpointPath: String { config.output + "/checkpoint.safetensors" }

    /// The weights, the optimizer's momentum and the iteration, atomically.
    public func saveCheckpoint(to path: String? = nil) throws {
        var tensors = detector.stateDict
        for (name, buffer) in optimizer.momentumBuffers { tensors["optimizer.momentum." + name] = buffer }
        try SafeTensors.write(
            tensors, metadata: ["iteration": String(iteration), "format": "odam-train-checkpoint"], to: path ?? checkpointPath)
    }

    /// Continues from a checkpoint of the same config.
    public func resume(from path: String) throws {
        let (stored, metadata) = try SafeTensors.read(contentsOf: path)
        guard metadata["format"] == "odam-train-checkpoint", let done = metadata["iteration"].flatMap(Int.init) else {
            throw ModelError("\(path): not an odam training checkpoint")
        }
        var weights: [String: StoredTensor] = [:]
        for (name, tensor) in stored {
            if name.hasPrefix("optimizer.momentum.") {
                optimizer.momentumBuffers[String(name.dropFirst("optimizer.momentum.".count))] = tensor.floatTensor()
            } else {
                weights[name] = tensor
            }
        }
        do { try detector.load(weights, strict: true, shape: \.shape, convert: { $0.floatTensor() }) } catch let mismatch
            as StateDictMismatch
        {
            throw ModelError("\(path): \(mismatch)")
        }
        iteration = done
    }

    /// The weights alone, with a model spec beside them (`.json`) for `odam detect --model`.
    public func saveModel(to path: String) throws {
        try SafeTensors.write(detector.stateDict, to: path)
        var spec = config.model
        spec.normalization = .batchNorm
        spec.classNames = classNames
        let data = try JSONEncoder.sorted.encode(spec)
        guard FileManager.default.createFile(atPath: (path as NSString).deletingPathExtension + ".json", contents: data) else {
            throw ModelError("\(path): cannot write the model spec beside the weights")
        }
    }

    /// COCO AP/AP50 on the val split and AP50 on its sparse and crowd scenes.
    public func validate() throws -> [String: Double] {
        guard let val = config.val else { return [:] }
        let annotations = try COCOAnnotations(contentsOf: val + "/annotations.json").prefix(images: config.valImages)
        var results: [COCOResult] = []
        for image in annotations.images {
            let decoded = try ImageCodec().decode(contentsOf: val + "/" + image.fileName)
            var timings = StageTimings()
            results += detector.detect([decoded.tensor()], timings: &timings)[0].detections.map {
                COCOResult(imageID: image.id, detection: $0)
            }
        }
        var metrics: [String: Double] = [:]
        let all = try COCOEvaluation().evaluate(groundTruth: annotations, results: results)
        metrics["AP"] = all.ap
        metrics["AP50"] = all.ap50
        for scene in ["sparse", "crowd"] {
            var subset = annotations
            subset.images.removeAll { $0.scene != scene }
            let kept = Set(subset.images.map(\.id))
            guard !kept.isEmpty else { continue }
            subset.annotations.removeAll { !kept.contains($0.imageID) }
            let summary = try COCOEvaluation().evaluate(groundTruth: subset, results: results.filter { kept.contains($0.imageID) })
            metrics["AP50_\(scene)"] = summary.ap50
        }
        return metrics
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
