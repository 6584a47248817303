import CTandemShim
import Glibc
import Net

/// Starting the app and collecting exit statuses, with posix_spawn and waitpid (never Foundation
/// `Process`: it changes the child's process group and signal state and reaps on its own).
enum ChildProcess {
    /// Starts `command` (searched in PATH) with default signal actions and an empty signal mask;
    /// returns its pid, or the errno that prevented the exec.
    static func spawn(_ command: [String], newProcessGroup: Bool) -> Result<pid_t, SpawnError> {
        precondition(!command.isEmpty, "spawn needs a command")
        var arguments: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) }
        arguments.append(nil)
        defer { for argument in arguments { free(argument) } }
        var pid: pid_t = 0
        let status = arguments.withUnsafeBufferPointer { tandem_spawn(&pid, $0.baseAddress, newProcessGroup ? 1 : 0) }
        return status == 0 ? .success(pid) : .failure(SpawnError(code: status))
    }

    struct SpawnError: Error {
        let code: Int32
    }

    /// Collects every child that has exited (the app, or orphans reparented to this process as PID 1
    /// or subreaper) without blocking; returns the ones it collected with their wait statuses.
    static func reapExited() -> [(pid: pid_t, status: Int32)] {
        var reaped: [(pid: pid_t, status: Int32)] = []
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0 {
                reaped.append((pid, status))
            } else if pid < 0 && errno == EINTR {
                continue
            } else {
                return reaped
            }
        }
    }

    /// Sends `signal`; a process that is already gone (ESRCH) is not an error worth reporting.
    static func send(_ signal: Int32, to destination: SupervisorStateMachine.SignalDestination) -> SystemError? {
        let target: pid_t
        switch destination {
        case .process(let pid): target = pid
        case .processGroup(let pid): target = -pid
        }
        guard kill(target, signal) != 0, errno != ESRCH else { return nil }
        return SystemError("kill(\(target), \(signalName(signal)))", code: errno)
    }
}
