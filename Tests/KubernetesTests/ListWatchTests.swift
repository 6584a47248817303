import Document
import Foundation
import Kubernetes
import Testing
import TestSupport

private let base = SharedFixtures.root + "/kube-apiserver-1.28.4"

private func json(_ path: String) throws -> JSON {
    try JSONReader.parse(Array(try Data(contentsOf: URL(fileURLWithPath: base + "/" + path))))
}

private func watchEvents(_ path: String) throws -> [WatchEvent] {
    let text = try String(contentsOfFile: base + "/" + path, encoding: .utf8)
    return try text.split(separator: "\n").map { line in
        try #require(WatchEvent(try JSONReader.parse(String(line))))
    }
}

@Suite struct ListWatchTests {
    @Test func pagedListThenWatchFromTheListsVersionWithRealPages() throws {
        var machine = ListWatchMachine()
        #expect(machine.handle(.start) == [.list(continueToken: nil)])
        let first = try json("list/pods-limit2-page1.body.json")
        let token = try #require(first["metadata"]?["continue"]?.stringValue)
        let afterFirst = machine.handle(.listPage(items: first["items"]?.arrayValue ?? [], resourceVersion: "456", continueToken: token))
        #expect(afterFirst == [.list(continueToken: token)])
        let second = try json("list/pods-limit2-page2.body.json")
        #expect(second["metadata"]?["continue"] == nil)
        let actions = machine.handle(.listPage(items: second["items"]?.arrayValue ?? [], resourceVersion: "456", continueToken: nil))
        guard case .replaceAll(let items) = actions.first else {
            Issue.record("expected the whole list first")
            return
        }
        #expect(items.count == 4)
        #expect(actions.last == .watch(resourceVersion: "456"))
        var cache = InformerCache()
        #expect(cache.apply(actions[0]).count == 4)
    }

