import Foundation

/// Reads the YAML that job specs use into JSON values (`[String: Any]`, `[Any]`, `String`, `Int`, `Double`, `Bool`,
/// `NSNull`): block mappings and sequences by indentation, flow sequences (`[a, b]`), quoted and plain scalars and
/// `#` comments. Anchors, tags, multi-document streams and block scalars (`|`, `>`) are refused with the line.
public enum YAMLReader {
    struct Line {
        var number: Int
        var indent: Int
        var text: String
    }

    /// Parses `text`; errors name `file` and the line.
    public static func parse(_ text: String, file: String) throws -> Any {
        var lines: [Line] = []
        for (index, raw) in text.components(separatedBy: "\n").enumerated() {
            let content = stripComment(raw)
            let trimmed = content.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed == "---" { continue }
            if content.contains("\t") && content.prefix(while: { $0 == " " || $0 == "\t" }).contains("\t") {
                throw RunnerError("\(file) line \(index + 1): tabs are not allowed for indentation")
            }
            lines.append(Line(number: index + 1, indent: content.prefix(while: { $0 == " " }).count, text: trimmed))
        }
        guard !lines.isEmpty else { return [String: Any]() }
        var position = 0
        let value = try block(&lines, &position, indent: lines[0].indent, file: file)
        if position < lines.count { throw RunnerError("\(file) line \(lines[position].number): unexpected indentation") }
        return value
    }

    static func stripComment(_ line: String) -> String {
        var quote: Character? = nil
        var previous: Character = " "
        for (offset, c) in line.enumerated() {
            if let open = quote {
                if c == open { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#" && (previous == " " || offset == 0) {
                return String(line.prefix(offset))
            }
            previous = c
        }
        return line
    }

    static func isSequenceItem(_ text: String) -> Bool { text == "-" || text.hasPrefix("- ") }

    /// The key and the rest of a `key: value` line, when it is one (the colon outside quotes, followed by a space or
    /// the end).
    static func keyValue(_ text: String) -> (String, String)? {
        var quote: Character? = nil
        let characters = Array(text)
        for i in characters.indices {
            let c = characters[i]
            if let open = quote {
                if c == open { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == ":" && (i + 1 == characters.count || characters[i + 1] == " ") {
                let key = String(characters[..<i]).trimmingCharacters(in: .whitespaces)
                return (unquoted(key), String(characters[(i + 1)...]).trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }

    static func block(_ lines: inout [Line], _ position: inout Int, indent: Int, file: String) throws -> Any {
        if isSequenceItem(lines[position].text) {
            var items: [Any] = []
            while position < lines.count, lines[position].indent == indent, isSequenceItem(lines[position].text) {
                let rest = String(lines[position].text.dropFirst(1)).trimmingCharacters(in: .whitespaces)
                if rest.isEmpty {
                    position += 1
                    guard position < lines.count, lines[position].indent > indent else {
                        items.append(NSNull())
                        continue
                    }
                    items.append(try block(&lines, &position, indent: lines[position].indent, file: file))
                } else if keyValue(rest) != nil && !rest.hasPrefix("[") && !rest.hasPrefix("\"") && !rest.hasPrefix("'") {
                    // "- key: value" opens a mapping whose keys sit two columns further in.
                    lines[position] = Line(number: lines[position].number, indent: indent + 2, text: rest)
                    items.append(try block(&lines, &position, indent: indent + 2, file: file))
                } else {
                    items.append(try scalar(rest, line: lines[position].number, file: file))
                    position += 1
                }
            }
            return items
        }
        var mapping: [String: Any] = [:]
        while position < lines.count, lines[position].indent == indent {
            let line = lines[position]
            guard let (key, rest) = keyValue(line.text) else {
                throw RunnerError("\(file) line \(line.number): expected 'key: value', found '\(line.text)'")
            }
            guard mapping[key] == nil else { throw RunnerError("\(file) line \(line.number): the key '\(key)' appears twice") }
            position += 1
            if !rest.isEmpty {
                mapping[key] = try scalar(rest, line: line.number, file: file)
            } else if position < lines.count,
                lines[position].indent > indent
                    || (lines[position].indent == indent && isSequenceItem(lines[position].text))
            {
                mapping[key] = try block(&lines, &position, indent: lines[position].indent, file: file)
            } else {
                mapping[key] = NSNull()
            }
        }
        if position < lines.count, lines[position].indent > indent {
            throw RunnerError("\(file) line \(lines[position].number): unexpected indentation")
        }
        return mapping
    }

    static func unquoted(_ text: String) -> String {
        if text.count >= 2, let first = text.first, first == "\"" || first == "'", text.last == first {
            let inner = String(text.dropFirst().dropLast())
            return first == "'" ? inner.replacingOccurrences(of: "''", with: "'") : inner.replacingOccurrences(of: "\\\"", with: "\"")
        }
        return text
    }

    static func scalar(_ text: String, line: Int, file: String) throws -> Any {
        if text.hasPrefix("[") {
            guard text.hasSuffix("]") else { throw RunnerError("\(file) line \(line): a flow sequence must end with ']' on its line") }
            let inner = text.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
            if inner.isEmpty { return [Any]() }
            // One level only (job specs list targets): nested brackets once cost time and memory quadratic in depth.
            if inner.contains("[") || inner.contains("]") {
                throw RunnerError("\(file) line \(line): nested flow sequences ([[...]]) are not supported; use indented items")
            }
            return try inner.split(separator: ",").map { try scalar($0.trimmingCharacters(in: .whitespaces), line: line, file: file) }
        }
        if let first = text.first, "&*!|>%@`".contains(first) {
            throw RunnerError("\(file) line \(line): '\(first)' (anchors, aliases, tags, block scalars) is not supported in job specs")
        }
        if text.hasPrefix("{") { throw RunnerError("\(file) line \(line): flow mappings ({...}) are not supported; use indented keys") }
        if let first = text.first, first == "\"" || first == "'" {
            guard text.count >= 2, text.last == first else { throw RunnerError("\(file) line \(line): unterminated quoted string") }
            return unquoted(text)
        }
        switch text {
        case "true", "True", "yes": return true
        case "false", "False", "no": return false
        case "null", "~", "Null": return NSNull()
        default: break
        }
        if let integer = Int(text) { return integer }
        if let number = Double(text), text.rangeOfCharacter(from: .letters) == nil { return number }
        return text
    }
}
