@testable import Net

/// A whole message as the parser reported it, for table tests.
struct ParsedMessage: Equatable {
    var request: HTTPRequestHead?
    var response: HTTPResponseHead?
    var body: [UInt8] = []
    var trailers: HTTPHeaders?
}

struct ParseOutcome: Equatable {
    var messages: [ParsedMessage] = []
    var error: HTTPParseError?
}

/// Feeds `bytes` to a parser in pieces of `piece` bytes (keeping unconsumed bytes, as a
/// connection does), then signals end of input if `eof`.
func parseAll(_ bytes: [UInt8], kind: HTTPParser.Kind = .request, piece: Int = .max, eof: Bool = false,
              limits: HTTPLimits = HTTPLimits(), head: Bool = false) -> ParseOutcome {
    var parser = HTTPParser(kind, limits: limits)
    parser.respondingToHEAD = head
    var outcome = ParseOutcome()
    var current = ParsedMessage()
    var pending: [UInt8] = []
    var index = 0
    func handle(_ event: HTTPParser.Event, _ buffer: [UInt8]) {
        switch event {
        case .requestHead(let head): current.request = head
        case .responseHead(let head):
            if head.status < 200 && head.status != 101 {
                outcome.messages.append(ParsedMessage(response: head))
            } else {
                current.response = head
            }
        case .body(let range): current.body += buffer[range]
        case .end(let trailers):
            current.trailers = trailers
            outcome.messages.append(current)
            current = ParsedMessage()
        }
    }
    do throws(HTTPParseError) {
        while index < bytes.count {
            let end = min(bytes.count, index + max(1, min(piece, bytes.count)))
            pending += bytes[index..<end]
            index = end
            while true {
                let (consumed, event) = try parser.parse(pending)
                if let event { handle(event, pending) }
                pending.removeFirst(consumed)
                if event == nil { break }
            }
        }
        if eof, let event = try parser.finish() { handle(event, pending) }
    } catch {
        outcome.error = error
    }
    return outcome
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
