import ArgumentParser
import Foundation
import Reports

extension Odam.Bench {
    struct RunnerBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "runner",
            abstract: "Claims per second and database time per image, with worker processes on generated images.",
            discussion: """
                Two measurements on a private PostgreSQL (or --database): (1) claim throughput: a job of --claim-shards \
                one-image shards claimed and completed under their fencing tokens by --workers processes, as fast as they \
                can; (2) processing: --images generated scenes processed by --workers `odam worker` processes, and the \
                database time per image (claim and the fenced commit) against its processing time, from the results in SQL.
                """)

        @Option(help: "Worker processes.") var workers = 8
        @Option(help: "Generated images to process.") var images = 128
        @Option(help: "Images per shard in the processing run (odam enqueue's default).") var shardSize = 16
        @Option(help: "Shards of the claim-throughput run.") var claimShards = 4000
        @Option(help: "Image paths of the enqueue run (0 skips it).") var enqueueImages = 1_000_000
        @Option(help: "A database to use instead of a private embedded one (its jobs tables get the benchmark's jobs).")
        var database: String?
        @Option(
            help:
                "Soak instead: this many generated scenes per worker, with odam's pool and an unbounded one; each worker's memory after --soak-warm-up images and at the end."
        )
        var soak: Int?
        @Option(help: "Images after which the soak run takes each worker's first memory reading.") var soakWarmUp = 50
        @Option(help: "The soak run's scene size in pixels, HxW.") var soakSize = "320x320"
        @Option(help: "The soak run's model: a shipped model's name, a torchvision builder name or a JSON model spec.")
        var soakModel = "fcos_synth_odamtrain"
        @Option(
            help:
                "The soak model's weights; without them, a model other than the shipped ones gets random weights whose class bias is shifted until --soak-candidates predictions of the first scene score above the job's threshold."
        )
        var soakWeights: String?
        @Option(help: "Candidates above the score threshold that the random weights are calibrated to.") var soakCandidates = 20

        func run() throws {
            var benchmark = RunnerBenchmark(
                executable: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path,
                migrations: try Odam.Migrate.migrationsDirectory(nil))
            benchmark.workers = workers
            benchmark.images = images
            benchmark.shardSize = shardSize
            benchmark.claimShards = claimShards
            benchmark.enqueueImages = enqueueImages
            benchmark.database = database
            if let soak {
                var settings = RunnerBenchmark.Soak(imagesPerWorker: soak)
                settings.warmUp = soakWarmUp
                let sizes = try parseSizes(soakSize)
                guard sizes.count == 1, sizes[0].0 > 0, sizes[0].1 > 0 else {
                    throw ValidationError("--soak-size \(soakSize): expected one HxW")
                }
                (settings.height, settings.width) = sizes[0]
                settings.model = soakModel
                settings.weights = soakWeights
                settings.candidates = soakCandidates
                benchmark.soak = settings
            }
            try benchmark.run { say($0) }
        }
    }

    /// One process of the claim-throughput run.
    struct ClaimStorm: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "claim-storm", abstract: "(used by odam bench runner) Claim and complete shards until none is left.",
            shouldDisplay: false)

        func run() throws {
            guard let database = ProcessInfo.processInfo.environment["ODAM_DATABASE_URL"] else {
                throw CommandFailure("ODAM_DATABASE_URL is not set")
            }
            print("claimed \(try RunnerBenchmark.claimStorm(connectionString: database))")
        }
    }
}
