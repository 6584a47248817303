import Foundation
import Injection
import Telemetry
import Testing
import TestSupport
@testable import Webhook

struct ConfigWatcherTests {
    static func watcher(_ text: String) throws -> (ConfigWatcher, MountedFolder, WebhookMetrics, LogLines) {
        let folder = try MountedFolder(path: NSTemporaryDirectory() + "tandem-config-\(UUID().uuidString)")
        try folder.publish(["values.yaml": Array(text.utf8)], version: "1")
        let metrics = WebhookMetrics(build: [("version", "test")])
        let logs = LogLines()
        let watcher = try ConfigWatcher(path: folder.path + "/values.yaml", logger: Logger(sink: logs), metrics: metrics)
        return (watcher, folder, metrics, logs)
    }

    @Test func appliesAChangedFileWhole() throws {
        let (watcher, folder, metrics, logs) = try Self.watcher("injection:\n  mode: legacy\n")
        defer { try? FileManager.default.removeItem(atPath: folder.path) }
        #expect(watcher.injector.config.injection.mode == .legacy)
        #expect(!watcher.check(), "unchanged")
        try folder.publish(["values.yaml": Array("injection:\n  enabled: false\n".utf8)], version: "2")
        #expect(watcher.check())
        #expect(watcher.injector.config.injection.enabled == false)
        #expect(watcher.injector.config.injection.mode == .auto, "a new file replaces the old one, it is not merged")
        #expect(metrics.injectionEnabled.value() == 0)
        #expect(metrics.configReloads.value("success") == 1)
        #expect(logs.messages == ["config reloaded"])
    }

    @Test func keepsThePreviousConfigWhenTheNewOneIsInvalidAndSaysSoOnce() throws {
        let (watcher, folder, metrics, logs) = try Self.watcher("proxy:\n  drainSeconds: 5\n")
        defer { try? FileManager.default.removeItem(atPath: folder.path) }
        try folder.publish(["values.yaml": Array("proxy:\n  drainSeconds: 5\n  adminPort: 15021\n".utf8)], version: "2")
        #expect(!watcher.check())
        #expect(!watcher.check())
        #expect(watcher.injector.config.proxy.drainSeconds == 5)
        #expect(watcher.injector.config.proxy.adminPort == 15000)
        #expect(metrics.configReloads.value("failure") == 1)
        #expect(metrics.configValid.value() == 0)
        #expect(logs.all.map { $0["error"]?.stringValue } == ["config \(folder.path)/values.yaml:2:3: proxy.healthPort: must differ from proxy.adminPort (15021)"])

        // Put back as it was: valid again, nothing to apply.
        try folder.publish(["values.yaml": Array("proxy:\n  drainSeconds: 5\n".utf8)], version: "3")
        #expect(!watcher.check())
        #expect(metrics.configValid.value() == 1)
    }

    @Test func aVanishedFileKeepsTheConfig() throws {
        let (watcher, folder, metrics, _) = try Self.watcher("injection:\n  enabled: false\n")
        try FileManager.default.removeItem(atPath: folder.path)
        #expect(!watcher.check())
        #expect(watcher.injector.config.injection.enabled == false)
        #expect(metrics.configReloads.value("failure") == 1)
    }

    @Test func aBadFileAtStartIsAnError() throws {
        let folder = try MountedFolder(path: NSTemporaryDirectory() + "tandem-config-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: folder.path) }
        try folder.publish(["values.yaml": Array("injection: [\n".utf8)], version: "1")
        #expect(throws: ConfigError.self) {
            try ConfigWatcher(path: folder.path + "/values.yaml", logger: Logger(sink: LogLines()), metrics: WebhookMetrics(build: [("version", "t")]))
        }
    }
}

struct ServerLimitsTests {
    @Test func bodiesAreCappedAndSlowClientsTimedOut() throws {
        let options = WebhookOptions(certificateFile: "c", keyFile: "k")
        let configuration = WebhookServer.serverConfiguration(options, tls: nil)
        #expect(configuration.limits.maxBodyBytes == Admission.maxBodyBytes)
        #expect(configuration.headerReadTimeout == .seconds(5))
        #expect(configuration.bodyReadTimeout == .seconds(10))
        #expect(configuration.writeTimeout == .seconds(10))
        #expect(options.reloadInterval == .seconds(2), "the kill switch applies within seconds")
    }
}
