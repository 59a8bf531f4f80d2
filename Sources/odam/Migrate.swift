import ArgumentParser
import Foundation
import Postgres

extension Odam {
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the runner's schema (Migrations/NNNN_name.sql) in order, each in a transaction, once.")

        @OptionGroup var databaseOptions: DatabaseOptions
        @Option(help: "The folder of migration files (default: ODAM_MIGRATIONS, ./Migrations, or the checkout's next to the binary).")
        var migrations: String?

        func run() throws {
            let connection = try databaseOptions.connect()
            let applied = try Migrator(directory: try Self.migrationsDirectory(migrations)).migrate(connection)
            print(applied.isEmpty ? "schema up to date" : "applied " + applied.joined(separator: ", "))
        }

        /// Where the migration files are: the option, `ODAM_MIGRATIONS`, `./Migrations`, the checkout of the binary
        /// (`.build/release/odam` → `Migrations`), or `/usr/share/odam/Migrations` (the Docker image).
        static func migrationsDirectory(_ option: String?) throws -> String {
            if let option {
                guard FileManager.default.fileExists(atPath: option) else { throw CommandFailure("\(option): no such migrations folder") }
                return option
            }
            let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            let candidates = [
                ProcessInfo.processInfo.environment["ODAM_MIGRATIONS"], "Migrations",
                binary.appendingPathComponent("../../../Migrations").standardized.path, "/usr/share/odam/Migrations",
            ].compactMap { $0 }
            guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/0001_runner_schema.sql") }) else {
                throw CommandFailure("no Migrations folder found (looked in \(candidates.joined(separator: ", "))); pass --migrations")
            }
            return found
        }
    }
}
