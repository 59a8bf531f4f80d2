import Digest
import Foundation
import Postgres
import Processes
import ServiceTestSupport
import TestSupport
import Testing

/// Hosts on one machine: network namespaces joined by veth pairs to a bridge in a hub namespace, every address
/// inside them (10.77.0.0/24, nothing in the machine's own namespace). A host's link can be cut and restored.
final class TestNetwork {
    let prefix: String
    let hosts: [String]
    private var made: [String] = []

    /// Why namespaces cannot be made here (not root, no `ip`), or nil.
    static var unavailable: String? {
        if geteuid() != 0 { return "not root" }
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") && !FileManager.default.isExecutableFile(atPath: "/sbin/ip") {
            return "no ip command (apt-get install iproute2)"
        }
        let probe = "odamprobe\(getpid())"
        defer { _ = try? TestNetwork.ip(["netns", "del", probe]) }
        if (try? TestNetwork.ip(["netns", "add", probe])) == nil { return "ip netns add failed (no CAP_SYS_ADMIN?)" }
        return nil
    }

    init(hosts: [String]) throws {
        prefix = "o\(getpid() % 100_000)"
        self.hosts = hosts
        let hub = namespace("hub")
        try Self.ip(["netns", "add", hub])
        made.append(hub)
        try Self.ip(["-n", hub, "link", "add", "br0", "type", "bridge"])
        try Self.ip(["-n", hub, "link", "set", "br0", "up"])
        for (index, host) in hosts.enumerated() {
            let name = namespace(host)
            try Self.ip(["netns", "add", name])
            made.append(name)
            try Self.ip(["-n", hub, "link", "add", link(host), "type", "veth", "peer", "name", "eth0", "netns", name])
            try Self.ip(["-n", hub, "link", "set", link(host), "master", "br0", "up"])
            try Self.ip(["-n", name, "addr", "add", "10.77.0.\(index + 1)/24", "dev", "eth0"])
            try Self.ip(["-n", name, "link", "set", "eth0", "up"])
            try Self.ip(["-n", name, "link", "set", "lo", "up"])
        }
    }

    deinit {
        for name in made.reversed() { _ = try? Self.ip(["netns", "del", name]) }
    }

    func namespace(_ host: String) -> String { "\(prefix)-\(host)" }
    func link(_ host: String) -> String { "\(prefix)v\(hosts.firstIndex(of: host)!)" }
    func address(_ host: String) -> String { "10.77.0.\(hosts.firstIndex(of: host)! + 1)" }

    /// `command` run inside `host`'s namespace.
    func inside(_ host: String, _ command: [String]) -> [String] { ["/usr/sbin/ip", "netns", "exec", namespace(host)] + command }

    /// Takes `host`'s link down at the bridge: its packets go nowhere, its processes live on.
    func cut(_ host: String) throws { try Self.ip(["-n", namespace("hub"), "link", "set", link(host), "down"]) }
    func restore(_ host: String) throws { try Self.ip(["-n", namespace("hub"), "link", "set", link(host), "up"]) }

    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        let log = NSTemporaryDirectory() + "odam-ip-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let status = try ChildProcess.run(["/usr/sbin/ip"] + arguments, output: log)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else { throw TestDependencyError("ip \(arguments.joined(separator: " ")) failed: \(output)") }
        return output
    }
}

