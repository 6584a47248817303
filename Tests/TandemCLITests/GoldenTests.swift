import Document
import Foundation
import Injection
import Testing
@testable import TandemCLI

/// Golden-file tests over Tandem's own fixtures and real-world manifests (Linkerd's test inputs):
/// the injected output in both lifecycle modes, the report, idempotency, the exact inverse, and
/// comments kept. `UPDATE_GOLDEN=1 swift test` rewrites the golden files.
@Suite struct GoldenTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let inputs = fixtures.appendingPathComponent("inputs")
    static let golden = fixtures.appendingPathComponent("golden")
    static let updating = ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1"

    /// Every input file, as a path relative to `inputs`.
    static let inputFiles: [String] = {
        let enumerator = FileManager.default.enumerator(atPath: inputs.path)
        var files: [String] = []
        while let path = enumerator?.nextObject() as? String {
            if path.hasSuffix(".yaml") || path.hasSuffix(".yml") || path.hasSuffix(".json") { files.append(path) }
        }
        return files.sorted()
    }()
    static let goodFiles = inputFiles.filter { !$0.contains(".bad.") }
    static let badFiles = inputFiles.filter { $0.contains(".bad.") }

    static func rewriter(_ operation: InjectCommand.Operation, mode: LifecycleMode = .auto) -> ManifestRewriter {
        let injector = Injector(config: .defaults)
        switch operation {
        case .inject:
            return ManifestRewriter(transform: { object throws(InjectionError) in
                try injector.inject(object: object, lifecycle: mode)
            }, format: nil)
        case .uninject:
            return ManifestRewriter(transform: { object throws(InjectionError) in
                try injector.uninject(object: object)
            }, format: nil)
        }
    }

    /// Compares `actual` with the golden file, or writes it when updating.
    static func checkGolden(_ actual: String, name: String) throws {
        let url = golden.appendingPathComponent(name)
        if updating {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try actual.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(actual == expected, "\(name) differs from its golden file; run UPDATE_GOLDEN=1 swift test to accept")
    }

    @Test("injects, reports, is idempotent and exactly undone", arguments: goodFiles)
    func golden(file: String) throws {
        let input = try Array(Data(contentsOf: Self.inputs.appendingPathComponent(file)))
        for mode in [LifecycleMode.native, .legacy] {
            let injected = try Self.rewriter(.inject, mode: mode).rewrite(input, source: file)
            try Self.checkGolden(String(decoding: injected.output, as: UTF8.self), name: "\(file).\(mode.rawValue).out")
            let report = WorkloadReportText.summary(injected.workloads, operation: "inject")
            try Self.checkGolden(report, name: "\(file).\(mode.rawValue).report")

            let again = try Self.rewriter(.inject, mode: mode).rewrite(injected.output, source: file)
            #expect(again.output == injected.output, "injecting \(file) twice (\(mode)) changed it again")
            #expect(!again.changed)

            let restored = try Self.rewriter(.uninject).rewrite(injected.output, source: file)
            #expect(restored.output == input, "uninject(inject(\(file))) (\(mode)) is not the input byte for byte")

            let inputText = String(decoding: input, as: UTF8.self)
            let outputText = String(decoding: injected.output, as: UTF8.self)
            for line in inputText.split(separator: "\n") where line.contains("#") && !file.hasSuffix(".json") {
                #expect(outputText.contains(line), "\(file): comment line lost: \(line)")
            }
        }
    }

    @Test("a stream rewritten in pieces at once comes out as in one piece", arguments: goodFiles + badFiles)
    func pieces(file: String) throws {
        let input = try Array(Data(contentsOf: Self.inputs.appendingPathComponent(file)))
        var inPieces = Self.rewriter(.inject)
        inPieces.maximumPieces = 3
        inPieces.minimumPiece = 1
        var whole = Self.rewriter(.inject)
        whole.maximumPieces = 1
        do {
            let expected = try whole.rewrite(input, source: file)
            let actual = try inPieces.rewrite(input, source: file)
            #expect(actual.output == expected.output)
            #expect(actual.changed == expected.changed)
            #expect(WorkloadReportText.summary(actual.workloads, operation: "inject")
                == WorkloadReportText.summary(expected.workloads, operation: "inject"))
        } catch {
            do {
                _ = try inPieces.rewrite(input, source: file)
                Issue.record("\(file) was accepted in pieces")
            } catch let pieceError {
                #expect(pieceError.description == error.description)
            }
        }
    }

    @Test("bad input names file, document and line:column", arguments: badFiles)
    func badInput(file: String) throws {
        let input = try Array(Data(contentsOf: Self.inputs.appendingPathComponent(file)))
        do {
            _ = try Self.rewriter(.inject).rewrite(input, source: file)
            Issue.record("\(file) was accepted")
        } catch {
            try Self.checkGolden(error.description + "\n", name: "\(file).error")
        }
    }
}
