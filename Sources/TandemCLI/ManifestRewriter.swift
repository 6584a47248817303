import Dispatch
import Document
import Injection
import Net

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
    let transform: @Sendable (JSON) throws(InjectionError) -> InjectionReport
    let format: OutputFormat?
    /// At most this many pieces of a YAML stream are rewritten at once: one per processor.
    var maximumPieces = availableProcessors()
    /// Below this many bytes a piece is not worth its thread.
    var minimumPiece = 1 << 20
    /// Whether `Result.workloads` is gathered; a caller that prints no report leaves it empty
    /// rather than holding a report for every workload of a large stream.
    var keepsWorkloads = true

    struct Result {
        /// The new text: one part, or one per piece of a stream rewritten in pieces, to be
        /// written one after another rather than copied together.
        var outputParts: [SplicedText]
        var workloads: [WorkloadLine]
        var changed: Bool

        /// The new text in one buffer.
        var output: [UInt8] { outputParts.count == 1 ? outputParts[0].bytes : Array(outputParts.map(\.bytes).joined()) }
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
        if format != .json, let result = rewriteYAMLInPieces(bytes, source: source) {
            return result
        }
        return try rewriteYAML(bytes, in: bytes.indices, source: source).result
    }

    /// A large stream is cut at `---` lines into one piece per processor, and the pieces are
    /// read, transformed and rewritten at once, then joined: the result is the same as in one
    /// piece. Nil when the stream is small, cannot be cut, or a piece fails: the caller then
    /// does it in one piece, so that an error is reported as it always is.
    private func rewriteYAMLInPieces(_ bytes: [UInt8], source: String) -> Result? {
        let count = min(maximumPieces, bytes.count / max(minimumPiece, 1))
        guard count > 1 else { return nil }
        var cuts = [0]
        for piece in 1..<count {
            let target = max(bytes.count / count * piece, cuts[cuts.count - 1] + 1)
            if let start = YAMLReader.documentStart(atOrAfter: target, in: bytes) { cuts.append(start) }
        }
        cuts.append(bytes.count)
        let ranges = zip(cuts, cuts.dropFirst()).map { $0..<$1 }
        guard ranges.count > 1 else { return nil }

        let pieces = PieceResults(count: ranges.count)
        DispatchQueue.concurrentPerform(iterations: ranges.count) { index in
            pieces.store(try? rewriteYAML(bytes, in: ranges[index], source: source), at: index)
        }
        var joined: Result?
        var documents = 0
        for piece in pieces.take() {
            guard let piece else { return nil }
            let shifted = piece.result.workloads.map {
                WorkloadLine(source: $0.source, document: $0.document + documents, report: $0.report)
            }
            documents += piece.documents
            if joined == nil {
                joined = Result(outputParts: piece.result.outputParts, workloads: shifted, changed: piece.result.changed)
            } else {
                joined!.outputParts += piece.result.outputParts
                joined!.workloads += shifted
                joined!.changed = joined!.changed || piece.result.changed
            }
        }
        return joined
    }

    /// One piece's outcome; workloads are numbered from the piece's first document.
    private struct Piece {
        var result: Result
        var documents: Int
    }

    /// Slots the pieces' threads write, each its own.
    private final class PieceResults: @unchecked Sendable {
        private let slots: UnsafeMutableBufferPointer<Piece?>

        init(count: Int) {
            slots = .allocate(capacity: count)
            slots.initialize(repeating: nil)
        }

        func store(_ piece: Piece?, at index: Int) { slots[index] = piece }

        func take() -> [Piece?] { Array(slots) }

        deinit {
            slots.deinitialize()
            slots.deallocate()
        }
    }

    /// Rewrites the documents in `range` of a YAML stream.
    private func rewriteYAML(_ bytes: [UInt8], in range: Range<Int>, source: String) throws(ManifestError) -> Piece {
        var result = Result(outputParts: [], workloads: [], changed: false)
        var output = SplicedText(source: bytes)
        var jsonValues: [JSON] = []
        var index = 0
        let yamlRewriter = YAMLRewriter()
        do {
            try YAMLReader.read(bytes, in: range) { document in
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
                    if keepsWorkloads {
                        for workload in report.workloads {
                            result.workloads.append(WorkloadLine(source: source, document: index, report: workload))
                        }
                    }
                    newValue = report.object
                }
                switch format {
                case .json:
                    if newValue != value { result.changed = true }
                    if !newValue.isNull { jsonValues.append(newValue) }
                case .yaml, nil:
                    if yamlRewriter.rewrite(document, in: bytes, to: newValue, into: &output) { result.changed = true }
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
        if index == 0, format != .json { output.append(source: range) }
        if format == .json { output = SplicedText(Self.jsonStream(jsonValues, indent: 4)) }
        result.outputParts = [output]
        return Piece(result: result, documents: index)
    }

    private func rewriteJSON(_ bytes: [UInt8], source: String) throws(ManifestError) -> Result {
        let values: [JSONStreamValue]
        do {
            values = try JSONReader.parseStream(bytes)
        } catch {
            throw ManifestError(source: source, document: nil, line: error.line, column: error.column, message: error.message)
        }
        var result = Result(outputParts: [], workloads: [], changed: false)
        var output: [UInt8] = []
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
            if keepsWorkloads {
                for workload in report.workloads {
                    result.workloads.append(WorkloadLine(source: source, document: index + 1, report: workload))
                }
            }
            newValues.append(report.object)
            if format != .yaml {
                output += bytes[previousEnd..<item.offset]
                if report.object == item.value {
                    output += bytes[item.offset..<item.endOffset]
                } else {
                    result.changed = true
                    JSONWriter.write(report.object, indent: Self.indentation(of: bytes[item.offset..<item.endOffset]), into: &output)
                }
                previousEnd = item.endOffset
            } else if report.object != item.value {
                result.changed = true
            }
        }
        if format == .yaml {
            output = Array(newValues.map(YAMLWriter.write).joined(separator: Array("---\n".utf8)))
        } else {
            output += bytes[previousEnd...]
        }
        result.outputParts = [SplicedText(output)]
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