    @Test func realWatchStreamUpdatesTheCacheAndFollowsBookmarks() throws {
        var machine = ListWatchMachine()
        _ = machine.handle(.start)
        _ = machine.handle(.listPage(items: [], resourceVersion: "460", continueToken: nil))
        var cache = InformerCache()
        var names: [String] = []
        for event in try watchEvents("watch/pods-4a/w3-from-rv.stream.jsonl") {
            for action in machine.handle(.watchEvent(event)) {
                if case .delete(let object) = action { names.append("-" + (object["metadata"]?["name"]?.stringValue ?? "")) }
                cache.apply(action)
            }
            if case .bookmark(let version) = event { #expect(machine.resourceVersion == version) }
        }
        #expect(names == ["-checkout-w1", "-checkout-w2"])
        #expect(cache.objects.isEmpty)
        #expect(machine.handle(.watchEnded) == [.watch(resourceVersion: try #require(machine.resourceVersion))])
    }

    @Test func expiredWatchInsideTheStreamRelists() throws {
        var machine = ListWatchMachine()
        _ = machine.handle(.start)
        _ = machine.handle(.listPage(items: [], resourceVersion: "1", continueToken: nil))
        let events = try watchEvents("watch/gone-410-4c/c4-watch-pods-rv1.stream.jsonl")
        #expect(events == [.error(code: 410, message: "too old resource version: 1 (246)")])
        #expect(machine.handle(.watchEvent(events[0])) == [.list(continueToken: nil)])
    }

    @Test func expiredContinueTokenStartsTheListOver() throws {
        let status = try json("watch/gone-410-4c/c3-list-pods-continue-rv456-after-compact.body.json")
        #expect(status["code"] == 410)
        var machine = ListWatchMachine()
        _ = machine.handle(.start)
        _ = machine.handle(.listPage(items: [["metadata": ["name": "a"]]], resourceVersion: "456", continueToken: "token"))
        #expect(machine.handle(.listFailed(status: 410)) == [.list(continueToken: nil)])
        let actions = machine.handle(.listPage(items: [], resourceVersion: "500", continueToken: nil))
        #expect(actions == [.replaceAll([]), .watch(resourceVersion: "500")])
    }

    @Test func failuresBackOffExponentiallyCappedAndResumeTheWatch() {
        var machine = ListWatchMachine(initialBackoff: .milliseconds(100), maxBackoff: .milliseconds(350))
        _ = machine.handle(.start)
        _ = machine.handle(.listPage(items: [], resourceVersion: "7", continueToken: nil))
        var waits: [Duration] = []
        for _ in 0..<4 {
            for action in machine.handle(.watchFailed) {
                if case .wait(let delay) = action { waits.append(delay) }
            }
            #expect(machine.handle(.backoffElapsed) == [.watch(resourceVersion: "7")])
        }
        #expect(waits == [.milliseconds(100), .milliseconds(200), .milliseconds(350), .milliseconds(350)])
        // A change resets the backoff.
        _ = machine.handle(.watchEvent(.added(["metadata": ["name": "x", "resourceVersion": "8"]])))
        #expect(machine.handle(.watchFailed) == [.wait(.milliseconds(100))])
    }

    @Test func decoderCutsRealStreamsIntoEventsWhateverTheReadSizes() throws {
        for file in ["watch/pods-4a/w1-h2.stream.jsonl", "watch/pods-4a/w3-from-rv.stream.jsonl",
                     "watch/endpointslices-4b/w2-from-rv.stream.jsonl", "watch/gone-410-4c/c4-watch-pods-rv1.stream.jsonl"] {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: base + "/" + file)))
            let expected = try watchEvents(file)
            // Whole, byte by byte, in odd sizes that cut lines anywhere, and in reads that hold several lines.
            for size in [bytes.count, 1, 7, 1000, 4096, 20_000] {
                var decoder = WatchStreamDecoder()
                var events: [WatchEvent] = []
                for start in stride(from: 0, to: bytes.count, by: size) {
                    events += try decoder.feed(Array(bytes[start..<min(start + size, bytes.count)]))
                }
                try decoder.finish()
                #expect(events == expected, "\(file) in reads of \(size) bytes")
            }
        }
    }

    @Test func decoderRefusesWhatIsNotAWatchStream() throws {
        var decoder = WatchStreamDecoder()
        #expect(try decoder.feed(Array("\n  \r\n".utf8)) == [])
        #expect { try decoder.feed(Array("not json\n".utf8)) } throws: { error in "\(error)".hasPrefix("a watch line is not JSON") }
        decoder = WatchStreamDecoder()
        #expect { try decoder.feed(Array("{\"kind\":\"Pod\"}\n".utf8)) } throws: { error in
            "\(error)" == #"a watch line is not an event: {"kind":"Pod"}"#
        }
        decoder = WatchStreamDecoder()
        _ = try decoder.feed(Array(#"{"type":"ADDED","obj"#.utf8))
        #expect { try decoder.finish() } throws: { error in "\(error)" == "the watch ended inside an event (20 bytes without a newline)" }
        decoder = WatchStreamDecoder(maxLineBytes: 16)
        #expect { try decoder.feed([UInt8](repeating: UInt8(ascii: "x"), count: 17)) } throws: { error in
            "\(error)" == "a watch line is longer than 16 bytes"
        }
    }

    @Test func aGoneFirstPageBacksOffInsteadOfRelistingInALoop() {
        var machine = ListWatchMachine()
        _ = machine.handle(.start)
        #expect(machine.handle(.listFailed(status: 410)) == [.wait(.milliseconds(200))])
        #expect(machine.handle(.backoffElapsed) == [.list(continueToken: nil)])
    }

    @Test func aBookmarkShowsTheServerWorksAndResetsTheBackoff() {
        var machine = ListWatchMachine(initialBackoff: .milliseconds(100), maxBackoff: .seconds(10))
        _ = machine.handle(.start)
        _ = machine.handle(.listPage(items: [], resourceVersion: "7", continueToken: nil))
        _ = machine.handle(.watchFailed)
        _ = machine.handle(.backoffElapsed)
        #expect(machine.handle(.watchFailed) == [.wait(.milliseconds(200))])
        _ = machine.handle(.backoffElapsed)
        #expect(machine.handle(.watchEvent(.bookmark(resourceVersion: "9"))) == [])
        #expect(machine.handle(.watchFailed) == [.wait(.milliseconds(100))])
        #expect(machine.handle(.backoffElapsed) == [.watch(resourceVersion: "9")])
    }

    @Test func listFailureOtherThanGoneWaitsThenRelists() {
        var machine = ListWatchMachine()
        _ = machine.handle(.start)
        #expect(machine.handle(.listFailed(status: 503)) == [.wait(.milliseconds(200))])
        #expect(machine.handle(.backoffElapsed) == [.list(continueToken: nil)])
        #expect(machine.handle(.watchEvent(.bookmark(resourceVersion: "1"))) == [])
    }

    @Test func relistReportsWhatChangedAndWhatWentAway() {
        var cache = InformerCache()
        cache.apply(.replaceAll([["metadata": ["name": "a", "namespace": "x"]], ["metadata": ["name": "b", "namespace": "x"]]]))
        let changed = cache.apply(.replaceAll([["metadata": ["name": "a", "namespace": "x"]], ["metadata": ["name": "c", "namespace": "x"]]]))
        #expect(Set(changed.compactMap { $0["metadata"]?["name"]?.stringValue }) == ["b", "c"])
        #expect(cache.objects.keys.sorted() == ["x/a", "x/c"])
    }
}
