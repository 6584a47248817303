// libFuzzer entry point for the HTTP/1.1 parser, compiled together with the parser sources
// (see Hack/fuzz/run). Beyond "does not crash", it checks properties any input must keep:
// events stay inside the buffer, feeding in pieces agrees with feeding at once, and a parsed
// head that the serializer accepts parses back to itself.

struct Summary: Equatable {
    var events: [String] = []
    var error: HTTPParseError?
}

func parse(_ bytes: [UInt8], kind: HTTPParser.Kind, pieces: [Int]) -> Summary {
    var parser = HTTPParser(kind, limits: HTTPLimits(maxStartLine: 512, maxHeaderBytes: 2048, maxHeaderCount: 20,
                                                     maxBodyBytes: 4096, maxChunkLine: 64))
    var summary = Summary()
    var pending: [UInt8] = []
    var index = 0
    var cuts = pieces.makeIterator()
    var body: [UInt8] = []
    do throws(HTTPParseError) {
        while index < bytes.count {
            let end = min(bytes.count, index + max(1, cuts.next() ?? bytes.count))
            pending += bytes[index..<end]
            index = end
            while true {
                let (consumed, event) = try parser.parse(pending)
                precondition(consumed >= 0 && consumed <= pending.count, "consumed out of range")
                switch event {
                case .body(let range):
                    precondition(range.lowerBound >= 0 && range.upperBound <= consumed, "body range outside input")
                    body += pending[range]
                case .end(let trailers):
                    summary.events.append("body \(body)")
                    summary.events.append("end \(trailers.map { "\($0.name)=\($0.value)" })")
                    body = []
                case .requestHead(let head):
                    summary.events.append("request \(head.method) \(head.target) \(head.version) \(head.headers.map { "\($0.name)=\($0.value)" })")
                    roundTrip(head)
                case .responseHead(let head):
                    summary.events.append("response \(head.status) \(head.reason) \(head.headers.map { "\($0.name)=\($0.value)" })")
                case nil:
                    break
                }
                pending.removeFirst(consumed)
                if event == nil { break }
            }
        }
        if let event = try parser.finish(), case .end = event { summary.events.append("body \(body)"); summary.events.append("end-eof") }
    } catch {
        summary.error = error
    }
    return summary
}

/// A head the serializer accepts must parse back to the same head.
func roundTrip(_ head: HTTPRequestHead) {
    var bytes: [UInt8] = []
    guard (try? HTTPSerializer.write(head, into: &bytes)) != nil else { return }
    var parser = HTTPParser(.request)
    guard let (_, event) = try? parser.parse(bytes), case .requestHead(let again)? = event else {
        preconditionFailure("serialized head does not parse")
    }
    precondition(again == head, "round trip changed the head")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // The first byte picks the mode and how to split the rest.
    let control = bytes[0]
    let input = Array(bytes.dropFirst())
    let kind: HTTPParser.Kind = control & 1 == 0 ? .request : .response
    let whole = parse(input, kind: kind, pieces: [])
    let step = Int(control >> 1) % 7 + 1
    let split = parse(input, kind: kind, pieces: Array(repeating: step, count: input.count))
    precondition(whole == split, "split feeding disagrees with whole feeding")
    return 0
}
