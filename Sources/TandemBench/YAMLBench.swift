import CYAML
import Glibc

/// Medians of rounds, in seconds of the thread's CPU time: on a machine shared with other work,
/// wall-clock rounds mostly measure the neighbours.
func medianSeconds(rounds: Int, _ body: () -> Void) -> Double {
    var samples: [Double] = []
    for _ in 0..<rounds {
        var start = timespec()
        var end = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start)
        body()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end)
        samples.append(Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9)
    }
    samples.sort()
    return samples[samples.count / 2]
}

func readWholeFile(_ path: String) -> [UInt8] {
    guard let file = fopen(path, "rb") else {
        fatalError("cannot open \(path)")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count == 0 { break }
        bytes += chunk[0..<count]
    }
    return bytes
}

/// `yaml-parse FILE [ROUNDS]`: libyaml's bare event-parse rate over a file, the practical
/// ceiling for anything that reads YAML with it. Prints MB/s.
let yamlParseBenchmark: @Sendable ([String]) -> Void = { arguments in
    let bytes = readWholeFile(arguments[0])
    let rounds = arguments.count > 1 ? Int(arguments[1]) ?? 5 : 5
    var events = 0
    let seconds = medianSeconds(rounds: rounds) { events += libyamlEventCount(bytes) }
    let rate = (Double(bytes.count) / seconds / 1e5).rounded() / 10
    print("libyaml-parse \(rate) MB/s (\(events / rounds) events)")
}

/// Parses `bytes` with libyaml's event parser and nothing else; returns the number of events.
func libyamlEventCount(_ bytes: [UInt8]) -> Int {
    var events = 0
    var parser = yaml_parser_t()
    yaml_parser_initialize(&parser)
    bytes.withUnsafeBufferPointer { buffer in
        yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
        var event = yaml_event_t()
        while yaml_parser_parse(&parser, &event) == 1 {
            let done = event.type == YAML_STREAM_END_EVENT
            yaml_event_delete(&event)
            events += 1
            if done { break }
        }
    }
    yaml_parser_delete(&parser)
    return events
}
