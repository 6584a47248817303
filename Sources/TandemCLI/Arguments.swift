import Glibc

/// A command-line option a subcommand accepts: its names, whether it takes a value, its help.
struct OptionSpec: Sendable {
    let names: [String]
    let valueName: String?
    let help: String

    static func flag(_ names: String..., help: String) -> OptionSpec {
        OptionSpec(names: names, valueName: nil, help: help)
    }

    static func value(_ names: String..., name: String, help: String) -> OptionSpec {
        OptionSpec(names: names, valueName: name, help: help)
    }

    /// The long name, used as the key under which values are stored.
    var key: String { names.last ?? "" }
}

/// A command line that does not fit the command: exit status 64, with the message and a hint.
struct UsageError: Error, Equatable {
    let message: String
}

/// Options and positional arguments as parsed for one subcommand.
struct ParsedArguments: Sendable {
    private(set) var values: [String: [String]] = [:]
    private(set) var positionals: [String] = []

    func flag(_ key: String) -> Bool { values[key] != nil }
    func all(_ key: String) -> [String] { values[key] ?? [] }
    func last(_ key: String) -> String? { values[key]?.last }

    /// Parses `arguments` against `specs`: `--name value`, `--name=value`, `-n value`; `--` ends
    /// the options; a lone `-` is a value (standard input).
    static func parse(_ arguments: [String], specs: [OptionSpec]) throws(UsageError) -> ParsedArguments {
        var parsed = ParsedArguments()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                parsed.positionals.append(contentsOf: arguments[index...])
                break
            }
            guard argument.hasPrefix("-"), argument != "-" else {
                parsed.positionals.append(argument)
                continue
            }
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            guard let spec = specs.first(where: { $0.names.contains(name) }) else {
                throw UsageError(message: "unknown option \(name)")
            }
            if spec.valueName == nil {
                guard inlineValue == nil else { throw UsageError(message: "option \(name) takes no value") }
                parsed.values[spec.key, default: []].append("")
                continue
            }
            if let inlineValue {
                parsed.values[spec.key, default: []].append(inlineValue)
            } else if index < arguments.count {
                parsed.values[spec.key, default: []].append(arguments[index])
                index += 1
            } else {
                throw UsageError(message: "option \(name) needs a value (\(spec.valueName ?? "VALUE"))")
            }
        }
        return parsed
    }

    /// The option's single value checked against a fixed set of choices.
    func choice(_ key: String, from choices: [String]) throws(UsageError) -> String? {
        guard let value = last(key) else { return nil }
        guard choices.contains(value) else {
            throw UsageError(message: "\(key) must be one of \(choices.joined(separator: ", ")), not \"\(value)\"")
        }
        return value
    }
}

/// Help text for a subcommand: a usage line, a description, and its options in a table.
func helpText(usage: String, summary: String, specs: [OptionSpec]) -> String {
    var lines = ["Usage: \(usage)", "", summary, "", "Options:"]
    let labels = specs.map { spec in
        spec.names.joined(separator: ", ") + (spec.valueName.map { " \($0)" } ?? "")
    }
    let width = (labels.map(\.count).max() ?? 0) + 2
    for (label, spec) in zip(labels, specs) {
        lines.append("  " + label + String(repeating: " ", count: width - label.count) + spec.help)
    }
    lines.append("  -h, --help" + String(repeating: " ", count: max(2, width - 10)) + "Show this help.")
    return lines.joined(separator: "\n") + "\n"
}

extension StringProtocol {
    /// The text without any of `characters` at either end.
    func trimming(_ characters: String) -> String {
        var text = self[...]
        while let first = text.first, characters.contains(first) { text = text.dropFirst() }
        while let last = text.last, characters.contains(last) { text = text.dropLast() }
        return String(text)
    }
}

/// `--listen ADDR:PORT` (`[::1]:8080`, `:8080` for every interface) as host and port.
func listenAddress(_ text: String) throws(UsageError) -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
        throw UsageError(message: "--listen \"\(text)\" is not ADDR:PORT")
    }
    let host = text[..<colon].trimming("[]")
    return (host.isEmpty ? "0.0.0.0" : host, port)
}

/// The named variables of this process's environment that are set.
func processEnvironment(_ names: [String]) -> [String: String] {
    var environment: [String: String] = [:]
    for name in names {
        if let value = getenv(name) { environment[name] = String(cString: value) }
    }
    return environment
}
