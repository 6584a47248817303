import Document
@testable import Injection
import Kubernetes
import Testing

/// Equality that also requires every object's keys in the same order: `==` on JSON ignores
/// order, but uninjection must give back the document exactly as it was written.
func orderedEqual(_ a: JSON, _ b: JSON) -> Bool {
    switch (a, b) {
    case (.object(let x), .object(let y)):
        return x.keys == y.keys && zip(x.values, y.values).allSatisfy(orderedEqual)
    case (.array(let x), .array(let y)):
        return x.count == y.count && zip(x, y).allSatisfy(orderedEqual)
    default:
        return a == b
    }
}

/// Compact text of a value, for failure messages.
func text(_ value: JSON) -> String { JSONWriter.string(value) }

func value(_ root: JSON, _ path: String...) -> JSON? {
    ObjectPath.value(at: path, in: root)
}

enum Fixtures {
    static func container(_ name: String, command: [String]? = nil, ports: [Int] = [], extra: JSON = [:]) -> JSON {
        var object = JSONObject([("name", .string(name)), ("image", .string("example/\(name):1"))])
        if let command { object["command"] = .array(command.map(JSON.string)) }
        if !ports.isEmpty {
            object["ports"] = .array(ports.map { ["containerPort": .integer($0)] })
        }
        for (key, value) in extra.objectValue!.members { object[key] = value }
        return .object(object)
    }

    static func pod(name: String = "web", namespace: String? = "shop", annotations: JSON? = nil,
                    labels: JSON? = nil, spec: JSON) -> JSON {
        var metadata = JSONObject([("name", .string(name))])
        if let namespace { metadata["namespace"] = .string(namespace) }
        if let labels { metadata["labels"] = labels }
        if let annotations { metadata["annotations"] = annotations }
        return ["apiVersion": "v1", "kind": "Pod", "metadata": .object(metadata), "spec": spec]
    }

    static func simplePod(annotations: JSON? = nil, labels: JSON? = nil) -> JSON {
        pod(annotations: annotations, labels: labels,
            spec: ["containers": [container("app", command: ["/app", "--serve"], ports: [8080])]])
    }

    static func deployment(name: String = "web", templateMetadata: JSON? = ["labels": ["app": "web"]],
                           spec: JSON) -> JSON {
        var template = JSONObject()
        if let templateMetadata { template["metadata"] = templateMetadata }
        template["spec"] = spec
        return [
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": ["name": .string(name), "namespace": "shop"],
            "spec": ["replicas": 2, "selector": ["matchLabels": ["app": "web"]], "template": .object(template)],
        ]
    }

