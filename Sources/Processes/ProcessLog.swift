import Foundation
import Logging

/// The log of an odam process: swift-log records written to standard error, one line each, as text
/// (`2026-11-30T21:40:00.123Z notice odam.worker: message worker=3 shard=12`) or as JSON objects (`time`, `level`,
/// `label`, `message` and the metadata as fields) for log collectors.
public struct ProcessLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable { case text, json }

    public let label: String
    public let format: Format
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]

    public init(label: String, format: Format, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        FileHandle.standardError.write(Data((line(level: event.level, message: "\(event.message)", metadata: merged) + "\n").utf8))
    }

    /// One record as a line, without the line break.
    public func line(level: Logger.Level, message: String, metadata: Logger.Metadata, time: Date = Date()) -> String {
        let timestamp = Self.timestamp(time)
        switch format {
        case .text:
            let fields = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            return ([timestamp, level.rawValue, label + ":", message] + fields).joined(separator: " ")
        case .json:
            var object: [String: Any] = ["time": timestamp, "level": level.rawValue, "label": label, "message": message]
            for (key, value) in metadata where object[key] == nil { object[key] = Self.json(value) }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }

    static func json(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let convertible): return "\(convertible)"
        case .array(let values): return values.map(json)
        case .dictionary(let values): return values.mapValues(json)
        }
    }

    /// ISO 8601 in UTC with milliseconds.
    static func timestamp(_ time: Date) -> String {
        var seconds = time_t(time.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let milliseconds = Int((time.timeIntervalSince1970 - Double(seconds)) * 1000)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), milliseconds)
    }
}

/// The process's logging: odam's handler is installed once, at start, with the format and level of `ODAM_LOG_FORMAT`
/// (text or json) and `ODAM_LOG_LEVEL` (trace … critical), else text at info; a command's options may change them for
/// the loggers it makes afterwards.
public enum ProcessLog {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var format = ProcessLogHandler.Format.text
    nonisolated(unsafe) private static var level = Logger.Level.info

    /// Installs the handler; throws naming a variable whose value is not one of its choices.
    public static func bootstrap(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        if let text = environment["ODAM_LOG_FORMAT"] {
            guard let value = ProcessLogHandler.Format(rawValue: text) else {
                throw ProcessLogError("ODAM_LOG_FORMAT=\(text): use text or json")
            }
            lock.withLock { format = value }
        }
        if let text = environment["ODAM_LOG_LEVEL"] {
            guard let value = Logger.Level(rawValue: text) else {
                throw ProcessLogError("ODAM_LOG_LEVEL=\(text): use trace, debug, info, notice, warning, error or critical")
            }
            lock.withLock { level = value }
        }
        LoggingSystem.bootstrap { label in
            lock.withLock { ProcessLogHandler(label: label, format: format, level: level) }
        }
    }

    /// Sets the format and level of loggers made from now on (nil keeps the current one).
    public static func configure(format newFormat: ProcessLogHandler.Format?, level newLevel: Logger.Level?) {
        lock.withLock {
            if let newFormat { format = newFormat }
            if let newLevel { level = newLevel }
        }
    }
}

/// A logging setting that cannot be used, naming it.
public struct ProcessLogError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
