import Document
import Glibc
import Injection
import Kubernetes

/// `admission FILE... [--rounds N] [--review-only]`: the webhook's whole review of each AdmissionReview file, in
/// process and without a socket (read the review, inject, diff, prove and write the answer), as
/// `Hack/bench/webhook` serves it (Kubernetes 1.28.4, so legacy mode). Prints the median time
/// per review and, of that, the time to read the request alone, both in CPU time of the thread:
/// on a shared machine, wall time mostly measures the neighbours. `--review-only` leaves out the
/// reading rounds, so that `valgrind --tool=callgrind --toggle-collect=<function>` counts the
/// instructions of one phase of the review alone.
let admissionBenchmark: @Sendable ([String]) -> Void = { arguments in
    var files: [String] = []
    var rounds = 9
    var reviewOnly = false
    var remaining = arguments[...]
    while let argument = remaining.popFirst() {
        if argument == "--rounds" {
            rounds = remaining.popFirst().flatMap { Int($0) } ?? rounds
        } else if argument == "--review-only" {
            reviewOnly = true
        } else {
            files.append(argument)
        }
    }
    // As the webhook's: no explanations (see ConfigWatcher).
    var injector = Injector()
    injector.keepsExplanations = false
    let version = KubernetesVersion(major: 1, minor: 28)
    var sink = 0
    for file in files {
        let bytes = readWholeFile(file)
        // About 20 ms of work a round whatever the size.
        let iterations = max(1, 100 * 6000 / bytes.count)
        let review = medianSeconds(rounds: rounds) {
            for _ in 0..<iterations {
                sink &+= StaticString("application/json").withUTF8Buffer { contentType in
                    Admission.review(body: bytes, contentType: UnsafeRawBufferPointer(contentType), injector: injector,
                                     kubeVersion: version).body.count
                }
            }
        } / Double(iterations)
        let name = file.split(separator: "/").last ?? ""
        if reviewOnly {
            print("admission \(name) (\(bytes.count) bytes): review \(microseconds(review)) µs")
            continue
        }
        let read = medianSeconds(rounds: rounds) {
            for _ in 0..<iterations {
                if case .object(let object) = try! JSONReader.parse(bytes) { sink &+= object.count }
            }
        } / Double(iterations)
        print("admission \(name) (\(bytes.count) bytes): review \(microseconds(review)) µs, of which reading \(microseconds(read)) µs")
    }
    if sink == 42 { print() }
}

private func microseconds(_ seconds: Double) -> Double { (seconds * 1e7).rounded() / 10 }