    /// Varied templates for round trips: with and without init containers, volumes, annotations,
    /// commands, several containers, odd key orders and nulls.
    static let roundTripInputs: [JSON] = [
        simplePod(),
        pod(spec: ["containers": [container("app")]]),
        pod(annotations: ["team": "payments"], spec: [
            "volumes": [["name": "data", "emptyDir": [:]]],
            "containers": [
                container("app", command: ["/bin/app"], ports: [8080, 9090],
                          extra: ["volumeMounts": [["name": "data", "mountPath": "/data"]]]),
                container("worker", extra: ["args": ["--queue", "jobs"]]),
                container("logger", command: ["tail", "-f", "/data/log"], extra: ["env": [["name": "A", "value": "1"]]]),
            ],
            "initContainers": [container("migrate", command: ["/migrate"])],
            "restartPolicy": "Always",
        ]),
        pod(annotations: [:], labels: ["tandem.io/inject": "enabled"], spec: [
            "initContainers": [],
            "volumes": [],
            "containers": [container("app", command: ["/app"], extra: ["volumeMounts": []])],
        ]),
        pod(annotations: ["kubectl.kubernetes.io/default-container": "sidecar"], spec: [
            "containers": [container("sidecar", ports: [53]), container("app", command: ["/app"])],
            "terminationGracePeriodSeconds": 60,
        ]),
        ["apiVersion": "v1", "kind": "Pod", "metadata": ["generateName": "web-"], "spec": [
            "containers": [container("app", command: ["/app"])], "initContainers": nil, "volumes": nil,
        ], "status": ["phase": "Pending"]],
        ["kind": "Pod", "spec": ["containers": [container("app", command: ["/app"])]]],
        deployment(spec: ["containers": [container("app", command: ["/app"], ports: [8080])]]),
        deployment(templateMetadata: nil, spec: ["containers": [container("app")]]),
        deployment(templateMetadata: ["annotations": nil], spec: [
            "containers": [container("app", command: ["/app"], extra: ["volumeMounts": nil])],
        ]),
        cronJob(spec: ["restartPolicy": "OnFailure", "containers": [container("batch", command: ["/run", "--once"])]]),
        job(spec: ["restartPolicy": "Never", "containers": [container("batch")]]),
        pod(annotations: nil, labels: nil, spec: [
            "containers": [container("app", extra: ["command": [], "args": ["serve"]])],
            "hostNetwork": false, "dnsPolicy": "ClusterFirst",
        ]),
        ["apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": ["name": "db"], "spec": [
            "serviceName": "db",
            "template": ["metadata": ["annotations": ["backup": "daily"], "labels": nil], "spec": [
                "securityContext": ["fsGroup": 999],
                "containers": [container("postgres", command: ["postgres", "-c", "fsync=on"], ports: [5432],
                                         extra: ["volumeMounts": [["name": "pgdata", "mountPath": "/var/lib/postgresql"]]])],
            ]],
            "volumeClaimTemplates": [["metadata": ["name": "pgdata"], "spec": ["accessModes": ["ReadWriteOnce"]]]],
        ]],
        ["apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": ["name": "agent"], "spec": ["template": [
            "spec": ["containers": [
                container("agent", command: ["/agent"], extra: ["readinessProbe": ["httpGet": ["path": "/", "port": "http"]],
                                                                 "ports": [["name": "http", "containerPort": 9100]]]),
                container("reloader", command: ["/reload"]),
            ], "volumes": [["name": "config", "configMap": ["name": "agent"]]]],
        ]]],
    ]

    static func job(spec: JSON) -> JSON {
        ["apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "once"],
         "spec": ["template": ["spec": spec], "backoffLimit": 1]]
    }

    static func cronJob(spec: JSON) -> JSON {
        ["apiVersion": "batch/v1", "kind": "CronJob", "metadata": ["name": "nightly"],
         "spec": ["schedule": "0 3 * * *",
                  "jobTemplate": ["spec": ["template": ["metadata": ["labels": ["job": "nightly"]], "spec": spec]]]]]
    }
}

/// Runs the injector on `object` and returns the report of its only workload.
func injectOne(_ object: JSON, injector: Injector = Injector(), namespace: String? = nil,
               lifecycle: LifecycleMode? = nil, kubeVersion: KubernetesVersion? = nil) throws -> (JSON, WorkloadReport) {
    let report = try injector.inject(object: object, namespace: namespace, lifecycle: lifecycle, kubeVersion: kubeVersion)
    let workload = try #require(report.workloads.first)
    #expect(report.workloads.count == 1)
    return (report.object, workload)
}

/// The error `body` throws, or nil.
func injectionError(_ body: () throws -> Void) -> InjectionError? {
    do {
        try body()
        return nil
    } catch {
        return error as? InjectionError
    }
}

/// A named container of a pod spec (in `containers` or `initContainers`).
func container(_ name: String, in spec: JSON?, list: String = "containers") -> JSON? {
    spec?[list]?.arrayValue?.first { $0["name"]?.stringValue == name }
}

func env(_ name: String, of container: JSON?) -> String? {
    container?["env"]?.arrayValue?.first { $0["name"]?.stringValue == name }?["value"]?.stringValue
}

func names(_ list: JSON?) -> [String] {
    (list?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
}
