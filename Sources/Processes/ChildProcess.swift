import Foundation

/// A child process started with `posix_spawn`: its pid is owned here, and it is waited for once.
///
/// Not Foundation's `Process`: that watches its child through a descriptor that grandchildren (a PostgreSQL server
/// started by `pg_ctl`) would inherit, and it gives no way to send SIGKILL or SIGSTOP to one process of several.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let command: [String]
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `command` (its first element an absolute path) with stdin from /dev/null (or this process's when
    /// `inheritingInput`) and stdout and stderr appended
    /// to `output` (or inherited when nil); `environment` entries are added to (or replace) this process's variables.
    public init(_ command: [String], environment: [String: String] = [:], output: String? = nil, inheritingInput: Bool = false) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if !inheritingInput { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        if let output {
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var variables = ProcessInfo.processInfo.environment
        for (name, value) in environment { variables[name] = value }
        let arguments = command.map { strdup($0) } + [nil]
        let environmentStrings = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for argument in arguments { free(argument) }
            for entry in environmentStrings { free(entry) }
        }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, command[0], &actions, nil, arguments, environmentStrings)
        guard spawned == 0 else { throw ChildProcessError("cannot start \(command[0]): \(String(cString: strerror(spawned)))") }
        self.pid = pid
        self.command = command
    }

    /// Waits for the process to exit; its exit status, or 128 + the signal that ended it.
    @discardableResult
    public func wait() -> Int32 {
        if let exitStatus = lock.withLock({ exitStatus }) { return exitStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return record(status)
    }

    /// The exit status when the process has ended, nil while it runs.
    public var exitCode: Int32? {
        if let exitStatus = lock.withLock({ exitStatus }) { return exitStatus }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return record(status)
    }

    private func record(_ status: Int32) -> Int32 {
        // WIFEXITED / WEXITSTATUS, spelled out.
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        lock.withLock { exitStatus = code }
        return code
    }

    /// Sends `signal` (SIGTERM, SIGKILL, SIGSTOP, SIGCONT) unless the process was already waited for.
    public func send(_ signal: Int32) {
        guard lock.withLock({ exitStatus }) == nil else { return }
        kill(pid, signal)
    }

    /// Runs `command` to its end with output appended to `output`; its exit status.
    public static func run(_ command: [String], environment: [String: String] = [:], output: String) throws -> Int32 {
        try ChildProcess(command, environment: environment, output: output).wait()
    }
}

/// A child process that could not be started, naming the program and the cause.
public struct ChildProcessError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
