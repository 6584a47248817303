import Document
@testable import Injection
import Kubernetes
import Testing

@Suite struct PodValidationTests {
    @Test func acceptsAPlainPod() {
        #expect(PodValidation.problems(in: ["containers": [Fixtures.container("app", ports: [8080])]]) == [])
    }

    @Test(arguments: [
        (["containers": []], ["spec.containers is empty"]),
        ([:], ["spec.containers is missing"]),
        (["containers": "app"], ["spec.containers is a string, not an array"]),
        (["containers": [["image": "x"]]], ["containers[0] has no name"]),
        (["containers": [["name": "a"]]], ["container \"a\" has no image"]),
        (["containers": [Fixtures.container("a")], "initContainers": [Fixtures.container("a")]],
         ["container name \"a\" is used twice"]),
        (["volumes": [["name": "v"], ["name": "v"]], "containers": [Fixtures.container("a")]], ["volume name \"v\" is used twice"]),
        (["containers": [Fixtures.container("a", extra: ["volumeMounts": [["name": "data", "mountPath": "/d"]]])]],
         ["container \"a\": volumeMount \"data\" refers to no volume"]),
        (["volumes": [["name": "v"]], "containers": [Fixtures.container("a", extra: [
            "volumeMounts": [["name": "v", "mountPath": "/d"], ["name": "v", "mountPath": "/d"]]])]],
         ["container \"a\": mountPath /d is used twice"]),
        (["containers": [Fixtures.container("a", ports: [8080]), Fixtures.container("b", ports: [8080])]],
         ["container \"b\": port 8080/TCP is also declared by container \"a\""]),
        (["containers": [Fixtures.container("a", extra: ["ports": [["name": "http", "containerPort": 80], ["name": "http", "containerPort": 81]]])]],
         ["container \"a\": port name \"http\" is used twice"]),
        (["containers": [Fixtures.container("a", extra: ["ports": [["name": "Much-Too-Long-Name", "containerPort": 80]]])]],
         ["container \"a\": port name \"Much-Too-Long-Name\" is not a valid port name"]),
        (["containers": [Fixtures.container("a", extra: ["ports": [["containerPort": 0]]])]],
         ["container \"a\": a port has no containerPort 1-65535"]),
        (["containers": [Fixtures.container("a", extra: ["readinessProbe": ["httpGet": ["path": "/", "port": "http"]]])]],
         ["container \"a\": readinessProbe uses port \"http\", which is not declared"]),
        (["containers": [Fixtures.container("a", extra: ["livenessProbe": ["tcpSocket": ["port": 70000]]])]],
         ["container \"a\": livenessProbe port 70000 is not 1-65535"]),
        (["containers": [Fixtures.container("a", extra: ["restartPolicy": "Always"])]],
         ["container \"a\": restartPolicy is only allowed on init containers"]),
        (["containers": [Fixtures.container("a")], "initContainers": [Fixtures.container("i", extra: ["restartPolicy": "Never"])]],
         ["container \"i\": restartPolicy must be Always, not \"Never\""]),
        (["containers": [Fixtures.container("a")], "initContainers": [Fixtures.container("i", extra: ["startupProbe": ["exec": ["command": ["true"]]]])]],
         ["container \"i\": probes and lifecycle hooks are only allowed on sidecar init containers"]),
        (["containers": [Fixtures.container("a", extra: ["lifecycle": ["preStop": [:]]])]],
         ["container \"a\": preStop must have exactly one action"]),
        (["containers": [Fixtures.container("a", extra: ["lifecycle": ["postStart": ["exec": ["command": []]]]])]],
         ["container \"a\": postStart exec command must be a non-empty list of strings"]),
        (["containers": [Fixtures.container("a", extra: ["lifecycle": ["preStop": ["sleep": ["seconds": "5"]]]])]],
         ["container \"a\": preStop sleep seconds must be a whole number"]),
        (["containers": [Fixtures.container("a", extra: ["env": [["value": "1"]]])]], ["container \"a\": an env var has no name"]),
    ] as [(JSON, [String])])
    func findsProblems(spec: JSON, expected: [String]) {
        #expect(PodValidation.problems(in: spec) == expected)
    }

    @Test func plainInitContainersMayReusePorts() {
        let spec: JSON = ["initContainers": [Fixtures.container("i", ports: [8080])], "containers": [Fixtures.container("a", ports: [8080])]]
        #expect(PodValidation.problems(in: spec) == [])
    }

