import Foundation
import TestSupport
import Testing
import WeightsIO

/// Weights files that once trapped, overflowed the stack or wrapped a size: each must load or fail with an error that
/// names the file and the cause (`Tools/make_hostile_inputs.py` writes them).
struct HostileWeightsTests {
    @Test func everyCaseIsListed() {
        #expect(HostileInput.cases(.weights).count >= 15, "run Tools/make_hostile_inputs.py")
    }

    @Test(arguments: HostileInput.cases(.weights))
    func loadsOrNamesTheCause(_ input: HostileInput) {
        do {
            _ = try WeightsFile.read(contentsOf: input.path)
            #expect(input.expect == .ok, "\(input.file) loaded; expected an error containing '\(input.error)'")
        } catch {
            let message = "\(error)"
            #expect(input.expect == .error, "\(input.file): \(message)")
            #expect(message.contains(input.error), "\(message)")
            #expect(message.contains(input.path), "\(message)")
        }
    }

    @Test func aFIFOIsRefusedWithoutBlocking() throws {
        let path = NSTemporaryDirectory() + "odam-weights-fifo-\(getpid()).pth"
        unlink(path)
        try #require(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        #expect(throws: WeightsError.self) { try WeightsFile.read(contentsOf: path) }
        do {
            _ = try WeightsFile.read(contentsOf: path)
        } catch {
            #expect("\(error)".contains("FIFO"))
        }
    }
}
