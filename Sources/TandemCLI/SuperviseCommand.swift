import Glibc
import Lifecycle

/// `tandem supervise [options] -- CMD ARGS…`: the app container's entrypoint. Parses the command
/// line into `SupervisorOptions` and hands over to `Supervisor`; the exit status is the app's.
enum SuperviseCommand {
    static let specs: [OptionSpec] = [
        .value("--ready-url", name: "URL", help: "Start the app only once this answers 200 (the proxy's /ready)."),
        .value("--ready-timeout", name: "SECONDS", help: "How long to wait for readiness (default 120; 0 waits forever)."),
        .value("--on-timeout", name: "fail|start", help: "When readiness times out: exit 69 without starting the app (default), or start it anyway."),
        .value("--drain-url", name: "URL", help: "POSTed after the app has exited, before --quit-url (e.g. /drain_listeners?graceful)."),
        .value("--quit-url", name: "URL", help: "POSTed after the app has exited, so the proxy stops and a Job's pod completes."),
        .value("--quit-on", name: "exit|success|stop", help: "Which app exits end the pod and so drain and quit the proxy: any (default; restartPolicy Never), success or a stop signal (OnFailure), only a stop signal (Always)."),
        .flag("--process-group", help: "Run the app in its own process group and signal the whole group."),
        .value("--drain-delay", name: "SECONDS", help: "Hold SIGTERM, SIGINT or SIGQUIT this long before the app gets it, so it keeps serving while the pod's endpoints are removed (default 0). A second one passes it on at once."),
        .value("--kill-after", name: "SECONDS", help: "SIGKILL the app if it is still running this long after SIGTERM, SIGINT or SIGQUIT (default 0: never)."),
    ]

    static let help = helpText(
        usage: "tandem supervise [options] -- COMMAND [ARGS...]",
        summary: """
        Runs COMMAND as the app of a meshed pod: waits for the proxy to be ready, starts the app, forwards
        every signal to it, reaps orphaned processes (as PID 1 or a child subreaper), and after the app has
        exited drains and quits the proxy. Exits with the app's status, 128+N if signal N killed it, 127 if
        COMMAND was not found, 126 if it could not be run, 69 if the proxy was not ready in time.
        """,
        specs: specs)

    static func run(_ arguments: [String]) -> Int32 {
        let options: SupervisorOptions
        do throws(UsageError) {
            let separator = arguments.firstIndex(of: "--")
            let parsed = try ParsedArguments.parse(Array(arguments[..<(separator ?? arguments.endIndex)]), specs: specs + [helpOption])
            if parsed.flag("--help") {
                Console.out(help)
                return 0
            }
            guard let separator else { throw UsageError(message: "put the app's command after --") }
            if let extra = parsed.positionals.first {
                throw UsageError(message: "unexpected argument \"\(extra)\" before --")
            }
            if parsed.last("--drain-url") == nil, parsed.last("--quit-url") == nil, parsed.last("--quit-on") != nil {
                throw UsageError(message: "--quit-on needs --quit-url or --drain-url")
            }
            if parsed.last("--ready-url") == nil, let key = ["--ready-timeout", "--on-timeout"].first(where: { parsed.last($0) != nil }) {
                throw UsageError(message: "\(key) needs --ready-url")
            }
            let drainDelay = try seconds(parsed, "--drain-delay", default: nil)
            let killAfter = try seconds(parsed, "--kill-after", default: nil)
            if let drainDelay, let killAfter, killAfter <= drainDelay {
                throw UsageError(message: "--kill-after must be longer than --drain-delay, or the app is killed before it is asked to stop")
            }
            let command = Array(arguments[(separator + 1)...])
            guard !command.isEmpty else { throw UsageError(message: "no command after --") }
            options = SupervisorOptions(
                command: command,
                readyURL: try adminURL(parsed, "--ready-url"),
                readyTimeout: try seconds(parsed, "--ready-timeout", default: .seconds(120)),
                onReadyTimeout: try parsed.choice("--on-timeout", from: ["fail", "start"]) == "start" ? .start : .fail,
                drainURL: try adminURL(parsed, "--drain-url"),
                quitURL: try adminURL(parsed, "--quit-url"),
                quitOn: try parsed.choice("--quit-on", from: ["exit", "success", "stop"]).flatMap(SupervisorStateMachine.QuitPolicy.init(rawValue:)) ?? .exit,
                signalsProcessGroup: parsed.flag("--process-group"),
                drainDelay: drainDelay,
                killAfter: killAfter)
        } catch {
            Console.error("tandem supervise: \(error.message)\nRun 'tandem supervise --help' for usage.\n")
            return 64
        }
        do {
            return try Supervisor.run(options, log: logSink("supervise"))
        } catch {
            Console.error("tandem supervise: \(error)\n")
            return 1
        }
    }
}

/// `-h`/`--help`, accepted by every command (`helpText` lists it itself).
let helpOption = OptionSpec.flag("-h", "--help", help: "Show this help.")

/// Writes log records to standard error, one line each, naming the command.
func logSink(_ command: String) -> LogSink {
    { record in Console.error("tandem \(command): \(record)\n") }
}

/// The option's URL (or `defaultValue`), checked now so a typo is a usage error, not a failure at shutdown.
func adminURL(_ parsed: ParsedArguments, _ key: String, default defaultValue: String? = nil) throws(UsageError) -> AdminURL? {
    guard let text = parsed.last(key) ?? defaultValue else { return nil }
    do {
        return try AdminURL(text)
    } catch {
        throw UsageError(message: "\(key): \(error.description)")
    }
}

/// The option's value as a duration in (possibly fractional) seconds, where 0 means no limit (nil).
func seconds(_ parsed: ParsedArguments, _ key: String, default defaultValue: Duration?) throws(UsageError) -> Duration? {
    guard let text = parsed.last(key) else { return defaultValue }
    guard let value = Double(text), value >= 0, value.isFinite else {
        throw UsageError(message: "\(key) wants a number of seconds, not \"\(text)\"")
    }
    return value == 0 ? nil : .milliseconds(Int64((value * 1000).rounded()))
}