/// Workers on separate hosts and a real network partition (issue: hardening). One host runs PostgreSQL (over TCP)
/// and SeaweedFS, the coordinator and the enqueue; three worker hosts run one worker each. Mid-job, the first
/// worker's link goes down while it holds a shard; the coordinator rescues the shard, another worker completes it;
/// the link comes back and the stale worker commits nothing. Every image is recorded exactly once and every object's
/// SHA-256 in S3 is the one SQL recorded.
struct PartitionTests {
    @Test func aPartitionedWorkerCommitsNothingAndTheJobCompletesOnce() throws {
        if let reason = TestNetwork.unavailable {
            print("PartitionTests: skipped: network namespaces cannot be made here (\(reason))")
            return
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("odam-partition-\(getpid())").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder + "/images", withIntermediateDirectories: true)
        chmod(folder, 0o755)
        var children: [ChildProcess] = []
        let network = try TestNetwork(hosts: ["db", "w1", "w2", "w3"])
        let server = try EmbeddedPostgres(dataDirectory: folder + "/postgres")
        server.durable = false
        server.commandPrefix = ["/usr/sbin/ip", "netns", "exec", network.namespace("db")]
        server.listenAddresses = [network.address("db")]
        server.trustedNetworks = ["10.77.0.0/24"]
        defer {
            for child in children { child.send(SIGKILL) }
            for child in children { _ = child.wait() }
            try? server.stop()
            try? FileManager.default.removeItem(atPath: folder)
        }
        try server.start()

        // SeaweedFS on the database host, without identities (every request is accepted, signed or not).
        let weed = SeaweedServer.binary
        try #require(FileManager.default.isExecutableFile(atPath: weed), "no SeaweedFS at \(weed); run Tools/setup --tests")
        try FileManager.default.createDirectory(atPath: folder + "/weed", withIntermediateDirectories: true)
        let s3 = "http://\(network.address("db")):8333"
        children.append(
            try ChildProcess(
                network.inside(
                    "db",
                    [
                        weed, "-logdir=\(folder)/weed", "mini", "-dir=\(folder)/weed", "-ip=\(network.address("db"))",
                        "-ip.bind=\(network.address("db"))", "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
                        "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.port=8333",
                    ]), output: folder + "/weed.log"))
        var ready = false
        for _ in 0..<300 where !ready {
            usleep(200_000)
            ready = (try? ChildProcess.run(network.inside("db", ["curl", "-sf", "-o", "/dev/null", s3 + "/"]), output: "/dev/null")) == 0
        }
        try #require(ready, "SeaweedFS did not start: \((try? String(contentsOfFile: folder + "/weed.log", encoding: .utf8)) ?? "")")

        // Twelve images from the sample photos, one per shard.
        let photos = ["astronaut.png", "rocket.jpg", "coffee.png", "chelsea.png", "camera.png", "coins.png"]
        for (index, name) in (photos + photos).enumerated() {
            try FileManager.default.copyItem(
                atPath: sampleImagePath(name), toPath: folder + "/images/\(index)-" + name)
        }
        try "output:\n  store: s3://odam/run\n  endpoint: \(s3)\n".write(toFile: folder + "/job.yaml", atomically: true, encoding: .utf8)
        let database = "host=\(network.address("db")) port=5432 dbname=postgres user=odam"
        // Short libpq timeouts: a partitioned worker's statements fail in seconds, not after TCP's fifteen minutes.
        let workerDatabase =
            database + " connect_timeout=3 keepalives=1 keepalives_idle=1 keepalives_interval=1 keepalives_count=2 tcp_user_timeout=3000"
        let environment = ["ODAM_DATABASE_URL": database, "AWS_ACCESS_KEY_ID": "odam", "AWS_SECRET_ACCESS_KEY": "odam-partition"]
        func odam(_ host: String, _ arguments: [String], log: String, extra: [String: String] = [:]) throws -> ChildProcess {
            try ChildProcess(
                network.inside(host, ["/bin/sh", "-c", "cd \"$1\" && shift && exec \"$@\"", "sh", folder, RunnerCluster.odam] + arguments),
                environment: environment.merging(extra) { $1 }, output: folder + "/" + log)
        }
        func log(_ name: String) -> String { (try? String(contentsOfFile: folder + "/" + name, encoding: .utf8)) ?? "" }

        #expect(
            try odam("db", ["migrate", "--migrations", RunnerCluster.migrations], log: "migrate.log").wait() == 0, "\(log("migrate.log"))")
        let enqueue = try odam("db", ["enqueue", "--job", "job.yaml", "--shard-size", "1", "images"], log: "enqueue.log").wait()
        try #require(enqueue == 0, "\(log("enqueue.log"))")
        let timings = ["--lease-seconds", "4", "--dead-after", "3"]
        children.append(try odam("db", ["coordinator", "--tick-seconds", "0.5"] + timings, log: "coordinator.log"))
        // The first worker stops after its first forward pass, holding its shard, until the test releases it.
        let release = folder + "/release-w1"
        var workers: [String: ChildProcess] = [:]
        for host in ["w1", "w2", "w3"] {
            let failpoint = host == "w1" ? ["ODAM_FAILPOINT": "inference", "ODAM_FAILPOINT_RELEASE": release] : [:]
            let worker = try odam(
                host, ["worker", "--threads", "1", "--heartbeat-seconds", "1", "--poll-seconds", "1"] + timings, log: "\(host).log",
                extra: failpoint.merging(["ODAM_DATABASE_URL": workerDatabase]) { $1 })
            workers[host] = worker
            children.append(worker)
        }

        let local = try PostgresConnection(server.connectionString())
        var held: [String?]?
        for _ in 0..<600 where held == nil {
            usleep(100_000)
            if log("w1.log").contains("odam failpoint inference reached") {
                held = try local.query(
                    "SELECT s.id::text, s.lease_token::text FROM shards s JOIN workers w ON w.id = s.worker_id WHERE s.state = 'running' AND w.pid = $1",
                    [String(workers["w1"]!.pid)]
                ).rows.first
            }
        }
        let shard = try #require(held, "w1 never held a shard at its failpoint: \(log("w1.log"))")

        // Partition w1; the others finish the job, w1's shard included, once the coordinator has rescued it.
        try network.cut("w1")
        var finished = false
        for _ in 0..<1200 where !finished {
            usleep(100_000)
            finished = try local.query("SELECT finished_at IS NOT NULL FROM jobs").rows == [["t"]]
        }
        #expect(finished, "the job did not finish without w1: \(log("coordinator.log"))")
        #expect(
            try local.query("SELECT state, lease_token::text <> $2 FROM shards WHERE id = $1", [shard[0], shard[1]]).rows == [
                ["completed", "t"]
            ])

        // The link comes back and w1 resumes: it must notice its lost lease and commit nothing.
        try network.restore("w1")
        _ = FileManager.default.createFile(atPath: release, contents: Data())
        var abandoned = false
        for _ in 0..<600 where !abandoned {
            usleep(100_000)
            abandoned = log("w1.log").contains("nothing committed")
        }
        #expect(abandoned, "w1 did not report its lost lease: \(log("w1.log"))")
        #expect(try local.query("SELECT count(*) FROM image_results WHERE lease_token = $1", [shard[1]]).rows == [["0"]])
        #expect(
            try local.query("SELECT count(*) FROM shard_attempts WHERE lease_token = $1 AND outcome = 'completed'", [shard[1]]).rows == [
                ["0"]
            ])
        #expect(
            try local.query("SELECT count(*), count(DISTINCT image_id), (SELECT count(*) FROM images) FROM image_results").rows == [
                ["12", "12", "12"]
            ])

        // Every object in S3 is the one SQL recorded.
        let objects = try local.query("SELECT key, sha256 FROM heat_map_objects ORDER BY key").rows
        #expect(objects.count >= 12)
        for object in objects {
            let file = folder + "/object"
            let status = try ChildProcess.run(
                network.inside("db", ["curl", "-sf", "-o", file, s3 + "/odam/run/" + object[0]!]), output: "/dev/null")
            let bytes = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data())
            #expect(status == 0 && SHA256.hex(bytes) == object[1], "\(object[0]!)")
        }
    }
}
