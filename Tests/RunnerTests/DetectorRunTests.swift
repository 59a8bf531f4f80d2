import DefaultModel
import Foundation
import Postgres
import ServiceTestSupport
import TestSupport
import Testing

/// `odam enqueue`, a coordinator and a worker process on each detector odam loads (the small random-weight models of
/// the detector goldens, and the shipped person detector and FCOS), with exact maps: detections, Odam-NMS's decisions and the per-level
/// agreement of the maps with plain autograd land in SQL.
@Suite(.serialized)
struct DetectorRunTests {
    static func fixture(_ name: String) -> String {
        Repository.path("Tests/DetectionTests/Fixtures/\(name)")
    }

    @Test(arguments: [
        "ssdlite_mobilenet_v2_person", "fcos_synth_odamtrain", "fcos_small", "retinanet_small", "retinanet_v2_small", "fasterrcnn_small",
        "fasterrcnn_v2_small",
    ])
    func eachDetectorRunsWithExactMapsAndTheirAgreementInSQL(model: String) throws {
        let cluster = try RunnerCluster(name: "detector_\(model)")
        defer { try? FileManager.default.removeItem(atPath: cluster.root) }
        let images = cluster.root + "/photos"
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        for name in ["astronaut.png", "coffee.png"] {
            try FileManager.default.copyItem(atPath: sampleImagePath(name), toPath: images + "/" + name)
        }
        let modelLines =
            DefaultModel.Variant(rawValue: model) != nil
            ? "model:\n  spec: \(model)\n"
            : "model:\n  spec: \(Self.fixture(model)).json\n  weights: \(Self.fixture(model)).pth\n"
        // The random-weight models score many cells alike; their thresholds leave a few dozen candidates per image.
        let threshold = [
            "ssdlite_mobilenet_v2_person": "0.3", "fcos_synth_odamtrain": "0.3", "fcos_small": "0.556", "retinanet_small": "0.675",
            "retinanet_v2_small": "0.95", "fasterrcnn_small": "0.61",
            "fasterrcnn_v2_small": "0.701",
        ][model]!
        try """
        \(modelLines)nms:
          score_threshold: \(threshold)
        output:
          store: file://\(cluster.root)/objects
        """.write(toFile: cluster.root + "/job.yaml", atomically: true, encoding: .utf8)
        try cluster.enqueue(images, arguments: ["--job", cluster.root + "/job.yaml", "--shard-size", "1"])
        let coordinator = try cluster.coordinator()
        let worker = try cluster.worker("worker")
        #expect(RunnerCluster.finish(worker, timeout: 600) == 0, "\(cluster.logText("worker"))")
        #expect(RunnerCluster.finish(coordinator, timeout: 60) == 0, "\(cluster.logText("coordinator"))")
        let db = try cluster.connect()
        let statuses = try db.query("SELECT status, error FROM image_results").rows
        // The default path: auto, which is exact for the detectors other than FCOS.
        let path = model.hasPrefix("fcos") ? "auto" : "exact"
        #expect(
            try db.query("SELECT count(*) FROM image_results WHERE status = 'ok' AND map_path = $1", [path]).rows == [["2"]], "\(statuses)")
        let detections = Int(try db.query("SELECT count(*) FROM detections").rows[0][0]!)!
        #expect(detections > 0, "no detection recorded")
        // The job's classes as its model names them (the small random-weight models name none).
        let categories = try db.query("SELECT label, name FROM categories ORDER BY label").rows.map { "\($0[0]!) \($0[1]!)" }
        let named = ["ssdlite_mobilenet_v2_person": ["1 person"], "fcos_synth_odamtrain": ["1 person", "2 car", "3 sign"]]
        #expect(categories == named[model] ?? [], "\(model): \(categories)")
        // Every image's maps were checked on every level they were made on, nothing fell below r 0.999.
        let agreement = try db.query(
            "SELECT stage, count(*), min(min_r), bool_or(recomputed), sum(sampled) FROM map_agreement GROUP BY stage ORDER BY stage"
        ).rows
        #expect(agreement.map { $0[0]! } == ["candidates", "final"], "\(agreement)")
        for row in agreement {
            #expect(Float(row[2]!)! >= 0.999 && row[3] == "f" && Int(row[4]!)! > 0, "\(model) \(row)")
        }
        #expect(
            try db.query("SELECT count(*) FROM image_results WHERE min_map_r < 0.999 OR levels_recomputed <> 0").rows == [["0"]])
        // On the exact path every map is exact; FCOS's auto path may keep verified maps of the reversed head.
        if path == "exact" {
            #expect(try db.query("SELECT count(*) FROM map_agreement WHERE exact <> predictions").rows == [["0"]])
        }
        // Odam-NMS decided among candidates: what it kept and what plain NMS would have kept are both recorded.
        let decisions = try db.query("SELECT sum(kept), sum(kept_by_nms), sum(candidates) FROM image_results").rows[0]
        let timing = try db.query(
            "SELECT round(avg(forward_ms)), round(avg(candidate_maps_ms)), round(avg(final_maps_ms)) FROM image_results")
        print("\(model): kept, kept by NMS, candidates \(decisions); ms forward, candidate maps, final maps \(timing.rows[0])")
        #expect(Int(decisions[0]!)! == detections && Int(decisions[1]!)! > 0 && Int(decisions[2]!)! >= detections, "\(decisions)")
    }
}
