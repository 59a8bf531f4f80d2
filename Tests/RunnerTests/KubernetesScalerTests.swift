import Foundation
import Postgres
import Runner
import ServiceTestSupport
import TestSupport
import Testing
import Yams

/// The query KEDA scales the workers on (Docker/kubernetes/worker-scaledobject.yaml), run against the real schema:
/// it counts the shards that wait or run, and nothing else, as a job moves through its life.
struct KubernetesScalerTests {
    static func scalerQuery() throws -> (query: String, target: Double) {
        let text = try String(contentsOfFile: Repository.path("Docker/kubernetes/worker-scaledobject.yaml"), encoding: .utf8)
        let object = try #require(try Yams.load(yaml: text) as? [String: Any])
        let spec = try #require(object["spec"] as? [String: Any])
        let trigger = try #require((spec["triggers"] as? [[String: Any]])?.first)
        #expect(trigger["type"] as? String == "postgresql")
        let metadata = try #require(trigger["metadata"] as? [String: Any])
        let query = try #require(metadata["query"] as? String)
        let target = try #require((metadata["targetQueryValue"] as? String).flatMap(Double.init))
        return (query, target)
    }

    @Test func theScalerCountsShardsWaitingOrRunning() throws {
        let (query, target) = try Self.scalerQuery()
        #expect(target >= 1)
        let db = try freshTestDatabase("kubernetes_scaler")
        func count() throws -> Int {
            let value = try db.query(query).rows.first?.first ?? nil
            return value.flatMap { Int($0) } ?? -1
        }
        #expect(try count() == 0, "no jobs: KEDA scales the workers to zero")
        let jobs = JobStore(db)
        _ = try jobs.enqueue(NewJob(name: "k", spec: JobSpec(), source: "/d", images: (0..<5).map { "i\($0).png" }, shardSize: 1))
        #expect(try count() == 5)
        let worker = try jobs.registerWorker(host: "test", version: "t", threads: 1)
        let claims = try jobs.claim(worker: worker, count: 2)
        #expect(claims.count == 2)
        #expect(try count() == 5, "running shards keep their workers")
        let started = Date()
        #expect(try jobs.transaction { try jobs.complete(claims[0], worker: worker, startedAt: started) })
        #expect(try jobs.fail(claims[1], worker: worker, startedAt: started, error: "test") == true)
        let retried = try db.query("SELECT state FROM shards WHERE id = $1", [String(claims[1].shardID)]).rows.first?.first ?? nil
        #expect(try count() == (retried == "failed" ? 3 : 4), "completed and failed shards need no worker (\(retried ?? "-"))")
    }
}
