// Tandem's JSON reader and writer against Foundation's JSONSerialization on real pods.
import Document
import Foundation

/// `json [--fixtures DIR] [--iterations N] [--rounds N]`: parse+write each pod about N times per
/// round (fewer for larger pods) with both codecs and print the median time per document and the
/// speedup.
@Sendable func runJSONBenchmark(_ arguments: [String]) {
    var fixtures = ProcessInfo.processInfo.environment["TANDEM_FIXTURES"] ?? "/work/shared/fixtures"
    var iterations = 2000
    var rounds = 7
    var remaining = arguments[...]
    while let flag = remaining.popFirst() {
        guard let value = remaining.popFirst() else { fatalError("\(flag) needs a value") }
        switch flag {
        case "--fixtures": fixtures = value
        case "--iterations": iterations = Int(value) ?? iterations
        case "--rounds": rounds = Int(value) ?? rounds
        default: fatalError("unknown option \(flag)")
        }
    }
    let inputs = [
        "kube-apiserver-1.28.4/admission-requests/a-pod-create-two-containers.request.json",
        "kube-apiserver-1.28.4/admission-responses/00-success-jsonpatch-inject-container/stored-ck-00-success-jsonpatch-inject-container.json",
        "kube-apiserver-1.28.4/admission-requests/f-pod-create-1500-env.request.json",
    ]
    var sink = 0
    for input in inputs {
        guard let data = FileManager.default.contents(atPath: fixtures + "/" + input) else {
            fatalError("cannot read \(fixtures)/\(input)")
        }
        let bytes = [UInt8](data)
        let iterations = max(1, iterations * 6000 / bytes.count)
        let tandem = medianNanoseconds(rounds: rounds, iterations: iterations) {
            let value = try! JSONReader.parse(bytes)
            sink &+= JSONWriter.write(value).count
        }
        let tandemParse = medianNanoseconds(rounds: rounds, iterations: iterations) {
            if case .object(let object) = try! JSONReader.parse(bytes) { sink &+= object.count }
        }
        let parsed = try! JSONReader.parse(bytes)
        let tandemWrite = medianNanoseconds(rounds: rounds, iterations: iterations) {
            sink &+= JSONWriter.write(parsed).count
        }
        let foundation = medianNanoseconds(rounds: rounds, iterations: max(1, iterations / 4)) {
            let object = try! JSONSerialization.jsonObject(with: data)
            sink &+= try! JSONSerialization.data(withJSONObject: object).count
        }
        let name = input.split(separator: "/").last!
        print("\(name) (\(bytes.count) bytes), parse+write, median of \(rounds) rounds:")
        print("  tandem      \(describe(tandem, bytes: bytes.count))  (parse \(format(tandemParse / 1000)) µs, write \(format(tandemWrite / 1000)) µs)")
        print("  foundation  \(describe(foundation, bytes: bytes.count))")
        print("  ratio       \(format(foundation / tandem))x faster than Foundation")
    }
    benchmarkDiff(fixtures: fixtures, rounds: rounds, sink: &sink)
    if sink == 42 { print("") }
}

/// What the webhook does per large pod after injecting: diff the original against the mutated
/// pod, and apply the patch to prove it.
private func benchmarkDiff(fixtures: String, rounds: Int, sink: inout Int) {
    let path = fixtures + "/kube-apiserver-1.28.4/admission-requests/f-pod-create-1500-env.request.json"
    guard let data = FileManager.default.contents(atPath: path) else { fatalError("cannot read \(path)") }
    let pod = try! JSONReader.parse(data).value(at: JSONPointer(parsing: "/request/object"))
    let injected = try! JSONPatch([
        .add(path: JSONPointer(parsing: "/spec/containers/0"), value: ["name": "tandem-proxy", "image": "tandem:dev"]),
        .add(path: JSONPointer(parsing: "/spec/containers/1/env/-"), value: ["name": "TANDEM", "value": "1"]),
    ]).apply(to: pod)
    var patch = JSONPatch()
    let diff = medianNanoseconds(rounds: rounds, iterations: 100) {
        patch = JSONPatch.diff(from: pod, to: injected)
        sink &+= patch.operations.count
    }
    let apply = medianNanoseconds(rounds: rounds, iterations: 100) {
        if case .object(let object) = try! patch.apply(to: pod) { sink &+= object.count }
    }
    print("f-pod-create-1500-env pod, sidecar and env var added, median of \(rounds) rounds:")
    print("  diff        \(format(diff / 1000)) µs (\(patch.operations.count) operations)")
    print("  apply       \(format(apply / 1000)) µs")
}

/// The median over `rounds` of the mean time of one call, in nanoseconds.
private func medianNanoseconds(rounds: Int, iterations: Int, _ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    for _ in 0..<max(1, iterations / 10) { body() }
    var times: [Double] = []
    for _ in 0..<rounds {
        let elapsed = clock.measure {
            for _ in 0..<iterations { body() }
        }
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        times.append(nanoseconds / Double(iterations))
    }
    return times.sorted()[times.count / 2]
}

private func describe(_ nanoseconds: Double, bytes: Int) -> String {
    let perSecond = 1e9 / nanoseconds
    let megabytes = perSecond * Double(bytes) / 1e6
    return "\(format(nanoseconds / 1000)) µs/doc, \(format(perSecond, digits: 0)) docs/s, \(format(megabytes)) MB/s"
}

private func format(_ value: Double, digits: Int = 1) -> String {
    String(format: "%.\(digits)f", value)
}
