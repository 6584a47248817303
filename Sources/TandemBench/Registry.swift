/// Every benchmark by name; each file adds its entry here.
let benchmarks: [String: @Sendable ([String]) -> Void] = [
    "admission": admissionBenchmark,
    "inject-phases": injectPhasesBenchmark,
    "inject-pod": injectPodBenchmark,
    "json": runJSONBenchmark,
    "yaml-parse": yamlParseBenchmark,
]
