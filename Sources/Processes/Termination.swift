import Dispatch
import Foundation

/// SIGTERM and SIGINT as events: `onTermination` runs a handler on each instead of the default action, so that a
/// process ends when its work says (a worker releases its shards first).
public enum Termination {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    private static let lock = NSLock()

    /// Runs `body` on every SIGTERM and SIGINT from now on.
    public static func onTermination(_ body: @escaping @Sendable () -> Void) {
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler(handler: body)
            source.resume()
            lock.withLock { sources.append(source) }
        }
    }
}
