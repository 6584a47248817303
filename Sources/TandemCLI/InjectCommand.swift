import Document
import Injection
import Kubernetes
import Webhook

/// `tandem inject` and `tandem uninject`: the shell around `ManifestRewriter`. It gathers the
/// inputs, rewrites all of them in memory, and only then writes: to standard output, or with
/// `--in-place` to every file at once, so a failure leaves nothing half written.
struct InjectCommand {
    enum Operation {
        case inject, uninject

        var name: String { self == .inject ? "inject" : "uninject" }
    }

    let operation: Operation

    var specs: [OptionSpec] {
        var specs: [OptionSpec] = [
            .value("-f", "--filename", name: "PATH", help: "A manifest file, a folder (read recursively: .yaml, .yml, .json), or - for standard input. Repeatable; none means standard input."),
            .value("-o", "--output", name: "FORMAT", help: "yaml or json (default: the input's own format)."),
            .flag("--in-place", help: "Rewrite the files themselves, all or none, atomically."),
        ]
        if operation == .inject {
            specs += [
                .value("--config", name: "FILE", help: "Injection config in the shape of the Helm chart's values (proxy:, injection:)."),
                .value("--mode", name: "MODE", help: "Lifecycle mode: auto, native or legacy (default: the config's, auto)."),
                .value("--kube-version", name: "VERSION", help: "Kubernetes version the manifests are for; auto mode uses native sidecars from 1.29."),
                .value("--namespace", name: "NAME", help: "Namespace for objects that name none, for namespace exclusions."),
            ]
        }
        specs += [
            .value("--explain", name: "[KIND/]NAME", help: "Print every check made on the named workload and its outcome."),
            .flag("-q", "--quiet", help: "Print no report on standard error."),
        ]
        return specs
    }

    var help: String {
        let summary = operation == .inject
            ? "Adds the Tandem proxy sidecar to every workload in the manifests. Documents that are not workloads, or\nthat are skipped, come out byte for byte; in changed documents only the injected lines differ."
            : "Removes exactly what `tandem inject` added, using the tandem.io/status annotation it left."
        return helpText(usage: "tandem \(operation.name) [-f PATH]... [options]", summary: summary, specs: specs)
    }

    /// Runs the command and returns the exit status.
    func run(_ arguments: [String]) -> Int32 {
        let parsed: ParsedArguments
        let format: OutputFormat?
        let transform: @Sendable (JSON) throws(InjectionError) -> InjectionReport
        do throws(UsageError) {
            parsed = try ParsedArguments.parse(arguments, specs: specs)
            if let extra = parsed.positionals.first {
                throw UsageError(message: "unexpected argument \"\(extra)\" (name files with -f)")
            }
            format = try parsed.choice("--output", from: ["yaml", "json"]).flatMap(OutputFormat.init(rawValue:))
            if parsed.flag("--in-place"), parsed.all("--filename").isEmpty || parsed.all("--filename").contains("-") {
                throw UsageError(message: "--in-place needs files (-f PATH), not standard input")
            }
            if parsed.flag("--in-place"), format != nil {
                throw UsageError(message: "--in-place keeps each file's format; drop -o")
            }
            transform = try makeTransform(parsed)
        } catch {
            Console.error("tandem \(operation.name): \(error.message)\nRun 'tandem \(operation.name) --help' for usage.\n")
            return 64
        }
        do {
            return try execute(parsed, format: format, transform: transform)
        } catch {
            Console.error("error: \(error)\n")
            return 1
        }
    }

    private func makeTransform(_ parsed: ParsedArguments) throws(UsageError) -> @Sendable (JSON) throws(InjectionError) -> InjectionReport {
        // Explanations are formatted only for `--explain`.
        let explains = parsed.last("--explain") != nil
        guard operation == .inject else {
            var injector = Injector(config: .defaults)
            injector.keepsExplanations = explains
            return { [injector] object throws(InjectionError) in try injector.uninject(object: object) }
        }
        var config = InjectionConfig.defaults
        if let path = parsed.last("--config") {
            config = try Self.loadConfig(path)
        }
        let mode = try parsed.choice("--mode", from: LifecycleMode.allCases.map(\.rawValue)).flatMap(LifecycleMode.init(rawValue:))
        var kubeVersion: KubernetesVersion?
        if let text = parsed.last("--kube-version") {
            guard let version = KubernetesVersion(text) else {
                throw UsageError(message: "--kube-version \"\(text)\" is not a Kubernetes version (like 1.29 or v1.30.2)")
            }
            kubeVersion = version
        }
        let namespace = parsed.last("--namespace")
        var injector = Injector(config: config)
        injector.keepsExplanations = explains
        return { [injector, kubeVersion] object throws(InjectionError) in
            try injector.inject(object: object, namespace: namespace, lifecycle: mode, kubeVersion: kubeVersion)
        }
    }

