import CTandemShim
import Glibc

/// Signals as readable data: the chosen signals are blocked and read from a signalfd, so none is
/// lost or handled half-way while the owner is busy; a signal that arrives at any moment simply
/// waits in the descriptor until the owner's loop reads it.
///
/// Create it before any other thread exists (before any event loop): threads inherit the blocked
/// mask, and a thread that did not block a signal would take its default action instead of
/// queueing it.
public final class SignalChannel {
    public let fd: Int32

    /// Every signal that can be caught, except the synchronous ones a fault raises in the faulting
    /// thread (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS) and SIGPIPE, which is
    /// ignored instead: blocked, a write to a closed pipe would queue one here.
    public static var catchable: [Int32] {
        let excluded: Set<Int32> = [SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS, SIGPIPE]
        let classic = (1..<32).filter { !excluded.contains($0) }
        return classic + Array(tandem_sigrtmin()...tandem_sigrtmax())
    }

    public init(_ signals: [Int32]) throws(SystemError) {
        // A closed pipe (a log, a peer) must cost a write error, never the process.
        tandem_ignore_sigpipe()
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        let status = pthread_sigmask(SIG_BLOCK, &set, nil)
        guard status == 0 else { throw SystemError("pthread_sigmask", code: status) }
        fd = signalfd(-1, &set, Int32(SFD_NONBLOCK | SFD_CLOEXEC))
        guard fd >= 0 else { throw SystemError("signalfd", code: errno) }
    }

    deinit { close(fd) }

    /// The signals that arrived since the last call. Signals pending together come lowest number
    /// first, and a standard signal sent twice before it is read counts once (the kernel keeps one
    /// of each pending).
    public func read() -> [Int32] {
        var signals: [Int32] = []
        var info = signalfd_siginfo()
        while true {
            let count = Glibc.read(fd, &info, MemoryLayout<signalfd_siginfo>.size)
            if count < 0 && errno == EINTR { continue }
            guard count == MemoryLayout<signalfd_siginfo>.size else { return signals }
            signals.append(Int32(info.ssi_signo))
        }
    }
}
