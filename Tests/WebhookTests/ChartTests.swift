import Document
import Injection
import Testing
import TestSupport
import Webhook

/// The chart, the plain manifests and the binary agree on the injection defaults.
struct ChartTests {
    static let root = SharedFixtures.repositoryRoot

    /// The `proxy:` and `injection:` blocks of a values document.
    static func injectionBlocks(_ values: JSON) -> JSON {
        .object(JSONObject([("proxy", values["proxy"] ?? .null), ("injection", values["injection"] ?? .null)]))
    }

    static func chartValues() throws -> JSON {
        try YAMLReader.read(readFile(root + "/Charts/tandem/values.yaml")).first!.value
    }

    @Test func chartDefaultsEqualTheBuiltInDefaults() throws {
        // The whole file is a valid config: `tandem inject --config` and the webhook read it as is.
        let config = try ConfigFile.parse(readFile(Self.root + "/Charts/tandem/values.yaml"), path: "values.yaml")
        #expect(config == InjectionConfig.defaults)
        #expect(try Self.chartValues().objectValue?.keys == ["proxy", "injection"])
    }

    @Test func plainManifestsCarryTheSameConfig() throws {
        let configMap = try YAMLReader.read(readFile(Self.root + "/Manifests/install/03-configmap.yaml")).first!.value
        let text = try #require(configMap["data"]?["values.yaml"]?.stringValue)
        let config = try ConfigFile.parse(Array(text.utf8), path: "03-configmap.yaml")
        #expect(config == InjectionConfig.defaults)
        let values = try YAMLReader.read(text).first!.value
        let chart = Self.injectionBlocks(try Self.chartValues())
        #expect(values == chart, "the ConfigMap and the chart name the same settings")
    }
}

/// The kill-switch command the README gives, run offline by kubectl on the real ConfigMap.
struct KillSwitchCommandTests {
    @Test(.enabled(if: hasProgram("kubectl"))) func readmeCommandTurnsInjectionOff() throws {
        let readme = String(decoding: try readFile(ChartTests.root + "/Manifests/README.md"), as: UTF8.self)
        let line = try #require(readme.split(separator: "\n").first { $0.hasPrefix("kubectl -n tandem-system patch configmap tandem-config") })
        let patch = try #require(line.split(separator: "'").dropFirst().first.map(String.init))
        let run = try runProcess(["kubectl", "patch", "--local", "-f", ChartTests.root + "/Manifests/install/03-configmap.yaml",
                                  "--type", "merge", "-p", patch, "-o", "json"])
        #expect(run.status == 0, Comment(rawValue: run.error))
        let configMap = try JSONReader.parse(run.output)
        let values = try #require(configMap["data"]?["values.yaml"]?.stringValue)
        let config = try ConfigFile.parse(Array(values.utf8), path: "values.yaml")
        #expect(config.injection.enabled == false)
        var expected = InjectionConfig.defaults
        expected.injection.enabled = false
        #expect(config == expected)
    }
}
