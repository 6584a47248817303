import Glibc

/// The `tandem` command: picks the subcommand and turns its outcome into an exit status
/// (0 success, 1 failure, 64 usage error).
public enum TandemCommand {
    private static let usage = """
    Usage: tandem <command> [options]

    Tandem puts a proxy beside every application container in Kubernetes and keeps the two in step.

    Commands:
      inject      Add the proxy sidecar to workloads in manifests (files, folders, stdin).
      uninject    Remove exactly what inject added.
      proxy       Run the sidecar proxy (HTTP/1.1 and TCP, admin on loopback).
      help        Show this help, or a command's help: tandem help inject

    Run 'tandem <command> --help' for a command's options.

    """

    public static func main() -> Never {
        exit(run(Array(CommandLine.arguments.dropFirst())))
    }

    /// Runs one command line and returns its exit status; the testable entry point.
    public static func run(_ arguments: [String]) -> Int32 {
        guard let name = arguments.first else {
            Console.error(usage)
            return 64
        }
        let rest = Array(arguments.dropFirst())
        switch name {
        case "inject", "uninject":
            let command = InjectCommand(operation: name == "inject" ? .inject : .uninject)
            if rest.contains("-h") || rest.contains("--help") {
                Console.out(command.help)
                return 0
            }
            return command.run(rest)
        case "proxy":
            let command = ProxyCommand()
            if rest.contains("-h") || rest.contains("--help") {
                Console.out(command.help)
                return 0
            }
            return command.run(rest)
        case "help", "-h", "--help":
            if let topic = rest.first, topic == "inject" || topic == "uninject" || topic == "proxy" {
                return run([topic, "--help"])
            }
            Console.out(usage)
            return 0
        default:
            Console.error("tandem: unknown command \"\(name)\"\n\n" + usage)
            return 64
        }
    }
}
