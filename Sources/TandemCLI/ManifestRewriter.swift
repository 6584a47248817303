import Document
import Injection

/// The output format of a rewrite: the input's own, or one asked for with `-o`.
enum OutputFormat: String, Sendable {
    case yaml, json
}

/// One workload's outcome in one input, for the report.
struct WorkloadLine: Sendable {
    let source: String
    let document: Int
    let report: WorkloadReport
}

/// An input that could not be rewritten: where, and why.
struct ManifestError: Error, CustomStringConvertible, Sendable {
    let source: String
    let document: Int?
    let line: Int?
    let column: Int?
    let message: String

    var description: String {
        var text = source
        if let line, let column { text += ":\(line):\(column)" }
        if let document { text += ": document \(document)" }
        return text + ": " + message
    }
}

/// Rewrites one manifest text (YAML stream or JSON) document by document: the pure core of
/// `tandem inject` and `tandem uninject`. Documents the transform leaves alone come out byte
/// for byte; changed YAML documents are edited in place so their untouched text stays as it was.
struct ManifestRewriter {
    /// Turns one document's value into its new value plus one report per workload inside it.
    let transform: (JSON) throws(InjectionError) -> InjectionReport
    let format: OutputFormat?

    struct Result {
        var output: [UInt8]
        var workloads: [WorkloadLine]
        var changed: Bool
    }

    func rewrite(_ bytes: [UInt8], source: String) throws(ManifestError) -> Result {
        if Self.looksLikeJSON(bytes) {
            return try rewriteJSON(bytes, source: source)
        }
        return try rewriteYAML(bytes, source: source)
    }

    private static func looksLikeJSON(_ bytes: [UInt8]) -> Bool {
        let first = bytes.first { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }
        return first == UInt8(ascii: "{") || first == UInt8(ascii: "[")
    }

    private func rewriteYAML(_ bytes: [UInt8], source: String) throws(ManifestError) -> Result {
        var result = Result(output: [], workloads: [], changed: false)
        result.output.reserveCapacity(bytes.count + bytes.count / 4)
        var jsonValues: [JSON] = []
        var index = 0
        let yamlRewriter = YAMLRewriter()
        do {
            try YAMLReader.read(bytes) { document in
                index += 1
                let value = document.value
                var newValue = value
                if case .object = value {
                    let report: InjectionReport
                    do throws(InjectionError) {
                        report = try transform(value)
                    } catch {
                        let mark = document.root?.deepestNode(along: error.pointer).start
                        throw ManifestError(source: source, document: index, line: mark?.line, column: mark?.column,
                                            message: error.message)
                    }
                    result.workloads += report.workloads.map { WorkloadLine(source: source, document: index, report: $0) }
                    newValue = report.object
                }
                if newValue != value { result.changed = true }
                switch format {
                case .json:
                    if !newValue.isNull { jsonValues.append(newValue) }
                case .yaml, nil:
                    yamlRewriter.rewrite(document, in: bytes, to: newValue, into: &result.output)
                    Self.reserveForRest(of: bytes.count, after: document.range.upperBound, in: &result.output)
                }
            }
        } catch let error as ManifestError {
            throw error
        } catch let error as YAMLError {
            throw ManifestError(source: source, document: error.document + 1, line: error.mark.line,
                                column: error.mark.column, message: error.message)
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
        if index == 0, format != .json { result.output = bytes }
        if format == .json { result.output = Self.jsonStream(jsonValues, indent: 4) }
        return result
    }

    /// Injected streams come out several times larger than they went in, and an array that
    /// grows by doubling copies itself and faults in fresh pages each time (a tenth of a large
    /// stream's time). So when room runs short, reserve for the whole output at the rate so far.
    private static func reserveForRest(of inputCount: Int, after consumed: Int, in output: inout [UInt8]) {
        guard consumed > 0, output.capacity - output.count < 64 << 10 else { return }
        let projected = Int(Double(output.count) * Double(inputCount) / Double(consumed) * 1.05) + (64 << 10)
        output.reserveCapacity(max(projected, output.count * 5 / 4))
    }

    private func rewriteJSON(_ bytes: [UInt8], source: String) throws(ManifestError) -> Result {
        let values: [JSONStreamValue]
        do {
            values = try JSONReader.parseStream(bytes)
        } catch {
            throw ManifestError(source: source, document: nil, line: error.line, column: error.column, message: error.message)
        }
        var result = Result(output: [], workloads: [], changed: false)
        var newValues: [JSON] = []
        var previousEnd = 0
        for (index, item) in values.enumerated() {
            let report: InjectionReport
            do {
                report = try transform(item.value)
            } catch {
                throw ManifestError(source: source, document: index + 1, line: nil, column: nil,
                                    message: "\(JSONPointer(tokens: error.pointer)): \(error.message)")
            }
            result.workloads += report.workloads.map { WorkloadLine(source: source, document: index + 1, report: $0) }
            newValues.append(report.object)
            if format != .yaml {
                result.output += bytes[previousEnd..<item.offset]
                if report.object == item.value {
                    result.output += bytes[item.offset..<item.endOffset]
                } else {
                    result.changed = true
                    result.output += JSONWriter.write(report.object, indent: Self.indentation(of: bytes[item.offset..<item.endOffset]))
                }
                previousEnd = item.endOffset
            } else if report.object != item.value {
                result.changed = true
            }
        }
        if format == .yaml {
            result.output = Array(newValues.map(YAMLWriter.write).joined(separator: Array("---\n".utf8)))
        } else {
            result.output += bytes[previousEnd...]
        }
        return result
    }

    /// The indentation a JSON text uses: the spaces before its first indented line; 0 if compact.
    private static func indentation(of text: ArraySlice<UInt8>) -> Int {
        guard let newline = text.firstIndex(of: UInt8(ascii: "\n")) else { return 0 }
        return text[(newline + 1)...].prefix { $0 == UInt8(ascii: " ") }.count
    }

    private static func jsonStream(_ values: [JSON], indent: Int) -> [UInt8] {
        var output: [UInt8] = []
        for value in values {
            JSONWriter.write(value, indent: indent, into: &output)
            output.append(UInt8(ascii: "\n"))
        }
        return output
    }
}
