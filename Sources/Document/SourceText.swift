/// Byte-level questions about YAML source lines, shared by the reader and the rewriter.
enum SourceText {
    /// The end of the line `offset` is on, past spaces and a trailing `# comment`, but before the
    /// line break; `offset` itself if anything else follows on the line.
    static func lineEnd(after offset: Int, in bytes: [UInt8]) -> Int {
        var index = offset
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") {
            index += 1
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "#") {
            while index < bytes.count, bytes[index] != UInt8(ascii: "\n"), bytes[index] != UInt8(ascii: "\r") {
                index += 1
            }
        }
        if index == bytes.count || bytes[index] == UInt8(ascii: "\n") || bytes[index] == UInt8(ascii: "\r") {
            return index
        }
        return offset
    }

    /// The offset where the line holding `offset` begins.
    static func lineStart(of offset: Int, in bytes: [UInt8]) -> Int {
        var index = offset
        while index > 0, bytes[index - 1] != UInt8(ascii: "\n") {
            index -= 1
        }
        return index
    }

    /// Whether `bytes[range]` holds only spaces.
    static func isBlank(_ range: Range<Int>, in bytes: [UInt8]) -> Bool {
        bytes[range].allSatisfy { $0 == UInt8(ascii: " ") }
    }
}
