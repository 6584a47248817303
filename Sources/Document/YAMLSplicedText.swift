/// The text of a rewritten YAML stream, held as the runs it is made of until it is written:
/// runs of the source, of the same few fragments of new text (the proxy container, document
/// after document), and of the little new text in between. An injected stream comes out several
/// times larger than it went in, and copying it into one buffer, on fresh pages the system must
/// clear first, cost more than the rest of the rewrite; written a chunk at a time through one
/// small buffer, the text is copied once, in cache, and no page is cleared for it.
public struct SplicedText {
    /// A run of bytes of the source, of `added`, or of one of `fragments`.
    private struct Run {
        /// `sourcePart`, `addedPart`, or an index into `fragments`.
        let part: Int
        let start: Int
        var end: Int
    }

    private static let sourcePart = -1
    private static let addedPart = -2

    private let source: [UInt8]
    private var runs: [Run] = []
    /// New text that is not a fragment: separators, indentation, flow values.
    private var added: [UInt8] = []
    /// The fragments used, each held here so that its text lives as long as this one.
    private var fragments: [[UInt8]] = []
    public private(set) var count = 0

    /// An empty text, to be made of runs of `source`.
    public init(source: [UInt8]) {
        self.source = source
    }

    /// The whole of `bytes`, as one run.
    public init(_ bytes: [UInt8]) {
        self.init(source: bytes)
        append(source: bytes.indices)
    }

    public var isEmpty: Bool { count == 0 }

    /// Appends the source's bytes in `range`; a run that continues the last one extends it.
    public mutating func append(source range: Range<Int>) {
        guard !range.isEmpty else { return }
        append(Run(part: Self.sourcePart, start: range.lowerBound, end: range.upperBound))
    }

    /// Appends new text.
    public mutating func append(contentsOf bytes: some Collection<UInt8>) {
        guard !bytes.isEmpty else { return }
        let start = added.count
        added.append(contentsOf: bytes)
        append(Run(part: Self.addedPart, start: start, end: added.count))
    }

    public mutating func append(_ byte: UInt8) {
        added.append(byte)
        append(Run(part: Self.addedPart, start: added.count - 1, end: added.count))
    }

    /// Appends a fragment, held rather than copied: the same one recurs from document to document.
    mutating func append(fragment: [UInt8]) {
        guard !fragment.isEmpty else { return }
        if fragments.last.map({ $0.sharesStorage(with: fragment) }) != true {
            fragments.append(fragment)
        }
        append(Run(part: fragments.count - 1, start: 0, end: fragment.count))
    }

    private mutating func append(_ run: Run) {
        count += run.end - run.start
        if let last = runs.last, last.part == run.part, last.end == run.start {
            runs[runs.count - 1].end = run.end
        } else {
            runs.append(run)
        }
    }

    /// Runs `body` on each run's bytes in order.
    private func forEachRun(_ body: (ArraySlice<UInt8>) throws -> Void) rethrows {
        for run in runs {
            switch run.part {
            case Self.sourcePart: try body(source[run.start..<run.end])
            case Self.addedPart: try body(added[run.start..<run.end])
            default: try body(fragments[run.part][run.start..<run.end])
            }
        }
    }

    /// The text in one buffer.
    public var bytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        forEachRun { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Hands the text to `body` in order, in chunks of at most `size` bytes, each in the one
    /// buffer, which `body` must not keep.
    public func write(inChunksOf size: Int = 256 << 10, to body: ([UInt8]) throws -> Void) rethrows {
        var chunk: [UInt8] = []
        chunk.reserveCapacity(min(size, count))
        try forEachRun { run in
            var position = run.startIndex
            while position < run.endIndex {
                let end = min(run.endIndex, position + size - chunk.count)
                chunk.append(contentsOf: run[position..<end])
                position = end
                if chunk.count == size {
                    try body(chunk)
                    chunk.removeAll(keepingCapacity: true)
                }
            }
        }
        if !chunk.isEmpty { try body(chunk) }
    }

    /// Whether the text begins with `prefix`.
    public func starts(with prefix: some Collection<UInt8>) -> Bool {
        var head: [UInt8] = []
        forEachRun { run in
            if head.count < prefix.count { head.append(contentsOf: run.prefix(prefix.count - head.count)) }
        }
        return head.starts(with: prefix)
    }

    public var last: UInt8? {
        guard let run = runs.last else { return nil }
        switch run.part {
        case Self.sourcePart: return source[run.end - 1]
        case Self.addedPart: return added[run.end - 1]
        default: return fragments[run.part][run.end - 1]
        }
    }
}
