import ArgumentParser
import Foundation
import Logging
import Reports
import Runner

extension Odam {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A job's results as a static HTML page (summary, timings, detections, thumbnails, failures).",
            discussion: """
                Writes DIR/index.html and DIR/thumbs/: open the page from disk in any browser. Thumbnails show the combined \
                map over the photo with the box, class name and score, for the highest-scoring detections and for the most \
                surprising ones (lowest energy in box, highest max correlation); the table sorts by any column and filters \
                by class.
                """)

        @OptionGroup var databaseOptions: DatabaseOptions
        @Argument(help: "The job's number.") var job: Int
        @Option(help: "The folder to write.") var out: String
        @Option(help: "Detections with a thumbnail at most.") var thumbnails = 60
        @Option(help: "Rows of the detections table at most (highest scores first).") var rows = 5000

        func run() throws {
            let (page, problems) = try databaseOptions.session { connectionString in
                let jobs = try JobStore(connecting: connectionString)
                guard try jobs.jobExists(job) else { throw CommandFailure("no job \(job) (odam status lists the jobs)") }
                var report = JobPage()
                report.thumbnails = max(thumbnails, 0)
                report.rows = max(rows, 0)
                return try report.write(job: job, jobs: jobs, to: out)
            }
            for problem in problems { Log.report.warning("\(problem)") }
            print("report: \(page)")
        }
    }
}
