import Glibc

/// How the app ended, decoded from a `waitpid` status, and the exit status the supervisor passes
/// on for it (what a shell would report, so the kubelet and Job controller see the app's own).
public enum AppTermination: Equatable, Sendable, CustomStringConvertible {
    case exited(code: Int32)
    case killed(signal: Int32)

    /// Decodes a `waitpid` status (WIFEXITED/WTERMSIG are C macros, so the bits are read here).
    public init(waitStatus status: Int32) {
        let signal = status & 0x7f
        if signal == 0 {
            self = .exited(code: (status >> 8) & 0xff)
        } else {
            self = .killed(signal: signal)
        }
    }

    /// The app's own code, or 128 + the signal that killed it.
    public var exitCode: Int32 {
        switch self {
        case .exited(let code): return code
        case .killed(let signal): return 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): return "exited with \(code)"
        case .killed(let signal): return "killed by \(signalName(signal))"
        }
    }
}

/// Exit statuses the supervisor itself chooses.
public enum SupervisorExit {
    /// The command was not found (shell convention).
    public static let commandNotFound: Int32 = 127
    /// The command was found but could not be run (not executable, not a program).
    public static let cannotExecute: Int32 = 126
    /// The proxy did not become ready in time (EX_UNAVAILABLE, as linkerd-await).
    public static let proxyUnavailable: Int32 = 69

    /// The exit status for a failed spawn, from the error posix_spawn reported.
    public static func forSpawnError(_ code: Int32) -> Int32 {
        code == ENOENT || code == ENOTDIR ? commandNotFound : cannotExecute
    }
}

/// "SIGTERM" for 15, "signal 40" for one without a classic name; for log lines.
public func signalName(_ signal: Int32) -> String {
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
        SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1",
        SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
        SIGCHLD: "SIGCHLD", SIGCONT: "SIGCONT", SIGSTOP: "SIGSTOP", SIGTSTP: "SIGTSTP", SIGTTIN: "SIGTTIN",
        SIGTTOU: "SIGTTOU", SIGURG: "SIGURG", SIGXCPU: "SIGXCPU", SIGXFSZ: "SIGXFSZ", SIGVTALRM: "SIGVTALRM",
        SIGPROF: "SIGPROF", SIGWINCH: "SIGWINCH", SIGIO: "SIGIO", SIGPWR: "SIGPWR", SIGSYS: "SIGSYS",
    ]
    return names[signal] ?? "signal \(signal)"
}