    /// Reads the config file (the webhook's reader: one way to read it); a config that cannot be
    /// used is a usage error naming the place.
    private static func loadConfig(_ path: String) throws(UsageError) -> InjectionConfig {
        do {
            return try ConfigFile.load(path)
        } catch {
            throw UsageError(message: error.message)
        }
    }

    private struct Input {
        let name: String
        let path: String?
        let bytes: [UInt8]
    }

    private func readInputs(_ paths: [String]) throws -> [Input] {
        var inputs: [Input] = []
        for path in paths.isEmpty ? ["-"] : paths {
            if path == "-" {
                inputs.append(Input(name: "<stdin>", path: nil, bytes: try FileSystem.readAll(0, path: "standard input")))
            } else if try FileSystem.isDirectory(path) {
                let files = try FileSystem.manifestFiles(under: path)
                for file in files {
                    inputs.append(Input(name: file, path: file, bytes: try FileSystem.readFile(file)))
                }
            } else {
                inputs.append(Input(name: path, path: path, bytes: try FileSystem.readFile(path)))
            }
        }
        return inputs
    }

    private func execute(_ parsed: ParsedArguments, format: OutputFormat?,
                         transform: @escaping @Sendable (JSON) throws(InjectionError) -> InjectionReport) throws -> Int32 {
        let inputs = try readInputs(parsed.all("--filename"))
        var rewriter = ManifestRewriter(transform: transform, format: format)
        // Workloads are gathered only to be printed: a large stream has a report for every one.
        let explained = parsed.last("--explain")
        rewriter.keepsWorkloads = !parsed.flag("--quiet") || explained != nil
        var results: [(Input, ManifestRewriter.Result)] = []
        var errors: [ManifestError] = []
        for input in inputs {
            do {
                results.append((input, try rewriter.rewrite(input.bytes, source: input.name)))
            } catch {
                errors.append(error)
            }
        }
        guard errors.isEmpty else {
            for error in errors { Console.error("error: \(error)\n") }
            Console.error("tandem \(operation.name): \(errors.count) input(s) failed; nothing was written\n")
            return 1
        }
        if parsed.flag("--in-place") {
            try writeInPlace(results.filter { $0.1.changed })
        } else {
            // Each input's output is written as it stands (they can be large), with a document
            // separator between YAML inputs.
            var lastByte: UInt8?
            for (_, result) in results {
                let parts = result.outputParts.filter { !$0.isEmpty }
                if format != .json, let previous = lastByte {
                    var separator: [UInt8] = previous == UInt8(ascii: "\n") ? [] : [UInt8(ascii: "\n")]
                    if !(parts.first?.starts(with: "---".utf8) ?? false) { separator += "---\n".utf8 }
                    Console.out(separator)
                    lastByte = separator.last ?? previous
                }
                for part in parts { part.write(to: Console.out) }
                lastByte = parts.last?.last ?? lastByte
            }
        }
        guard rewriter.keepsWorkloads else { return 0 }
        let workloads = results.flatMap { $0.1.workloads }
        if !parsed.flag("--quiet") {
            Console.error(WorkloadReportText.summary(workloads, operation: operation.name))
        }
        if let target = explained {
            Console.error(WorkloadReportText.explanation(workloads, matching: target))
        }
        return 0
    }

    /// Stages every changed file first; only when all are staged are they renamed into place.
    private func writeInPlace(_ changed: [(Input, ManifestRewriter.Result)]) throws {
        var staged: [(temporary: String, path: String)] = []
        do {
            for (input, result) in changed {
                guard let path = input.path else { continue }
                staged.append((try FileSystem.stage(result.output, for: path), path))
            }
        } catch {
            for entry in staged { FileSystem.discard(entry.temporary) }
            throw error
        }
        for entry in staged {
            try FileSystem.commit(entry.temporary, over: entry.path)
        }
    }
}
