import Foundation

/// One line of progress: a bar, images done, rate, ETA and (when known) live workers.
public enum ProgressLine {
    public static func render(done: Int, total: Int, elapsed: Double, workers: Int?) -> String {
        let width = 30
        let filled = total > 0 ? min(width, done * width / total) : width
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? String(format: "%.0f s", Double(total - done) / rate) : "?"
        let live = workers.map { " · \($0) workers" } ?? ""
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            + "\(done)/\(total) images · \(String(format: "%.2f", rate)) img/s · ETA \(eta)\(live)   "
    }
}
