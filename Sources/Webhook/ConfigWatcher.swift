import Injection
import Synchronization
import Telemetry

/// Holds the injector built from the current config file and replaces it when the file changes.
///
/// A mounted ConfigMap changes by a symlink swap, so the file is read again (it is small) and
/// compared by content every `interval`. A new config is applied whole or not at all: one that
/// does not parse keeps the previous injector, and the failure is logged and counted.
public final class ConfigWatcher: Sendable {
    public let path: String?
    private let state: Mutex<State>
    private let logger: Logger
    private let metrics: WebhookMetrics

    /// Loads `path` (nil: the built-in defaults); a config that cannot be used is an error.
    public init(path: String?, logger: Logger, metrics: WebhookMetrics) throws(ConfigError) {
        self.path = path
        self.logger = logger
        self.metrics = metrics
        var config = InjectionConfig.defaults
        var bytes: [UInt8] = []
        if let path {
            bytes = try ConfigFile.read(path)
            config = try ConfigFile.parse(bytes, path: path)
        }
        state = Mutex(State(injector: Self.injector(config), applied: bytes, seen: .success(bytes)))
        metrics.configValid.set(1)
        metrics.injectionEnabled.set(config.injection.enabled ? 1 : 0)
    }

    private struct State {
        var injector: Injector
        /// The bytes the current injector was built from.
        var applied: [UInt8]
        /// What the last check read, so each bad version is reported once, not on every poll.
        var seen: Result<[UInt8], ConfigError>
    }

    public var injector: Injector { state.withLock { $0.injector } }

    /// Reviews log a reason code, never the explanation, so none is formatted.
    private static func injector(_ config: InjectionConfig) -> Injector {
        var injector = Injector(config: config)
        injector.keepsExplanations = false
        return injector
    }

    /// Reads the file once; applies it if it changed and is valid. Returns true when it applied.
    @discardableResult
    public func check() -> Bool {
        guard let path else { return false }
        let read: Result<[UInt8], ConfigError>
        do throws(ConfigError) { read = .success(try ConfigFile.read(path)) } catch { read = .failure(error) }
        let (isNew, applied) = state.withLock { state in
            defer { state.seen = read }
            return (state.seen != read, state.applied)
        }
        guard isNew else { return false }
        do throws(ConfigError) {
            let bytes = try read.get()
            if bytes == applied {
                metrics.configValid.set(1)
                return false
            }
            let config = try ConfigFile.parse(bytes, path: path)
            state.withLock { $0.injector = Self.injector(config); $0.applied = bytes }
            metrics.configReloads.increment("success")
            metrics.configValid.set(1)
            metrics.injectionEnabled.set(config.injection.enabled ? 1 : 0)
            logger.info("config reloaded", ["path": .string(path), "injectionEnabled": .bool(config.injection.enabled)])
            return true
        } catch {
            metrics.configReloads.increment("failure")
            metrics.configValid.set(0)
            logger.error("config rejected; keeping the previous config", ["path": .string(path), "error": .string(error.message)])
            return false
        }
    }

    /// Polls until the task is cancelled (without a file, just waits for that).
    public func watch(every interval: Duration) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            check()
        }
    }
}