    @Test func injectionRefusesToBreakAPod() {
        let clash = Fixtures.pod(spec: ["containers": [Fixtures.container("app", ports: [15021])]])
        #expect(injectionError { _ = try Injector().inject(object: clash) } == InjectionError(
            pointer: ["spec"],
            message: "injecting would make an invalid pod: container \"app\": port 15021/TCP is also declared by container \"tandem-proxy\""))

        let mount = Fixtures.pod(spec: [
            "volumes": [["name": "tools", "emptyDir": [:]]],
            "containers": [Fixtures.container("app", command: ["/app"], extra: ["volumeMounts": [["name": "tools", "mountPath": "/tandem/bin"]]])],
        ])
        #expect(injectionError { _ = try Injector().inject(object: mount, lifecycle: .legacy) }?.message
            == "injecting would make an invalid pod: container \"app\": mountPath /tandem/bin is used twice")
        #expect(injectionError { _ = try Injector().inject(object: mount, lifecycle: .native) } == nil)
    }

    /// A vetted container is spared only the checks of its own fields: where it meets the pod
    /// (names, ports, volumes) it is checked like any other. One with problems of its own is
    /// never vetted.
    @Test func vettedContainersAreStillCheckedAgainstThePod() throws {
        let sidecar = JSONObject([
            ("name", "side"), ("image", "x"), ("ports", [["containerPort": 9000]]),
            ("volumeMounts", [["name": "shared", "mountPath": "/s"]]), ("env", [["value": "unnamed"]]),
        ])
        #expect(PodValidation.VettedContainer(sidecar, isInit: false) == nil)
        var sound = sidecar
        sound["env"] = Optional<JSON>.none
        let vetted = try #require(PodValidation.VettedContainer(sound, isInit: false))
        let spec: JSON = ["containers": [.object(sound), Fixtures.container("app", ports: [9000]), .object(sound)]]
        #expect(PodValidation.problems(in: spec, vetted: [vetted]) == [
            "container \"side\": volumeMount \"shared\" refers to no volume",
            "container \"app\": port 9000/TCP is also declared by container \"side\"",
            "container name \"side\" is used twice",
            "container \"side\": port 9000/TCP is also declared by container \"side\"",
            "container \"side\": volumeMount \"shared\" refers to no volume",
        ])
    }

    /// A container left where it was, the same buffer, is checked only against the pod: its own
    /// problems were there before. So are the fields a moved or edited container kept from its
    /// earlier self of the same name (legacy mode moves every app container and changes only its
    /// mounts and command); what it changed is checked, and in another list it is checked in full.
    @Test func unchangedContainersAreCheckedOnlyAgainstThePod() throws {
        let broken = Fixtures.container("app", ports: [8080], extra: ["env": [["value": "unnamed"]]])
        let before: JSON = ["containers": [broken]]
        let own = "container \"app\": an env var has no name"
        #expect(PodValidation.problems(in: before) == [own])
        #expect(PodValidation.problems(in: before, unchangedSince: before) == [])
        let clash: JSON = ["containers": [broken, Fixtures.container("b", ports: [8080])]]
        #expect(PodValidation.problems(in: clash, unchangedSince: before)
            == ["container \"b\": port 8080/TCP is also declared by container \"app\""])
        let moved: JSON = ["containers": [Fixtures.container("first"), broken]]
        #expect(PodValidation.problems(in: moved, unchangedSince: before) == [])
        var edited = try #require(broken.objectValue)
        edited["image"] = "other"
        #expect(PodValidation.problems(in: ["containers": [Fixtures.container("first"), .object(edited)]], unchangedSince: before) == [])
        edited["env"] = [["value": "still unnamed"]]
        #expect(PodValidation.problems(in: ["containers": [.object(edited)]], unchangedSince: before) == [own])
        #expect(PodValidation.problems(in: ["initContainers": [broken], "containers": [Fixtures.container("a")]], unchangedSince: before)
            == [own])
    }

    /// Of an edited container, each field the checks read is checked again when the edit changed
    /// it, and only then: the app's own unnamed env var, kept, is never reported.
    @Test func eachEditedFieldIsCheckedAgain() throws {
        let app = Fixtures.container("app", ports: [8080], extra: ["env": [["value": "unnamed"]]])
        let before: JSON = ["volumes": [["name": "v"]], "containers": [app]]
        let edits: [(key: String, value: JSON, problem: String)] = [
            ("image", "", "container \"app\" has no image"),
            ("restartPolicy", "Always", "container \"app\": restartPolicy is only allowed on init containers"),
            ("ports", [["containerPort": 8080, "name": "Bad_Name"]], "container \"app\": port name \"Bad_Name\" is not a valid port name"),
            ("lifecycle", ["preStop": [:]], "container \"app\": preStop must have exactly one action"),
            ("readinessProbe", ["tcpSocket": ["port": "nope"]], "container \"app\": readinessProbe uses port \"nope\", which is not declared"),
            ("livenessProbe", ["tcpSocket": ["port": "nope"]], "container \"app\": livenessProbe uses port \"nope\", which is not declared"),
            ("startupProbe", ["tcpSocket": ["port": "nope"]], "container \"app\": startupProbe uses port \"nope\", which is not declared"),
            ("volumeMounts", [["name": "v", "mountPath": "/d"], ["name": "v", "mountPath": "/d"]], "container \"app\": mountPath /d is used twice"),
            ("env", [["value": "other"]], "container \"app\": an env var has no name"),
        ]
        for (key, value, problem) in edits {
            var edited = try #require(app.objectValue)
            edited[key] = value
            let after: JSON = ["volumes": [["name": "v"]], "containers": [.object(edited)]]
            #expect(PodValidation.problems(in: after, unchangedSince: before) == [problem], "\(key)")
        }
    }

    @Test func ownProblemsAnAppHadBeforeDoNotStopInjection() throws {
        let pod = Fixtures.pod(spec: ["containers": [Fixtures.container("app", command: ["/app"], extra: ["env": [["value": "x"]]])]])
        for mode in [LifecycleMode.native, .legacy] {
            let report = try Injector().inject(object: pod, lifecycle: mode)
            #expect(report.workloads.first?.reason == .injected)
        }
    }

    @Test func theInjectedProxyStillClashesWithTheSidecarsBeforeIt() {
        let pod = Fixtures.pod(spec: [
            "initContainers": [Fixtures.container("agent", ports: [15021], extra: ["restartPolicy": "Always"])],
            "containers": [Fixtures.container("app", command: ["/app"])],
        ])
        #expect(injectionError { _ = try Injector().inject(object: pod, lifecycle: .legacy) }?.message
            == "injecting would make an invalid pod: container \"tandem-proxy\": port 15021/TCP is also declared by container \"agent\"")
    }

    @Test func alreadyBrokenPodsAreNotBlamedOnInjection() throws {
        let broken = Fixtures.pod(spec: ["containers": [Fixtures.container("app", extra: ["volumeMounts": [["name": "gone", "mountPath": "/x"]]])]])
        let (_, report) = try injectOne(broken)
        #expect(report.reason == .injected)
    }

    @Test(arguments: [("containers", "tandem-proxy"), ("initContainers", "tandem-init"), ("volumes", "tandem-bin")])
    func reservedNamesWithoutAStatusAreErrors(list: String, name: String) {
        var spec = JSONObject([("containers", [Fixtures.container("app")])])
        spec[list] = .array((spec[list]?.arrayValue ?? []) + [["name": .string(name), "image": "x"]])
        let index = list == "containers" ? 1 : 0
        let pod = Fixtures.pod(spec: .object(spec))
        #expect(injectionError { _ = try Injector().inject(object: pod) } == InjectionError(
            pointer: ["spec", list, String(index), "name"],
            message: "spec.\(list)[\(index)] is named \(name), which tandem reserves, but no tandem.io/status annotation records it"))
    }

    /// Found by Hack/fuzz/run documents: with two containers named alike, uninject put the wrapped
    /// command back into the first of them, so uninject(inject(x)) was not x.
    @Test func containersNamedAlikeAreErrors() {
        let twice = Fixtures.pod(spec: ["containers": [Fixtures.container("report"), Fixtures.container("report", command: ["/report"])]])
        #expect(injectionError { _ = try Injector().inject(object: twice, lifecycle: .legacy) } == InjectionError(
            pointer: ["spec", "containers", "1", "name"],
            message: "spec.containers[1] is named report, as is spec.containers[0]: container names must be unique"))
        let acrossLists = Fixtures.pod(spec: ["initContainers": [Fixtures.container("setup")], "containers": [Fixtures.container("setup")]])
        #expect(injectionError { _ = try Injector().inject(object: acrossLists) } == InjectionError(
            pointer: ["spec", "containers", "0", "name"],
            message: "spec.containers[0] is named setup, as is spec.initContainers[0]: container names must be unique"))
    }

    @Test func wrongShapesAreErrors() {
        let pod = Fixtures.pod(spec: ["containers": [Fixtures.container("app")], "initContainers": "none"])
        #expect(injectionError { _ = try Injector().inject(object: pod) }
            == InjectionError(pointer: ["spec", "initContainers"], message: "spec.initContainers must be an array, not a string"))
        let annotations: JSON = ["kind": "Pod", "metadata": ["annotations": "x"], "spec": ["containers": [Fixtures.container("app")]]]
        #expect(injectionError { _ = try Injector().inject(object: annotations) }
            == InjectionError(pointer: ["metadata", "annotations"], message: "metadata.annotations must be an object, not a string"))
    }

    /// Where the additions are proven sound without checking the pod, the full check of the
    /// injected pod finds no problem the pod did not have: over pods whose ports, names, volumes,
    /// mounts and hooks meet what each mode adds in every way, for every plan shape.
    @Test func provenAdditionsAddNoProblemTheFullCheckFinds() throws {
        var native = InjectionConfig.defaults.proxy
        native.drainDelaySeconds = 5
        let plans = [
            ProxyPlan(mode: .legacy, proxy: .init(InjectionConfig.defaults.proxy), binaryMountPath: "/tandem/bin",
                      inboundPorts: [8080], excludeInboundPorts: [], excludeOutboundPorts: []),
            ProxyPlan(mode: .native, proxy: .init(InjectionConfig.defaults.proxy), binaryMountPath: "/tandem/bin",
                      inboundPorts: [], excludeInboundPorts: [], excludeOutboundPorts: []),
            ProxyPlan(mode: .native, proxy: .init(native), binaryMountPath: "/tandem/bin",
                      inboundPorts: [], excludeInboundPorts: [], excludeOutboundPorts: []),
        ]
        let ports: [JSON?] = [nil, [["containerPort": 8080]], [["containerPort": 15021]], [["containerPort": 15021, "protocol": "UDP"]],
                              [["containerPort": 8080, "name": "http"], ["containerPort": 8080]]]
        let mounts: [JSON?] = [nil, .null, [["name": "data", "mountPath": "/data"]], [["name": "data", "mountPath": "/tandem/bin"]],
                               [["name": "tandem-bin", "mountPath": "/elsewhere"]], [["name": "gone", "mountPath": "/data"]]]
        let names: [JSON?] = ["app", "tandem-proxy", "tandem-init", "", nil, 7]
        let lifecycles: [JSON?] = [nil, .null, ["preStop": ["exec": ["command": ["/drain"]]]], ["postStart": [:]]]
        let inits: [JSON?] = [
            nil, .null, [],
            [["name": "setup", "image": "x", "ports": [["containerPort": 15021]]]],
            [["name": "mesh", "image": "x", "restartPolicy": "Always", "ports": [["containerPort": 15021]]]],
            [["name": "mesh", "image": "x", "restartPolicy": "Always", "ports": [["containerPort": 9000]]]],
            [["image": "x"]], ["not an object"], [["name": "tandem-init", "image": "x"]],
        ]
        let volumes: [JSON?] = [nil, .null, [["name": "data"]], [["name": "tandem-bin"]], [["emptyDir": [:]]], [["name": "data"], ["name": "data"]]]
        let counts = [ports.count, mounts.count, names.count, lifecycles.count, inits.count, volumes.count, 2]
        var proven = 0
        var refused = 0
        for plan in plans {
            let artifacts = ProxyArtifacts(plan)
            let additions = try #require(artifacts.additions)
            // Every 13th of the 77,760 pods, a spread over all choices that a debug build checks quickly.
            for case var choice in stride(from: 0, to: counts.reduce(1, *), by: 13) {
                var pick: [Int] = []
                for count in counts {
                    pick.append(choice % count)
                    choice /= count
                }
                var app = JSONObject([("image", "example/app:1"), ("command", ["/app"])])
                app["name"] = names[pick[2]]
                app["ports"] = ports[pick[0]]
                app["volumeMounts"] = mounts[pick[1]]
                app["lifecycle"] = lifecycles[pick[3]]
                var spec = JSONObject([("containers", pick[6] == 0 ? [.object(app)] : [.object(app), Fixtures.container("other", command: ["/o"], ports: [9000])])])
                spec["initContainers"] = inits[pick[4]]
                spec["volumes"] = volumes[pick[5]]
                let before = JSONObject([("metadata", ["name": "web"]), ("spec", .object(spec))])
                var after = before
                guard (try? TemplateEditor.inject(plan, artifacts, entrypoint: nil, into: &after)) != nil else { continue }
                let old = Set(PodValidation.problems(in: .object(spec)))
                let new = PodValidation.problems(in: after["spec"] ?? .null).filter { !old.contains($0) }
                if additions.areSound(in: Injector.PodSurvey(spec)) {
                    proven += 1
                    #expect(new == [], "\(text(.object(spec))) in \(plan.mode)")
                } else if !new.isEmpty {
                    refused += 1
                }
            }
        }
        // Both sides are reached: thousands of pods are proven, and thousands the injection harms are not.
        #expect(proven > 1000)
        #expect(refused > 1000)
    }

    /// Additions that could clash among themselves, or a volume mounted nowhere, spare no pod its check.
    @Test func additionsThatCouldClashAreNotProven() throws {
        let plan = ProxyPlan(mode: .legacy, proxy: .init(InjectionConfig.defaults.proxy), binaryMountPath: "/tandem/bin",
                             inboundPorts: [], excludeInboundPorts: [], excludeOutboundPorts: [])
        let artifacts = ProxyArtifacts(plan)
        let vetted = artifacts.vetted
        #expect(PodValidation.Additions(vetted, of: 2, volume: TandemNames.binaryVolume, mountPath: "/tandem/bin") != nil)
        #expect(PodValidation.Additions(vetted, of: 3, volume: TandemNames.binaryVolume, mountPath: "/tandem/bin") == nil)
        #expect(PodValidation.Additions(vetted, of: 2, volume: TandemNames.binaryVolume, mountPath: "") == nil)
        #expect(PodValidation.Additions(vetted, of: 2, volume: "other", mountPath: "/tandem/bin") == nil)
        #expect(PodValidation.Additions(vetted + vetted, of: 4, volume: TandemNames.binaryVolume, mountPath: "/tandem/bin") == nil)
    }

    /// A port an added container claims may clash whoever declares it: an init container, or an
    /// app container under another protocol (which the proxy's default inbound ports leave out).
    @Test func additionsMeetPortsOfEveryContainerAndProtocol() throws {
        let plan = ProxyPlan(mode: .legacy, proxy: .init(InjectionConfig.defaults.proxy), binaryMountPath: "/tandem/bin",
                             inboundPorts: [], excludeInboundPorts: [], excludeOutboundPorts: [])
        let additions = try #require(ProxyArtifacts(plan).additions)
        let health = plan.proxy.healthPort
        let app = Fixtures.container("app", ports: [8080])
        #expect(additions.areSound(in: Injector.PodSurvey(JSONObject([("containers", [app])]))))
        let udp = Fixtures.container("dns", extra: ["ports": [["containerPort": .integer(health), "protocol": "UDP"]]])
        #expect(!additions.areSound(in: Injector.PodSurvey(JSONObject([("containers", [app, udp])]))))
        let setup = Fixtures.container("setup", ports: [health])
        #expect(!additions.areSound(in: Injector.PodSurvey(JSONObject([("initContainers", [setup]), ("containers", [app])]))))
        let unnamed: JSON = ["image": "example/unnamed:1"]
        #expect(!additions.areSound(in: Injector.PodSurvey(JSONObject([("containers", [app, unnamed])]))))
    }

    /// Paths compare as the full check compares them, by canonical equivalence: a mount at a path
    /// spelt with a Kelvin sign is a mount at the binary's path spelt with a K.
    @Test func additionsMeetCanonicallyEquivalentPaths() throws {
        let plan = ProxyPlan(mode: .legacy, proxy: .init(InjectionConfig.defaults.proxy), binaryMountPath: "/K",
                             inboundPorts: [], excludeInboundPorts: [], excludeOutboundPorts: [])
        let additions = try #require(ProxyArtifacts(plan).additions)
        let spec = JSONObject([
            ("volumes", [["name": "data"]]),
            ("containers", [Fixtures.container("app", extra: ["volumeMounts": [["name": "data", "mountPath": "/\u{212A}"]]])]),
        ])
        #expect(!additions.areSound(in: Injector.PodSurvey(spec)))
        let pod = Fixtures.pod(spec: .object(spec))
        var config = InjectionConfig()
        config.injection.binaryMountPath = "/K"
        #expect(injectionError { _ = try Injector(config: config).inject(object: pod, lifecycle: .legacy) }?.message
            == "injecting would make an invalid pod: container \"app\": mountPath /K is used twice")
    }
}
