import ArgumentParser
import Foundation
import Logging
import Processes
import Runner

/// The lease timings workers and coordinators share.
struct LeaseOptions: ParsableArguments {
    @Option(help: "Seconds a claim lasts without a heartbeat.") var leaseSeconds = 30.0
    @Option(help: "Seconds of worker silence after which its shards are put back.") var deadAfter = 15.0
    @Option(help: "Seconds one claim may run at most.") var deadlineSeconds = 3600.0

    var policy: LeasePolicy { LeasePolicy(leaseSeconds: leaseSeconds, deadlineSeconds: deadlineSeconds, deadWorkerSeconds: deadAfter) }
}

/// How a long-running process logs (swift-log records on standard error).
struct LogOptions: ParsableArguments {
    @Option(help: "Log lines as text or json (default: ODAM_LOG_FORMAT, else text).") var logFormat: ProcessLogHandler.Format?
    @Option(help: "The lowest level logged: trace, debug, info, notice, warning, error, critical (default: ODAM_LOG_LEVEL, else info).")
    var logLevel: Logger.Level?

    func apply() { ProcessLog.configure(format: logFormat, level: logLevel) }
}

extension ProcessLogHandler.Format: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

/// The loggers of the commands that are not long-running services (those log through the library's own).
enum Log {
    static let enqueue = Logger(label: "odam.enqueue")
    static let detect = Logger(label: "odam.detect")
    static let explain = Logger(label: "odam.explain")
    static let report = Logger(label: "odam.report")
    static let results = Logger(label: "odam.results")
}

/// A memory size on the command line: bytes, or a number with K, M or G (powers of 1024), for example `600M`.
struct MemorySize: ExpressibleByArgument {
    var bytes: Int

    init?(argument: String) {
        let text = argument.uppercased().replacingOccurrences(of: "IB", with: "").replacingOccurrences(of: "B", with: "")
        let shifts: [Character: Int] = ["K": 10, "M": 20, "G": 30]
        var digits = Substring(text)
        var shift = 0
        if let last = text.last, let unit = shifts[last] {
            shift = unit
            digits = digits.dropLast()
        }
        guard let number = Int(digits), number > 0 else { return nil }
        let (value, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { return nil }
        bytes = value
    }
}

/// Prints `value` as pretty JSON with sorted keys: the `--json` output of the benchmarks and evaluations.
func printJSON<Value: Encodable>(_ value: Value) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
