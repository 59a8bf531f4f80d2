import CSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Children that must not outlive the process that started them (`odam run`'s coordinator and workers).
public enum ParentWatch {
    /// The environment variable through which a parent names itself to its children.
    public static let variable = "ODAM_PARENT_PID"

    /// The environment entry a parent gives its children.
    public static var environment: [String: String] { [variable: String(getpid())] }

    /// In a child started with ``environment``: asks for SIGTERM when the parent dies (a SIGKILLed `odam run` then
    /// takes its workers with it, which release their shards), and exits at once if the parent is already gone.
    public static func followParent(environment: [String: String]) {
        guard let text = environment[variable], let parent = pid_t(text) else { return }
        _ = odam_set_parent_death_signal(SIGTERM)
        // The parent may have died between the spawn and the call above: then no signal will come.
        if getppid() != parent { exit(1) }
    }
}
