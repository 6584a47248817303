import CYAML
import Document
import Injection

/// `inject-phases FILE [ROUNDS]`: where `tandem inject`'s time goes on a YAML stream, phase by
/// phase and in process, each as a multiple of libyaml's bare event parse of the same bytes:
/// reading (parse + node trees + values), injecting every document, rewriting the text.
/// Medians of ROUNDS rounds.
let injectPhasesBenchmark: @Sendable ([String]) -> Void = { arguments in
    let bytes = readWholeFile(arguments[0])
    let rounds = arguments.count > 1 ? Int(arguments[1]) ?? 5 : 5
    // As `tandem inject` without `--explain`.
    var injector = Injector()
    injector.keepsExplanations = false
    let documents = try! YAMLReader.read(bytes)
    let injected = documents.map { try! injector.inject(object: $0.value).object }
    var sink = 0

    let parse = medianSeconds(rounds: rounds) { sink &+= libyamlEventCount(bytes) }
    let read = medianSeconds(rounds: rounds) {
        try! YAMLReader.read(bytes) { sink &+= $0.range.count }
    }
    let inject = medianSeconds(rounds: rounds) {
        for document in documents { sink &+= try! injector.inject(object: document.value).workloads.count }
    }
    // As `tandem inject` does, up to writing the text out a chunk at a time.
    let rewrite = medianSeconds(rounds: rounds) {
        let rewriter = YAMLRewriter()
        var output = SplicedText(source: bytes)
        for (document, value) in zip(documents, injected) {
            rewriter.rewrite(document, in: bytes, to: value, into: &output)
        }
        output.write { sink &+= $0.count }
    }
    func line(_ name: String, _ seconds: Double) -> String {
        let milliseconds = (seconds * 10_000).rounded() / 10
        let ratio = (seconds / parse * 100).rounded() / 100
        return "  \(name) \(milliseconds) ms = \(ratio)x libyaml parse"
    }
    print("inject-phases (\(documents.count) documents, medians of \(rounds)):")
    print(line("libyaml event parse", parse))
    print(line("read (parse, trees, values)", read))
    print(line("inject", inject))
    print(line("rewrite", rewrite))
    print(line("sum", read + inject + rewrite))
    if sink == 42 { print() }
}
