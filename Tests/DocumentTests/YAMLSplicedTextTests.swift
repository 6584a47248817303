import Testing
@testable import Document

@Suite struct SplicedTextTests {
    private let source = Array("0123456789".utf8)

    /// Runs of the source, new text and fragments, the way a rewrite appends them.
    private func sample() -> SplicedText {
        var text = SplicedText(source: source)
        text.append(source: 0..<3)
        text.append(source: 3..<5)
        text.append(contentsOf: "ab".utf8)
        text.append(UInt8(ascii: "c"))
        text.append(fragment: Array("XYZ".utf8))
        text.append(source: 7..<10)
        text.append(source: 5..<5)
        text.append(fragment: [])
        return text
    }

    @Test func holdsTheRunsInOrder() {
        let text = sample()
        #expect(String(decoding: text.bytes, as: UTF8.self) == "01234abcXYZ789")
        #expect(text.count == 14)
        #expect(text.last == UInt8(ascii: "9"))
        #expect(text.starts(with: "01234a".utf8))
        #expect(!text.starts(with: "012345".utf8))
        #expect(SplicedText(source: source).isEmpty)
        #expect(SplicedText(source: source).last == nil)
    }

    @Test func writesInChunksOfAtMostTheSize() {
        let text = sample()
        for size in [1, 2, 3, 5, 14, 100] {
            var chunks: [[UInt8]] = []
            text.write(inChunksOf: size) { chunks.append($0) }
            #expect(chunks.allSatisfy { !$0.isEmpty && $0.count <= size })
            #expect(chunks.dropLast().allSatisfy { $0.count == size }, "size \(size)")
            #expect(Array(chunks.joined()) == text.bytes)
        }
    }

    @Test func wholeBytesAreOneRun() {
        let text = SplicedText(Array("---\na: 1\n".utf8))
        #expect(text.bytes == Array("---\na: 1\n".utf8))
        #expect(text.starts(with: "---".utf8))
        #expect(text.last == UInt8(ascii: "\n"))
    }
}
