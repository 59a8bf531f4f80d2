import CLibPQ
import Foundation

/// A libpq connection string (`key=value …` or a `postgresql://` URI) as libpq itself parses it
/// (`PQconninfoParse`), so that its password can be taken out reliably, whatever quoting or `@` it holds.
public struct ConnectionInfo: Sendable {
    /// The options the string sets, in libpq's order.
    public var options: [(keyword: String, value: String)]

    /// Parses `text`; nil when libpq cannot (the caller then shows nothing of it).
    public init?(_ text: String) {
        var message: UnsafeMutablePointer<CChar>? = nil
        guard let parsed = PQconninfoParse(text, &message) else {
            if let message { PQfreemem(message) }
            return nil
        }
        defer { PQconninfoFree(parsed) }
        var options: [(String, String)] = []
        var option = parsed
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { options.append((String(cString: keyword), String(cString: value))) }
            option += 1
        }
        self.options = options
    }

    /// The environment variables by which libpq finds a server on its own (an empty connection string reads them).
    public static let serverVariables = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE", "PGSERVICEFILE"]

    /// The password, if the string holds one.
    public var password: String? { options.first { $0.keyword == "password" }?.value }

    /// The `key='value'` string of every option but the password (for a child's argv or a message).
    public var withoutPassword: String { Self.render(options.filter { $0.keyword != "password" }) }

    /// The string with the password shown as `***`.
    public var redacted: String {
        Self.render(options.map { ($0.keyword, $0.keyword == "password" ? "***" : $0.value) })
    }

    /// libpq's quoting: single quotes, with `\` and `'` escaped by a backslash.
    static func render(_ options: [(keyword: String, value: String)]) -> String {
        options.map { option in
            let escaped = option.value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
            return "\(option.keyword)='\(escaped)'"
        }.joined(separator: " ")
    }
}
