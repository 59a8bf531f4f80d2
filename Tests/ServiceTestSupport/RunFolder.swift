import Foundation
import Postgres
import TestSupport

/// A fresh folder for `odam run` with sample photos in `photos/`, as a user's would be; `remove()` stops the
/// embedded PostgreSQL that odam started there and deletes the folder.
public struct RunFolder {
    public let path: String

    /// Creates `TMPDIR/odam-NAME-PID/photos` holding copies of the sample images `photos`.
    public init(_ name: String, photos: [String]) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("odam-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path + "/photos", withIntermediateDirectories: true)
        for photo in photos { try FileManager.default.copyItem(atPath: sampleImagePath(photo), toPath: path + "/photos/" + photo) }
    }

    public func remove() {
        try? EmbeddedPostgres(dataDirectory: path + "/.odam/postgres").stop()
        try? FileManager.default.removeItem(atPath: path)
    }
}
