import Foundation

/// Paths in this checkout, for fixtures the tests read: the one place that climbs from a source file to the root.
public enum Repository {
    /// The checkout's root folder.
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// A path under the root (`Migrations`, `Jobs`, `Tests/DetectionTests/Fixtures/fcos_small.json`).
    public static func path(_ relative: String) -> String { root + "/" + relative }

    /// The runner's migration files.
    public static var migrations: String { path("Migrations") }

    /// The fixture folder of a test target, by the target's name (`DetectionTests`).
    public static func fixtures(of target: String) -> String { path("Tests/\(target)/Fixtures") }
}
