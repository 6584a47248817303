import Document
import Foundation
import Testing
import TestSupport

/// The captured apiserver traffic (see `SharedFixtures`).
enum JSONFixtures {
    static let root = SharedFixtures.root

    static func files(withSuffix suffix: String) -> [String] {
        let walker = FileManager.default.enumerator(atPath: root)
        var paths: [String] = []
        while let relative = walker?.nextObject() as? String {
            if relative.hasSuffix(suffix) { paths.append(root + "/" + relative) }
        }
        return paths.sorted()
    }

    static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func pod(_ name: String) throws -> JSON {
        let path = root + "/kube-apiserver-1.28.4/admission-requests/\(name).request.json"
        let review = try JSONReader.parse(try read(path))
        return try review.value(at: JSONPointer(parsing: "/request/object"))
    }
}

/// Real apiserver and kubectl JSON read and written again.
struct JSONFixtureTests {
    /// Every fixture reads, and writing it compactly gives a document that reads back equal.
    @Test func roundTripsEveryFixture() throws {
        let paths = JSONFixtures.files(withSuffix: ".json")
        #expect(paths.count > 100)
        for path in paths {
            let input = try JSONFixtures.read(path)
            let value = try JSONReader.parse(input)
            let compact = JSONWriter.write(value)
            #expect(try JSONReader.parse(compact) == value, "\(path)")
            #expect(JSONWriter.write(try JSONReader.parse(compact)) == compact, "\(path)")
        }
    }

    /// The apiserver's own compact output comes back byte for byte.
    @Test func writesAdmissionRequestsByteForByte() throws {
        let paths = JSONFixtures.files(withSuffix: ".request.json")
        #expect(paths.count > 20)
        for path in paths {
            var input = try JSONFixtures.read(path)
            if input.last == UInt8(ascii: "\n") { input.removeLast() }
            #expect(JSONWriter.write(try JSONReader.parse(input)) == input, "\(path)")
        }
    }

    /// kubectl `-o json` and other indented fixtures come back byte for byte with their indent.
    @Test func writesIndentedFixturesByteForByte() throws {
        var checked = 0
        for path in JSONFixtures.files(withSuffix: ".json") {
            var input = try JSONFixtures.read(path)
            guard input.starts(with: Array("{\n ".utf8)) else { continue }
            let indent = input.dropFirst(2).prefix { $0 == UInt8(ascii: " ") }.count
            if input.last == UInt8(ascii: "\n") { input.removeLast() }
            #expect(JSONWriter.write(try JSONReader.parse(input), indent: indent) == input, "\(path)")
            checked += 1
        }
        #expect(checked >= 25)
    }
}
