import Foundation
import Testing

/// `odam eval nms-sweep` as a process, on two small synthetic splits: what it chooses on tuning is what it reports,
/// and its paired differences are the differences of its rows.
struct NMSSweepCommandTests {
    @Test func choicesOnTuningAndPairedDifferencesOnTest() throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("odam-sweep-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        for (name, seed) in [("tune", "31"), ("test", "41")] {
            let made = try DetectCommandTests.run([
                "synth", "--out", scratch.appendingPathComponent(name).path, "--count", "10", "--seed", seed,
            ])
            #expect(made.status == 0, "\(made.stderr)")
        }
        func split(_ name: String) -> [String] {
            let folder = scratch.appendingPathComponent(name).appendingPathComponent("val").path
            return [folder + "/annotations.json", folder]
        }
        let arguments = [
            "eval", "nms-sweep", "--tuning-annotations", split("tune")[0], "--tuning-images", split("tune")[1], "--annotations",
            split("test")[0], "--images", split("test")[1], "--model", "fcos_synth_odamtrain", "--ious", "0.5,0.6", "--lows", "0.2,0.4",
            "--highs", "0.6,0.8", "--soft-sigmas", "0.5,1", "--resamples", "50", "--threads", "2",
        ]
        let result = try DetectCommandTests.run(arguments + ["--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(report["tuningImages"] as? Int == 2 && report["testImages"] as? Int == 2 && report["resamples"] as? Int == 50)
        let rows = try #require(report["rows"] as? [[String: Any]])
        // Per T_iou: NMS, Odam-NMS at the defaults, Odam-NMS tuned; then Soft-NMS, NMS and Odam-NMS at their best.
        #expect(rows.count == 9)
        func tuning(_ row: [String: Any]) -> Double { row["tuningJaccard"] as? Double ?? -1 }
        func method(_ row: [String: Any]) -> String { ((row["setting"] as? [String: Any])?.keys.first) ?? "" }
        let curve = rows.filter { $0["role"] as? String == "curve" }
        let best = rows.filter { $0["role"] as? String == "best" }
        #expect(best.map(method) == ["softNMS", "nms", "odam"])
        for kind in ["nms", "odam"] {
            let top = curve.filter { method($0) == kind }.map(tuning).max() ?? -1
            #expect(best.first { method($0) == kind }.map(tuning) == top, "the best \(kind) is the best on tuning")
        }
        for row in rows {
            for metric in ["jaccard", "missRate", "ap50", "crowdRecall", "sparseRecall"] {
                let estimate = try #require(row[metric] as? [String: Double])
                #expect(estimate["low"]! <= estimate["high"]! && (0...1).contains(estimate["value"]!), "\(metric) \(estimate)")
            }
        }
        // The first difference is the tuned Odam-NMS minus NMS at T_iou 0.5, on the same images.
        let differences = try #require(report["differences"] as? [[String: Any]])
        #expect(differences.count == 4)
        let first = try #require(differences.first?["jaccard"] as? [String: Double])
        let odam = try #require(curve.first { method($0) == "odam" }?["jaccard"] as? [String: Double])
        let nms = try #require(curve.first { method($0) == "nms" }?["jaccard"] as? [String: Double])
        #expect(abs(first["value"]! - (odam["value"]! - nms["value"]!)) < 1e-9)

        // Candidate map variants: each target and grid is its own tuned Odam-NMS, compared with the first variant.
        let variants = try DetectCommandTests.run(
            arguments + ["--json", "--candidate-targets", "logit,score", "--candidate-grids", "default,short-edge:50"])
        #expect(variants.status == 0, "\(variants.stderr)")
        let variantReport = try #require(try JSONSerialization.jsonObject(with: Data(variants.stdout.utf8)) as? [String: Any])
        let variantRows = try #require(variantReport["rows"] as? [[String: Any]])
        // Per T_iou: NMS, then the default and tuned Odam-NMS of each of the four variants; then the three best.
        let expectedRows: Int = 2 * (1 + 2 * 4) + 3
        #expect(variantRows.count == expectedRows)
        let variantDifferences = try #require(variantReport["differences"] as? [[String: Any]])
        let expectedDifferences: Int = 2 * 4 + 2 + 2 * 3
        #expect(variantDifferences.count == expectedDifferences)
        // NMS does not depend on the maps: its rows are those of the run without variants.
        func jaccardValue(_ row: [String: Any]) -> Double { (row["jaccard"] as? [String: Double])?["value"] ?? -1 }
        let nmsWithVariants: [Double] = variantRows.filter { method($0) == "nms" }.map(jaccardValue)
        let nmsWithout: [Double] = rows.filter { method($0) == "nms" }.map(jaccardValue)
        #expect(nmsWithVariants == nmsWithout)
        let badGrid = try DetectCommandTests.run(arguments + ["--candidate-grids", "short-edge:0"])
        #expect(badGrid.status != 0 && badGrid.stderr.contains("--candidate-grids"))

        let bad = try DetectCommandTests.run(arguments.map { $0 == "0.5,0.6" ? "0.5,x" : $0 })
        #expect(bad.status != 0 && bad.stderr.contains("--ious"))
    }
}
