// libFuzzer entry point for what reads untrusted documents: the webhook's review of an
// AdmissionReview, `tandem inject`'s YAML read-inject-rewrite, and the JSON reader and writer.
// Compiled with the Document, Kubernetes and Injection modules (see Hack/fuzz/run). The first
// byte picks the path; beyond "does not crash", each checks properties any input must keep.
import Document
import Injection
import Kubernetes

let injector = Injector()

/// The parts of a review the webhook's reader skips (`Admission.unreadParts`), inside which a
/// repeated key is not refused.
let unreadParts = [
    ["request", "object", "metadata", "managedFields"], ["request", "oldObject"], ["request", "userInfo"],
    ["request", "options"], ["request", "resource"], ["request", "requestKind"], ["request", "requestResource"],
]

/// The webhook's answer is always a JSON AdmissionReview, and a patch it returns applies to the
/// pod it was given (with the unread parts null, if a key repeats inside one) and yields a pod
/// that carries the proxy.
func review(_ body: [UInt8]) {
    let result = StaticString("application/json").withUTF8Buffer { contentType in
        Admission.review(body: body, contentType: UnsafeRawBufferPointer(contentType), injector: injector,
                         kubeVersion: KubernetesVersion(major: 1, minor: 28))
    }
    guard let answer = try? JSONReader.parse(result.body) else { preconditionFailure("the answer is not JSON") }
    guard result.outcome == .patched else { return }
    guard let text = answer["response"]?["patch"]?.stringValue, let decoded = Base64.decode(text),
          let patch = try? JSONPatch(json: JSONReader.parse(decoded)),
          let pod = ((try? JSONReader.parse(body)) ?? (try? JSONReader.parse(body, skipping: unreadParts)))?["request"]?["object"]
    else { preconditionFailure("a patched answer without a usable patch") }
    guard let patched = try? patch.apply(to: pod) else { preconditionFailure("the patch does not apply to the pod") }
    precondition(Admission.carriesProxy(patched), "the patched pod has no proxy")
}

/// Whatever YAML reads, each document rewritten with its injected value reads back as that
/// value (written whole or in chunks alike), and uninjecting what was injected gives back the
/// document as read.
func injectYAML(_ bytes: [UInt8]) {
    guard let documents = try? YAMLReader.read(bytes) else { return }
    var output = SplicedText(source: bytes)
    var expected: [JSON] = []
    let rewriter = YAMLRewriter()
    for document in documents {
        var value = document.value
        if case .object = value, let report = try? injector.inject(object: value) {
            value = report.object
            if report.workloads.contains(where: { $0.reason == .injected }) {
                guard let back = try? injector.uninject(object: value) else { preconditionFailure("cannot uninject what was injected") }
                precondition(back.object == document.value, "uninject(inject(x)) != x")
            }
        }
        _ = rewriter.rewrite(document, in: bytes, to: value, into: &output)
        expected.append(value)
    }
    var chunked: [UInt8] = []
    output.write(inChunksOf: 7) { chunked += $0 }
    precondition(chunked == output.bytes, "the text written in chunks is not the text")
    guard let again = try? YAMLReader.read(output.bytes) else { preconditionFailure("the rewritten stream does not read") }
    precondition(again.map(\.value) == expected, "the rewritten stream reads as something else")
}

/// Members the webhook's reader skips, and two that manifests have.
let skippedPaths = [["request", "object", "metadata", "managedFields"], ["request", "oldObject"], ["metadata"], ["spec", "template"]]

/// What the reader accepts, the writer writes as JSON that reads back the same, compact or
/// indented. Reading while skipping members fails exactly as reading everything does, but for a
/// key repeated inside a skipped member, which skipping reads on past; and otherwise gives the
/// same value with those members null.
func roundTripJSON(_ bytes: [UInt8]) {
    let value: JSON
    do throws(JSONParseError) {
        value = try JSONReader.parse(bytes)
    } catch {
        let repeated = error.message.hasPrefix("duplicate key ")
        do throws(JSONParseError) {
            _ = try JSONReader.parse(bytes, skipping: skippedPaths)
            precondition(repeated, "skipping accepted what reading refused: \(error)")
        } catch let skippedError {
            precondition(skippedError == error || repeated && skippedError.offset > error.offset,
                         "skipping failed otherwise: \(skippedError) vs \(error)")
        }
        return
    }
    guard let skipped = try? JSONReader.parse(bytes, skipping: skippedPaths) else {
        preconditionFailure("skipping refused what reading accepted")
    }
    var nulled = value
    for path in skippedPaths {
        let parent = path.dropLast().reduce(Optional(nulled)) { $0?[$1] }
        guard case .object? = parent, parent?[path.last!] != nil else { continue }
        nulled = try! JSONPatch([.replace(path: JSONPointer(tokens: path), value: .null)]).apply(to: nulled)
    }
    precondition(skipped == nulled, "skipping changed more than the skipped members")
    for indent in [0, 2] {
        guard let again = try? JSONReader.parse(JSONWriter.write(value, indent: indent)) else {
            preconditionFailure("written JSON does not read")
        }
        precondition(again == value, "written JSON reads as something else")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch data[0] % 3 {
    case 0: review(input)
    case 1: injectYAML(input)
    default: roundTripJSON(input)
    }
    return 0
}
