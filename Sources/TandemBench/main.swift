// Benchmarks that need a comparison inside one process (for example Foundation's JSON),
// kept out of the shipped `tandem` binary. Hack/bench/* scripts drive it.
import Glibc

let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first, let benchmark = benchmarks[name] else {
    let names = benchmarks.keys.sorted().joined(separator: ", ")
    _ = names.withCString { write(2, $0, strlen($0)) }
    exit(64)
}
benchmark(Array(arguments.dropFirst()))
