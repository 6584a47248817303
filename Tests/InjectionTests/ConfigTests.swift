import Document
@testable import Injection
import Kubernetes
import Testing

@Suite struct ConfigTests {
    @Test func defaults() throws {
        let config = InjectionConfig.defaults
        #expect(config.proxy.image == "ghcr.io/tandem-mesh/tandem:0.1.0")
        #expect(config.proxy.imagePullPolicy == "IfNotPresent")
        #expect(config.proxy.adminPort == 15000)
        #expect(config.proxy.healthPort == 15021)
        #expect(config.proxy.uid == 2102)
        #expect(config.proxy.logLevel == .info)
        #expect(config.proxy.drainSeconds == 30)
        #expect(config.proxy.drainDelaySeconds == 0)
        #expect(config.proxy.startTimeoutSeconds == 120)
        #expect(config.proxy.resources.json == ["requests": ["cpu": "50m", "memory": "64Mi"], "limits": ["cpu": "1", "memory": "256Mi"]])
        #expect(config.injection.enabled)
        #expect(config.injection.mode == .auto)
        #expect(config.injection.excludedNamespaces == ["kube-system", "kube-public", "kube-node-lease"])
        #expect(config.injection.binaryMountPath == "/tandem/bin")
        #expect(try InjectionConfig(values: nil) == config)
        #expect(try InjectionConfig(values: [:]) == config)
    }

    @Test func overrides() throws {
        let config = try InjectionConfig(values: [
            "proxy": [
                "image": "registry.local/tandem:dev", "imagePullPolicy": "Always", "adminPort": 9901,
                "healthPort": 9902, "uid": 1337, "logLevel": "debug", "drainSeconds": 45,
                "drainDelaySeconds": 5, "startTimeoutSeconds": 60,
                "resources": ["requests": ["cpu": 1, "memory": "32Mi"], "limits": ["cpu": nil]],
            ],
            "injection": [
                "enabled": false, "mode": "legacy", "excludedNamespaces": ["ops"], "binaryMountPath": "/opt/tandem",
            ],
        ])
        #expect(config.proxy.image == "registry.local/tandem:dev")
        #expect(config.proxy.imagePullPolicy == "Always")
        #expect(config.proxy.adminPort == 9901)
        #expect(config.proxy.healthPort == 9902)
        #expect(config.proxy.uid == 1337)
        #expect(config.proxy.logLevel == .debug)
        #expect(config.proxy.drainSeconds == 45)
        #expect(config.proxy.drainDelaySeconds == 5)
        #expect(config.proxy.startTimeoutSeconds == 60)
        #expect(config.proxy.resources.json == ["requests": ["cpu": "1", "memory": "32Mi"], "limits": ["memory": "256Mi"]])
        #expect(!config.injection.enabled)
        #expect(config.injection.mode == .legacy)
        #expect(config.injection.excludedNamespaces == ["ops"])
        #expect(config.injection.binaryMountPath == "/opt/tandem")
    }

    @Test(arguments: [
        (["proxy": ["adminPort": "abc"]], ["proxy", "adminPort"], "proxy.adminPort: expected an integer 1-65535, got \"abc\""),
        (["proxy": ["healthPort": 70000]], ["proxy", "healthPort"], "proxy.healthPort: expected an integer 1-65535, got 70000"),
        (["proxy": ["adminport": 1]], ["proxy", "adminport"], "proxy.adminport: unknown setting"),
        (["webhook": ["replicas": 2]], ["webhook"], "webhook: unknown setting"),
        (["proxy": "big"], ["proxy"], "proxy: expected an object, got \"big\""),
        (["proxy": ["image": ""]], ["proxy", "image"], "proxy.image: expected an image reference, got \"\""),
        (["proxy": ["imagePullPolicy": "Sometimes"]], ["proxy", "imagePullPolicy"],
         "proxy.imagePullPolicy: expected one of Always, IfNotPresent, Never, got \"Sometimes\""),
        (["proxy": ["uid": 0]], ["proxy", "uid"], "proxy.uid: expected an integer 1-2147483647, got 0"),
        (["proxy": ["logLevel": "loud"]], ["proxy", "logLevel"],
         "proxy.logLevel: expected one of trace, debug, info, warn, error, got \"loud\""),
        (["proxy": ["drainSeconds": .number("1.5")]], ["proxy", "drainSeconds"], "proxy.drainSeconds: expected an integer 0-86400, got 1.5"),
        (["proxy": ["drainDelaySeconds": -1]], ["proxy", "drainDelaySeconds"],
         "proxy.drainDelaySeconds: expected an integer 0-86400, got -1"),
        (["proxy": ["startTimeoutSeconds": 0]], ["proxy", "startTimeoutSeconds"],
         "proxy.startTimeoutSeconds: expected an integer 1-86400, got 0"),
        (["proxy": ["resources": ["limits": ["cpu": "lots"]]]], ["proxy", "resources", "limits", "cpu"],
         "proxy.resources.limits.cpu: expected a Kubernetes quantity, got \"lots\""),
        (["proxy": ["resources": ["limits": ["gpu": "1"]]]], ["proxy", "resources", "limits", "gpu"],
         "proxy.resources.limits.gpu: unknown setting"),
        (["proxy": ["resources": ["spare": [:]]]], ["proxy", "resources", "spare"], "proxy.resources.spare: unknown setting"),
        (["proxy": ["resources": ["requests": ["cpu": "2"]]]], ["proxy", "resources"],
         "proxy.resources: proxy cpu request 2 exceeds its limit 1"),
        (["proxy": ["healthPort": 15000]], ["proxy", "healthPort"], "proxy.healthPort: must differ from proxy.adminPort (15000)"),
        (["injection": ["enabled": "yes"]], ["injection", "enabled"], "injection.enabled: expected a boolean, got \"yes\""),
        (["injection": ["mode": "fast"]], ["injection", "mode"], "injection.mode: expected one of auto, native, legacy, got \"fast\""),
        (["injection": ["excludedNamespaces": "kube-system"]], ["injection", "excludedNamespaces"],
         "injection.excludedNamespaces: expected an array of namespace names, got \"kube-system\""),
        (["injection": ["excludedNamespaces": ["a", 3]]], ["injection", "excludedNamespaces", "1"],
         "injection.excludedNamespaces.1: expected a namespace name, got 3"),
        (["injection": ["binaryMountPath": "tandem"]], ["injection", "binaryMountPath"],
         "injection.binaryMountPath: expected an absolute path, got \"tandem\""),
    ] as [(JSON, [String], String)])
    func errorsNameThePath(values: JSON, pointer: [String], message: String) {
        let error = injectionError { _ = try InjectionConfig(values: values) }
        #expect(error == InjectionError(pointer: pointer, message: message))
    }
}
