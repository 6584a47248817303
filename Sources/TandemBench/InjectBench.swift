import Document
import Injection

/// `inject-pod FILE.json [ROUNDS]`: the webhook's work for one large pod, in process: read the
/// pod's JSON, inject it, diff the result into a JSON Patch and write the patch. Then the
/// CLI's work for the same pod as YAML: read, inject, rewrite the text. Prints median ms.
let injectPodBenchmark: @Sendable ([String]) -> Void = { arguments in
    let bytes = readWholeFile(arguments[0])
    let rounds = arguments.count > 1 ? Int(arguments[1]) ?? 20 : 20
    let injector = Injector()
    var patchOperations = 0
    let webhookSeconds = medianSeconds(rounds: rounds) {
        do {
            let pod = try JSONReader.parse(bytes)
            let report = try injector.inject(object: pod)
            let patch = JSONPatch.diff(from: pod, to: report.object)
            patchOperations = patch.operations.count
            _ = JSONWriter.write(patch.json)
        } catch {
            fatalError("inject-pod: \(error)")
        }
    }
    let yaml = YAMLWriter.write(try! JSONReader.parse(bytes))
    var outputBytes = 0
    let cliSeconds = medianSeconds(rounds: rounds) {
        do {
            let documents = try YAMLReader.read(yaml)
            var output = SplicedText(source: yaml)
            for document in documents {
                let report = try injector.inject(object: document.value)
                YAMLRewriter().rewrite(document, in: yaml, to: report.object, into: &output)
            }
            outputBytes = output.count
        } catch {
            fatalError("inject-pod: \(error)")
        }
    }
    print("inject-pod json+patch \(webhookSeconds * 1000) ms (\(bytes.count) bytes in, \(patchOperations) patch operations)")
    print("inject-pod yaml-rewrite \(cliSeconds * 1000) ms (\(yaml.count) bytes in, \(outputBytes) out)")
}
