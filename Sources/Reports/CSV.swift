/// CSV as spreadsheets read it (RFC 4180 quoting), safe to open: a text cell that a spreadsheet would run as a
/// formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return; OWASP's list) is prefixed with `'` so that
/// it stays text. Numbers, negative ones included, are left as they are.
public enum CSV {
    public static func cell(_ value: String) -> String {
        var text = value
        if let first = text.first, "=+-@\t\r".contains(first), Double(text) == nil { text = "'" + text }
        guard text.contains(where: { ",\"\n\r".contains($0) }) else { return text }
        return "\"" + text.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }

    /// One line of cells (nil is an empty cell), without the line break.
    public static func line(_ cells: [String?]) -> String { cells.map { cell($0 ?? "") }.joined(separator: ",") }
}
